// The one quoting helper. Every value placed into a shell script goes through `shq`.

/** Quotes a value as one POSIX shell word. */
export function shq(value: string | number): string {
    return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** A script run on the host: POSIX sh, `set -eu`, with its body already quoted where it needs it. */
export function script(...lines: string[]): string {
    return ["set -eu", ...lines].join("\n") + "\n";
}

/**
 * The command line that runs a script over SSH. The remote login shell gets `sh -c '<script>'`
 * (then `pulumi-postfix` as `$0` and the arguments, each quoted); a non-root user goes through
 * `sudo -n` (no password prompt: there is no terminal). Standard input passes through both, which
 * is how file contents and keys travel.
 */
export function remoteCommand(body: string, user: string, shell: "sh" | "bash" = "sh", args: readonly string[] = []): string {
    const run = [`${shell} -c ${shq(body)}`, ...(args.length > 0 ? ["pulumi-postfix", ...args.map(shq)] : [])].join(" ");
    return user === "root" ? run : `sudo -n ${run}`;
}

/** The command line that runs a script already on the host, by path, with its arguments (each quoted). */
export function remoteScript(path: string, user: string, shell: "sh" | "bash" = "sh", args: readonly string[] = []): string {
    const run = [shell, shq(path), ...args.map(shq)].join(" ");
    return user === "root" ? run : `sudo -n ${run}`;
}
