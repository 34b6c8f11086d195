// SSH to a server with its stack settings, as the component connects: same user, key and pinned host key.
import { readFileSync } from "node:fs";
import { NodeSSH } from "node-ssh";
import { remoteCommand } from "../components/core/shell";
import { expandHome, SshSettings } from "../components/core/ssh";

export const CONNECT_TIMEOUT_MS = 10_000;
export const COMMAND_TIMEOUT_MS = 60_000;

/** Host key algorithms that prove a pinned key of this type (an RSA key signs with SHA-2 or SHA-1). */
function hostKeyAlgorithms(type: string): string[] {
    return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/**
 * Authentication in the component's order: the key file, the secret key, the SSH agent.
 * With `hostKey` set, any other key the server shows is refused.
 */
export async function connectSsh(ssh: SshSettings, secretKey: string | undefined): Promise<NodeSSH> {
    const [keyType, keyBase64] = ssh.hostKey?.split(" ") ?? [];
    const pinned = keyBase64 === undefined ? undefined : Buffer.from(keyBase64, "base64");
    const privateKey = ssh.privateKeyPath !== undefined ? readFileSync(expandHome(ssh.privateKeyPath), "utf8") : secretKey;
    const connection = new NodeSSH();
    let shownKey: Buffer | undefined;
    await connection.connect({
        host: ssh.host,
        port: ssh.port,
        username: ssh.user,
        privateKey,
        agent: privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined,
        readyTimeout: CONNECT_TIMEOUT_MS,
        ...(pinned && {
            algorithms: { serverHostKey: hostKeyAlgorithms(keyType) as any },
            hostVerifier: (key: Buffer) => {
                shownKey = key;
                return key.equals(pinned);
            },
        }),
    }).catch((error: Error) => {
        if (pinned && shownKey && !shownKey.equals(pinned)) {
            throw new Error(`the server's host key is not ssh.hostKey: ${keyType} ${shownKey.toString("base64")}`);
        }
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

/** Runs a host script as root (through `sudo -n` for other users), bounded in time. */
export function runScript(connection: NodeSSH, user: string, body: string, what: string, shell: "sh" | "bash" = "sh", args: readonly string[] = []) {
    return withTimeout(connection.execCommand(remoteCommand(body, user, shell, args)), COMMAND_TIMEOUT_MS, what);
}
