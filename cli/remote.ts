// SSH to a server with its stack settings, as the component connects: same user, key and host
// key (ssh.hostKey, else known_hosts: an unknown or changed key is refused, as OpenSSH does).
import { readFileSync } from "node:fs";
import { NodeSSH } from "node-ssh";
import { fingerprint, parseHostKey, typeLabel } from "../components/core/known-hosts";
import { remoteCommand } from "../components/core/shell";
import { expandHome, SshSettings } from "../components/core/ssh";
import { trustedHostKey } from "../components/host-key";

export const CONNECT_TIMEOUT_MS = 10_000;
export const COMMAND_TIMEOUT_MS = 60_000;

/** Host key algorithms that prove a pinned key of this type (an RSA key signs with SHA-2 or SHA-1). */
function hostKeyAlgorithms(type: string): string[] {
    return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/** The stack's SSH secrets: the key (when no key file is named) and its passphrase. */
export interface SshSecrets {
    privateKey?: string;
    passphrase?: string;
}

/**
 * Authentication in the component's order: the key file, the secret key, the SSH agent. The host
 * key is the one the component verifies; any other is refused before authentication. Resolves
 * with the connection and where the trusted key came from.
 */
export async function connectSsh(ssh: SshSettings, secrets: SshSecrets, serverName: string): Promise<{ connection: NodeSSH; keySource: string }> {
    // known_hosts is only read here: a first use is recorded by pulumi up, not by a check.
    const trusted = trustedHostKey(ssh, `server ${serverName}`, { record: false });
    // A check trusts only a key on record: with accept-new, the first pulumi up records it.
    if (trusted.firstUse) {
        throw new Error(`not a known host yet: no key for it in ${trusted.firstUse.file} (with strictHostKeyChecking: accept-new, the next pulumi up records it); nothing was sent to it`);
    }
    const [keyType, keyBase64] = trusted.hostKey.split(" ");
    const expected = Buffer.from(keyBase64, "base64");
    const privateKey = ssh.privateKeyPath !== undefined ? readFileSync(expandHome(ssh.privateKeyPath), "utf8") : secrets.privateKey;
    const connection = new NodeSSH();
    let shownKey: Buffer | undefined;
    await connection.connect({
        host: ssh.host,
        port: ssh.port,
        username: ssh.user,
        privateKey,
        passphrase: secrets.passphrase,
        agent: privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined,
        readyTimeout: CONNECT_TIMEOUT_MS,
        algorithms: { serverHostKey: hostKeyAlgorithms(keyType) as any },
        hostVerifier: (key: Buffer) => {
            shownKey = key;
            return key.equals(expected);
        },
    }).catch((error: Error) => {
        if (shownKey && !shownKey.equals(expected)) {
            const shown = { type: keyType, base64: shownKey.toString("base64") };
            throw new Error(`HOST KEY CHANGED: the server shows ${fingerprint(shown)} (${typeLabel(keyType)}), but ${trusted.source} has `
                + `${fingerprint(parseHostKey(trusted.hostKey)!)}. Someone may be intercepting the connection, or the server was reinstalled; nothing was sent to it`);
        }
        throw error;
    });
    return { connection, keySource: trusted.source };
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
