// Reads a stack file the way the engine hands config to the program: `namespace:key` -> text.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";

export const REPO = join(__dirname, "..", "..", "..");

export function stackConfig(stack: string): Record<string, string> {
    const doc = load(readFileSync(join(REPO, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
    return toConfigMap(doc.config);
}

export function toConfigMap(config: Record<string, unknown>): Record<string, string> {
    return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}
