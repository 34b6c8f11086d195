// Which SSH host key every connection to a server verifies, decided on the workstation when the
// program runs: `ssh.hostKey` when set, else the key `known_hosts` lists for the server, as
// OpenSSH reads it. An unknown server is refused before any step exists, with the fingerprint it
// offers; with `accept-new` its key is recorded on the first `pulumi up`, and a changed one is
// refused later like any other.
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname } from "node:path";
import {
    fingerprint, formatHostKey, hashedKnownHostsLine, HostKey, hostEntryName, KnownKey, lookupKnownHosts, parseHostKey, preferredKey, typeLabel,
} from "./core/known-hosts";
import { expandHome, HostKeyChecking, SshSettings } from "./core/ssh";

/**
 * The key to verify, and where it came from (`ssh.hostKey`, or the file: `~/.ssh/known_hosts`).
 * The source is an input of the workstation check, so it names the file, not the line: another
 * host added or removed above it changes nothing.
 */
export interface TrustedHostKey {
    hostKey: string;
    source: string;
    /** With accept-new: the key was unknown and has been recorded (or would be, in a preview). */
    firstUse?: { file: string; recorded: boolean };
}

/** The server cannot be trusted: the message says why and what to do. */
export class HostKeyError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "HostKeyError";
    }
}

/** The files read, in OpenSSH's order; the first is the one `accept-new` writes to. */
export function knownHostsFiles(ssh: Pick<SshSettings, "knownHostsFile">): string[] {
    if (ssh.knownHostsFile !== undefined) return [expandHome(ssh.knownHostsFile)];
    const home = homedir();
    return [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`, "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];
}

/** `~/...` for paths in the user's home: messages stay short. */
function shown(path: string): string {
    const home = homedir();
    return path.startsWith(`${home}/`) ? `~${path.slice(home.length)}` : path;
}

/**
 * With accept-new, the keys previews showed for unknown servers, as hashed known_hosts lines beside
 * the file accept-new writes: `pulumi up` records the key a preview showed, and refuses a server
 * that shows another one since.
 */
export function shownKeysFile(knownHostsFile: string): string {
    return `${knownHostsFile}.pulumi-postfix-shown`;
}

/**
 * The key every SSH connection to this server must see. `label` names the server in messages
 * (`server mx`). With accept-new and an unknown server: `record` writes its key to known_hosts (a
 * `pulumi up`), `show` notes the key a preview shows (in shownKeysFile), and neither is what
 * `npm run verify` does.
 */
export function trustedHostKey(ssh: SshSettings, label: string, options: { record: boolean; show?: boolean }): TrustedHostKey {
    if (ssh.hostKey !== undefined) return { hostKey: ssh.hostKey, source: "ssh.hostKey" };
    const files = knownHostsFiles(ssh);
    const keys: KnownKey[] = [];
    const revoked: KnownKey[] = [];
    for (const file of files) {
        if (!existsSync(file)) continue;
        const found = lookupKnownHosts(readFileSync(file, "utf8"), shown(file), ssh.host, ssh.port);
        keys.push(...found.keys);
        revoked.push(...found.revoked);
    }
    const known = preferredKey(keys, revoked);
    if (known) return { hostKey: formatHostKey(known), source: known.file };
    const where = `${label} (${ssh.host} port ${ssh.port})`;
    if (keys.length > 0) {
        throw new HostKeyError(`${where}: every host key known_hosts lists for it is revoked (@revoked at ${revoked.map((r) => r.where).join(", ")}) ` +
            `or of a type that cannot be checked (${keys.map((k) => `${k.type} at ${k.where}`).join(", ")}). Nothing was sent to it.`);
    }

    const offered = scanHostKeys(ssh);
    const offeredKey = typeof offered === "string" ? undefined : preferredKey(offered, revoked);
    if (ssh.strictHostKeyChecking === HostKeyChecking.acceptNew && offeredKey) {
        const file = files[0];
        const shownFile = shownKeysFile(file);
        const shownText = existsSync(shownFile) ? readFileSync(shownFile, "utf8") : "";
        const shownKeys = lookupKnownHosts(shownText, shown(shownFile), ssh.host, ssh.port).keys;
        const lastShown = shownKeys[shownKeys.length - 1];
        const same = (a: HostKey, b: HostKey) => a.type === b.type && a.base64 === b.base64;
        if (options.record) {
            // The user accepted what the preview showed: another key now is refused, not recorded.
            if (lastShown && !same(lastShown, offeredKey)) {
                throw new HostKeyError(`${where}: its host key changed after the preview: the preview showed ${fingerprint(lastShown)} (${typeLabel(lastShown.type)}), `
                    + `and the server now shows ${fingerprint(offeredKey)} (${typeLabel(offeredKey.type)}). Nothing was recorded, and nothing was sent to it.\n`
                    + "  Someone may be intercepting the connection (a machine in the middle), or the server was reinstalled in between.\n"
                    + `  Run pulumi preview again, compare the key it shows on the server's own console (ssh-keygen -lf ${hostKeyFileOf(offeredKey)}), then pulumi up.`);
            }
            mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
            appendFileSync(file, `${hashedKnownHostsLine(ssh.host, ssh.port, offeredKey)}\n`, { mode: 0o600 });
            if (shownKeys.length > 0) {
                const dropped = new Set(shownKeys.map((k) => Number(k.where.slice(k.where.lastIndexOf(":") + 1)) - 1));
                writeFileSync(shownFile, shownText.split("\n").filter((_, i) => !dropped.has(i)).join("\n"), { mode: 0o600 });
            }
        } else if (options.show && !(lastShown && same(lastShown, offeredKey))) {
            mkdirSync(dirname(shownFile), { recursive: true, mode: 0o700 });
            appendFileSync(shownFile, `${hashedKnownHostsLine(ssh.host, ssh.port, offeredKey)}\n`, { mode: 0o600 });
        }
        return { hostKey: formatHostKey(offeredKey), source: shown(file), firstUse: { file: shown(file), recorded: options.record } };
    }
    const searched = ssh.knownHostsFile !== undefined ? shown(files[0]) : "~/.ssh/known_hosts or /etc/ssh/ssh_known_hosts";
    const lines = [`${where} is not a known host: no key for ${hostEntryName(ssh.host, ssh.port)} in ${searched}, and ssh.hostKey is not set. Nothing was sent to it.`];
    if (offeredKey) {
        lines.push(
            `  It offers the host key ${fingerprint(offeredKey)} (${typeLabel(offeredKey.type)}).`,
            `  Compare it on the server's own console: ssh-keygen -lf ${hostKeyFileOf(offeredKey)}`,
            `  If they match, trust it: log in once with ssh ${ssh.port === 22 ? "" : `-p ${ssh.port} `}${ssh.user}@${ssh.host} and answer yes,`,
            `  or set ssh.hostKey: "${formatHostKey(offeredKey)}".`,
        );
    } else {
        lines.push(`  It offered no host key (${typeof offered === "string" ? offered : "no key of a type the component can check"}). Check ssh.host and ssh.port.`);
    }
    lines.push("  (ssh.strictHostKeyChecking: accept-new records an unknown server's key on first use instead.)");
    throw new HostKeyError(lines.join("\n"));
}

/** Where Debian's sshd keeps the public half of a key of this type. */
function hostKeyFileOf(key: HostKey): string {
    const name = key.type === "ssh-ed25519" ? "ed25519" : key.type.startsWith("ecdsa-") ? "ecdsa" : "rsa";
    return `/etc/ssh/ssh_host_${name}_key.pub`;
}

/** The keys the server offers (`ssh-keyscan`, bounded by perDialTimeout), or why there are none. */
function scanHostKeys(ssh: SshSettings): HostKey[] | string {
    const r = spawnSync("ssh-keyscan", ["-T", String(ssh.perDialTimeout), "-p", String(ssh.port), ssh.host], {
        encoding: "utf8", timeout: (ssh.perDialTimeout + 5) * 1000,
    });
    if (r.error) return (r.error as NodeJS.ErrnoException).code === "ENOENT" ? "ssh-keyscan (OpenSSH client) is not installed on this workstation" : r.error.message;
    const keys = r.stdout.split("\n").map(parseHostKey).filter((k): k is HostKey => k !== undefined);
    return keys.length > 0 ? keys : `no SSH server answered within ${ssh.perDialTimeout} s`;
}
