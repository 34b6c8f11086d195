// One SSH connection opened from the workstation with node-ssh, for what the command provider
// cannot do: `npm run verify`'s checks and a refresh's read (ServerState). It verifies the host
// key exactly as the steps do (only the one trusted key; any other is refused before
// authentication) and authenticates the same way: a key (from a file or the secret), else the agent.
import { NodeSSH } from "node-ssh";
import { remoteCommand } from "./core/shell";

/** Where and how to connect; `hostKey` is `type base64`, the key every step verifies. */
export interface SshTarget {
    host: string;
    port: number;
    user: string;
    hostKey: string;
    privateKey?: string;
    passphrase?: string;
    /** Milliseconds allowed for the connection and the login. */
    readyTimeoutMs: number;
}

/** The server showed another host key than the trusted one: nothing was sent to it. */
export class HostKeyMismatchError extends Error {
    constructor(readonly shownKeyBase64: string) {
        super("the server's host key is not the trusted one");
        this.name = "HostKeyMismatchError";
    }
}

/** Host key algorithms that prove a pinned key of this type (an RSA key signs with SHA-2 or SHA-1). */
function hostKeyAlgorithms(type: string): string[] {
    return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

export async function connectVerified(target: SshTarget): Promise<NodeSSH> {
    const [keyType, keyBase64] = target.hostKey.split(" ");
    const expected = Buffer.from(keyBase64, "base64");
    const connection = new NodeSSH();
    let shownKey: Buffer | undefined;
    await connection.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: target.privateKey,
        passphrase: target.passphrase,
        agent: target.privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined,
        readyTimeout: target.readyTimeoutMs,
        algorithms: { serverHostKey: hostKeyAlgorithms(keyType) as any },
        hostVerifier: (key: Buffer) => {
            shownKey = key;
            return key.equals(expected);
        },
    }).catch((error: Error) => {
        if (shownKey && !shownKey.equals(expected)) throw new HostKeyMismatchError(shownKey.toString("base64"));
        throw error;
    });
    return connection;
}

/** Fails with `what` when the promise has not settled in time. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const COMMAND_TIMEOUT_MS = 60_000;

/** Runs a host script as root (through `sudo -n` for other users), bounded in time; `stdin` is its standard input. */
export function runScript(connection: NodeSSH, user: string, body: string, what: string, shell: "sh" | "bash" = "sh", args: readonly string[] = [], stdin?: string) {
    return withTimeout(connection.execCommand(remoteCommand(body, user, shell, args), stdin === undefined ? {} : { stdin }), COMMAND_TIMEOUT_MS, what);
}
