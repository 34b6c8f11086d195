// The program: one PostfixServer per server in the stack's `postfix:*` config.
import * as pulumi from "@pulumi/pulumi";
import { accessSync, constants } from "node:fs";
import { certificateAuthority } from "./components/certificate-authority";
import { renderAutoconfig } from "./components/core/autoconfig";
import { PostfixServer } from "./components/postfix-server";
import { expandHome } from "./components/core/ssh";
import { ConfigError } from "./components/core/validate";
import { NAMESPACE, readStackConfig } from "./components/stack-config";

// The SDK's own answer to "was this key set with --secret" (from the engine's list of secret keys);
// not in its typings.
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret: (key: string) => boolean }).isConfigSecret;
const allConfig = pulumi.runtime.allConfig();
const secretKeys = new Set(Object.keys(allConfig).filter((key) => isConfigSecret(key)));
const { servers, problems, certificateAuthority: authorityArgs, mailPasswords } = readStackConfig(allConfig, secretKeys);
servers.forEach((server, i) => {
    const path = server.ssh.privateKeyPath;
    try {
        if (path !== undefined) accessSync(expandHome(path), constants.R_OK);
    } catch (error) {
        problems.push(`${NAMESPACE}:servers[${i}].ssh.privateKeyPath cannot be read: ${(error as Error).message}`);
    }
});
// Every problem at once, before any resource exists.
// RunError: Pulumi prints the message alone, without a stack trace.
if (problems.length > 0) throw new pulumi.RunError(new ConfigError(problems).message);

const config = new pulumi.Config(NAMESPACE);
const sshPrivateKey = config.getSecret("sshPrivateKey");
const sshPrivateKeyPassword = config.getSecret("sshPrivateKeyPassword");
const relayHostPassword = config.getSecret("relayHostPassword");
// Read from the stack's config by readStackConfig (which checked them); each travels on as a secret.
const passwords = Object.fromEntries(Object.entries(mailPasswords ?? {}).map(([user, password]) => [user, pulumi.secret(password)]));
// One authority for the whole stack: clients import it once for every server.
const authority = authorityArgs && certificateAuthority("mail-ca", authorityArgs);
const components = servers.map((server) => new PostfixServer(server.name, {
    ...server.options, ssh: server.sshOptions, sshPrivateKey, sshPrivateKeyPassword,
    relayHostPassword: server.settings.relayHost?.username === undefined ? undefined : relayHostPassword,
    mailPasswords: server.settings.submission ? passwords : undefined,
    certificateAuthority: authority,
}));

/**
 * Per server: where to send mail, the certificate to expect, the Postfix version, and with IMAP
 * Thunderbird's config-v1.1.xml. (main.cf's
 * parameters are the component's output, not the stack's: `preview --diff` shows main.cf itself,
 * and a failed run's display stays short.)
 */
const mailServers = Object.fromEntries(components.map((c, i) => [servers[i].name, {
    smtpEndpoints: c.smtpEndpoints,
    certificateSha256: c.certificateSha256,
    certificatePem: c.certificatePem,
    postfixVersion: c.postfixVersion,
    // With imap and submission: Thunderbird's automatic set-up file for the domain.
    ...(renderAutoconfig(servers[i].settings) === undefined ? {} : { thunderbirdAutoconfig: renderAutoconfig(servers[i].settings) }),
}]));

// The stack's outputs. With a certificate authority, also its certificate (what mail clients
// import) and that certificate's SHA-256 fingerprint (to compare on a client after the import);
// without one, no such keys at all (an undefined output would be a warning on every run).
export = {
    mailServers,
    ...(authority ? { certificateAuthorityPem: authority.certificatePem, certificateAuthoritySha256: authority.certificateSha256 } : {}),
};
