// Time passing for a certificate, as the tls provider sees it.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "./pulumi";

/** Rewrites the recorded validity end of a certificate (URN suffix) in the stack's state to `hours` from now. */
export function ageCertificate(target: Stack, certificate: string, hours: number): void {
    const file = join(target.backend, "aged.json");
    target.ok(["stack", "export", "--file", file]);
    const state = JSON.parse(readFileSync(file, "utf8"));
    const resource = state.deployment.resources.find((r: { urn: string }) => r.urn.endsWith(certificate));
    assert.ok(resource, `${certificate} is in the state`);
    resource.outputs.validityEndTime = new Date(Date.now() + hours * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
    writeFileSync(file, JSON.stringify(state));
    target.ok(["stack", "import", "--file", file]);
}

