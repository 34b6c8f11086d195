// How the workstation reaches a server. Validated like the mail options.
import { CONTROL, domainProblem, KeyOf, MAX_VALUE_LENGTH, UNIX_USER } from "./validate";
import { parseAddress } from "./net";
import { homedir } from "node:os";

export interface SshOptions {
    /** Host name or IP address at which the workstation reaches the server. */
    host: string;
    /** SSH port. Default 22. */
    port?: number;
    /** Login user: `root`, or a user with passwordless sudo. Default `root`. */
    user?: string;
    /** Private key file on the workstation (`~` allowed). Default: the secret `postfix:sshPrivateKey`, else the SSH agent. */
    privateKeyPath?: string;
    /** The server's SSH host key (`ssh-ed25519 AAAA...`). When set, a server showing any other key is refused. */
    hostKey?: string;
    /** Connection attempts before a step fails. Default 10. */
    dialErrorLimit?: number;
    /** Seconds allowed for each connection attempt. Default 15. */
    perDialTimeout?: number;
}

const SSH_KEYS = new Set(["host", "port", "user", "privateKeyPath", "hostKey", "dialErrorLimit", "perDialTimeout"]);
const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( [^\s]+)?$/;

/** Validated SSH options with defaults applied. */
export type SshSettings = Required<Omit<SshOptions, "privateKeyPath" | "hostKey">> & Pick<SshOptions, "privateKeyPath" | "hostKey">;

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
    if (o.hostKey !== undefined && (typeof o.hostKey !== "string" || !HOST_KEY.test(o.hostKey))) {
        add("hostKey", 'must be a public key line such as "ssh-ed25519 AAAA..."');
    }
    if (problems.length > 0) return { problems };
    return {
        problems,
        ssh: {
            host: host as string, port, user: user as string, dialErrorLimit, perDialTimeout,
            privateKeyPath: o.privateKeyPath as string | undefined, hostKey: o.hostKey as string | undefined,
        },
    };
}

/** `~/key` -> `/home/me/key`, as a shell would. */
export function expandHome(path: string): string {
    return path.replace(/^~(?=$|\/)/, homedir());
}
