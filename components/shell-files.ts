// The shell scripts of components/shell/, read as text and handed to commands with their
// arguments in the environment or on standard input.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

// Beside this file when Pulumi runs the TypeScript program; two levels up from the compiled copy
// under dist/ that the tests and the command-line tools run.
const SHELL_DIR = [join(__dirname, "shell"), join(__dirname, "..", "..", "components", "shell")].find((dir) => existsSync(dir))
    ?? join(__dirname, "shell");

/** The text of `components/shell/<name>`. */
export function shellFile(name: string): string {
    return readFileSync(join(SHELL_DIR, name), "utf8");
}
