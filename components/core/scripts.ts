// What the host steps are given: the packages, the files the component owns and the arguments
// that write them, and what the install step reports. The scripts themselves are shell files in
// components/shell/; file contents and keys never appear in their command lines: they arrive on
// standard input.
import { PATHS } from "./paths";

/**
 * The packages the install step installs: postfix, the SASL mechanisms a smarthost login needs,
 * for port 587 Dovecot's auth service, openssl (which hashes the passwords) and python3 (which runs
 * the From: rule, sender-check.py), and for IMAP
 * Dovecot's IMAP server.
 */
export function packagesFor(smarthostLogin: boolean, submission = false, imap = false): string[] {
    return ["postfix", "postfix-doc", ...(smarthostLogin ? ["libsasl2-modules"] : []), ...(submission ? ["dovecot-core", "openssl", "python3"] : []),
        ...(imap ? ["dovecot-imapd"] : [])];
}

/** A file the component owns on the host, and what its change means for postfix. */
export interface ManagedFile {
    path: string;
    mode: "0600" | "0640" | "0644";
    /** What `components/shell/write-file.sh` checks before the file goes live, and runs after. */
    kind: "plain" | "main-cf" | "master-cf" | "aliases" | "virtual" | "sasl-passwd" | "dovecot-conf" | "mail-passwords";
}

export const MANAGED_FILES = {
    mainCf: { path: PATHS.mainCf, mode: "0644", kind: "main-cf" },
    aliases: { path: PATHS.aliases, mode: "0644", kind: "aliases" },
    mailname: { path: PATHS.mailname, mode: "0644", kind: "plain" },
    tlsKey: { path: PATHS.tlsKey, mode: "0600", kind: "plain" },
    tlsCert: { path: PATHS.tlsCert, mode: "0644", kind: "plain" },
    masterCf: { path: PATHS.masterCf, mode: "0644", kind: "master-cf" },
    virtualAliases: { path: PATHS.virtualAliases, mode: "0644", kind: "virtual" },
    saslPasswd: { path: PATHS.saslPasswd, mode: "0600", kind: "sasl-passwd" },
    relayCa: { path: PATHS.relayCa, mode: "0644", kind: "plain" },
    senderCheck: { path: PATHS.senderCheck, mode: "0644", kind: "plain" },
    dovecotConf: { path: PATHS.dovecotConf, mode: "0644", kind: "dovecot-conf" },
    // Hashes only, readable by Dovecot's auth processes (group dovecot).
    mailPasswords: { path: PATHS.mailPasswords, mode: "0640", kind: "mail-passwords" },
} satisfies Record<string, ManagedFile>;

/** The arguments of write-file.sh that remove `file` when the component is destroyed (or puts back the one found before its first write). */
export function removeFileArgs(file: ManagedFile, stateDir: string = PATHS.stateDir): string[] {
    return ["remove", file.kind, file.path, stateDir];
}

/** The arguments of write-file.sh that write `file` (`aliases`: the alias names, for the virtual map's check). */
export function writeFileArgs(file: ManagedFile, aliases: readonly string[] = [], stateDir: string = PATHS.stateDir): string[] {
    return ["write", file.kind, file.path, file.mode, stateDir, ...(file.kind === "virtual" ? aliases : [])];
}

/**
 * Reads the lines the install step ends with: `postfix 3.7.11 installed (21 packages),
 * compatibility_level 3.6`, and with Dovecot `dovecot 2.3.19.1`.
 */
export function parseHostFacts(stdout: string): { compatibilityLevel: string; mailVersion: string; dovecotVersion?: string } {
    const facts = /^postfix (\S+) .*, compatibility_level ([0-9][0-9.]*)$/m.exec(stdout);
    const [, mailVersion, compatibilityLevel] = facts ?? [];
    if (!compatibilityLevel || !mailVersion) {
        throw new Error(`pulumi-postfix: unexpected output from the install step: ${JSON.stringify(stdout)}`);
    }
    const dovecotVersion = /^dovecot ([0-9][0-9.]*)/m.exec(stdout)?.[1];
    return { compatibilityLevel, mailVersion, ...(dovecotVersion ? { dovecotVersion } : {}) };
}
