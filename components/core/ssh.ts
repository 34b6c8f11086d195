// How the workstation reaches a server. Validated like the mail options.
import { CONTROL, domainProblem, KeyOf, MAX_VALUE_LENGTH, UNIX_USER } from "./validate";
import { formatHostKey, parseHostKey } from "./known-hosts";
import { parseAddress } from "./net";
import { homedir } from "node:os";

/** How a server's SSH host key is trusted when `hostKey` is not set, as OpenSSH's `StrictHostKeyChecking`. */
export const HostKeyChecking = {
    /** Only a key already in `known_hosts`: an unknown server is refused, with the fingerprint it offers. */
    yes: "yes",
    /** Trust on first use: an unknown server's key is recorded in `known_hosts` on the first `pulumi up`; a changed key is refused. */
    acceptNew: "accept-new",
} as const;
export type HostKeyChecking = (typeof HostKeyChecking)[keyof typeof HostKeyChecking];

export interface SshOptions {
    /** Host name or IP address at which the workstation reaches the server. */
    host: string;
    /** SSH port. Default 22. */
    port?: number;
    /** Login user: `root`, or a user with passwordless sudo. Default `root`. */
    user?: string;
    /** Private key file on the workstation (`~` allowed). Default: the secret `postfix:sshPrivateKey`, else the SSH agent. */
    privateKeyPath?: string;
    /**
     * The server's SSH host key (`ssh-ed25519 AAAA...`, or a `known_hosts` or `ssh-keyscan` line
     * with the host in front). When set, only this key is trusted and `known_hosts` is not read.
     */
    hostKey?: string;
    /**
     * The `known_hosts` file to read the server's key from (and to record it in, with
     * `accept-new`). Default: `~/.ssh/known_hosts`, `~/.ssh/known_hosts2`, then
     * `/etc/ssh/ssh_known_hosts` and `/etc/ssh/ssh_known_hosts2`, as OpenSSH reads them.
     */
    knownHostsFile?: string;
    /** `yes` (default): the server's key must be in `known_hosts` (or `hostKey`). `accept-new`: record an unknown server's key on first use; a changed key is still refused. */
    strictHostKeyChecking?: HostKeyChecking;
    /** Connection attempts before a step fails. Default 10. */
    dialErrorLimit?: number;
    /** Seconds allowed for each connection attempt. Default 15. */
    perDialTimeout?: number;
}

const SSH_KEYS = new Set(["host", "port", "user", "privateKeyPath", "hostKey", "knownHostsFile", "strictHostKeyChecking", "dialErrorLimit", "perDialTimeout"]);

/** Validated SSH options with defaults applied; `hostKey` as `type base64`. */
export type SshSettings = Required<Omit<SshOptions, "privateKeyPath" | "hostKey" | "knownHostsFile">>
    & Pick<SshOptions, "privateKeyPath" | "hostKey" | "knownHostsFile">;

export function validateSsh(raw: unknown, keyOf: KeyOf): { ssh?: SshSettings; problems: string[] } {
    const problems: string[] = [];
    const add = (path: string, message: string) => problems.push(`${keyOf(path)} ${message}`);
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        add("", "must be an object with at least a host");
        return { problems };
    }
    const o = raw as Record<string, unknown>;
    for (const key of Object.keys(o)) if (!SSH_KEYS.has(key)) add(key, `is not a known option (known: ${[...SSH_KEYS].join(", ")})`);
    for (const [key, value] of Object.entries(o)) {
        if (typeof value === "string" && CONTROL.test(value)) add(key, "contains a control character");
        if (typeof value === "string" && value.length > MAX_VALUE_LENGTH) add(key, `is longer than ${MAX_VALUE_LENGTH} characters`);
    }
    const host = o.host;
    if (typeof host !== "string" || (!parseAddress(host) && domainProblem(host, false))) add("host", "must be an IP address or a host name");
    const int = (key: string, fallback: number, min: number, max: number): number => {
        const value = o[key] ?? fallback;
        if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) add(key, `must be a whole number from ${min} to ${max}`);
        return value as number;
    };
    const port = int("port", 22, 1, 65535);
    const dialErrorLimit = int("dialErrorLimit", 10, 1, 100);
    const perDialTimeout = int("perDialTimeout", 15, 1, 600);
    const user = o.user ?? "root";
    if (typeof user !== "string" || !UNIX_USER.test(user)) add("user", "must be a user name (a-z, 0-9, _ and -)");
    if (o.privateKeyPath !== undefined && (typeof o.privateKeyPath !== "string" || o.privateKeyPath === "")) add("privateKeyPath", "must be a file path");
    const hostKey = typeof o.hostKey === "string" ? parseHostKey(o.hostKey) : undefined;
    if (o.hostKey !== undefined && !hostKey) {
        add("hostKey", 'must be a public key line such as "ssh-ed25519 AAAA..." (a known_hosts or ssh-keyscan line is fine too)');
    }
    if (o.knownHostsFile !== undefined && (typeof o.knownHostsFile !== "string" || o.knownHostsFile === "")) add("knownHostsFile", "must be a file path");
    const checking = o.strictHostKeyChecking ?? HostKeyChecking.yes;
    if (checking !== HostKeyChecking.yes && checking !== HostKeyChecking.acceptNew) {
        add("strictHostKeyChecking", 'must be "yes" (the key must be known) or "accept-new" (record an unknown key on first use)');
    }
    if (problems.length > 0) return { problems };
    return {
        problems,
        ssh: {
            host: host as string, port, user: user as string, dialErrorLimit, perDialTimeout,
            strictHostKeyChecking: checking as HostKeyChecking,
            privateKeyPath: o.privateKeyPath as string | undefined,
            hostKey: hostKey && formatHostKey(hostKey),
            knownHostsFile: o.knownHostsFile as string | undefined,
        },
    };
}

/** `~/key` -> `/home/me/key`, as a shell would. */
export function expandHome(path: string): string {
    return path.replace(/^~(?=$|\/)/, homedir());
}
