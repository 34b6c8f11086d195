// The shell scripts of components/shell/: copied to the host once per version (shellBundle) and
// run there by path with their arguments, or read as text (the workstation's SSH check, verify).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

// Beside this file when Pulumi runs the TypeScript program; two levels up from the compiled copy
// under dist/ that the tests and the command-line tools run.
const SHELL_DIR = [join(__dirname, "shell"), join(__dirname, "..", "..", "components", "shell")].find((dir) => existsSync(dir))
    ?? join(__dirname, "shell");

/** The text of `components/shell/<name>`. */
export function shellFile(name: string): string {
    return readFileSync(join(SHELL_DIR, name), "utf8");
}

/**
 * Scripts not copied to the host: the workstation's SSH check, and the refresh's read (sent as
 * text: it must work on a server that has lost the scripts folder).
 */
const NOT_BUNDLED = new Set(["ssh-reachable.sh", "server-read.sh"]);

/**
 * Every host script of components/shell/, as the scripts step hands them to the host: one line each,
 * `NAME BASE64`, and a hash of them all, which names their folder on the host.
 */
export function shellBundle(): { hash: string; text: string } {
    const names = readdirSync(SHELL_DIR).filter((name) => name.endsWith(".sh") && !NOT_BUNDLED.has(name)).sort();
    const text = names.map((name) => `${name} ${readFileSync(join(SHELL_DIR, name)).toString("base64")}\n`).join("");
    return { hash: createHash("sha256").update(text).digest("hex").slice(0, 16), text };
}
