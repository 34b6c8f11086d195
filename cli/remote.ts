// SSH to a server with its stack settings, as the component connects: same user, key and host
// key (ssh.hostKey, else known_hosts: an unknown or changed key is refused, as OpenSSH does).
import { readFileSync } from "node:fs";
import { NodeSSH } from "node-ssh";
import { fingerprint, parseHostKey, typeLabel } from "../components/core/known-hosts";
import { expandHome, SshSettings } from "../components/core/ssh";
import { trustedHostKey } from "../components/host-key";
import { connectVerified, HostKeyMismatchError } from "../components/ssh-session";

export { COMMAND_TIMEOUT_MS, runScript, withTimeout } from "../components/ssh-session";
export const CONNECT_TIMEOUT_MS = 10_000;

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
    const keyType = trusted.hostKey.split(" ")[0];
    const privateKey = ssh.privateKeyPath !== undefined ? readFileSync(expandHome(ssh.privateKeyPath), "utf8") : secrets.privateKey;
    const connection = await connectVerified({
        host: ssh.host, port: ssh.port, user: ssh.user, hostKey: trusted.hostKey, privateKey, passphrase: secrets.passphrase, readyTimeoutMs: CONNECT_TIMEOUT_MS,
    }).catch((error: Error) => {
        if (error instanceof HostKeyMismatchError) {
            const shown = { type: keyType, base64: error.shownKeyBase64 };
            throw new Error(`HOST KEY CHANGED: the server shows ${fingerprint(shown)} (${typeLabel(keyType)}), but ${trusted.source} has `
                + `${fingerprint(parseHostKey(trusted.hostKey)!)}. Someone may be intercepting the connection, or the server was reinstalled; nothing was sent to it`);
        }
        throw error;
    });
    return { connection, keySource: trusted.source };
}
