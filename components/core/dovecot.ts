// Dovecot as the stack sets it, and what an `up` changes for the users of a Dovecot already on the
// host (the guide's IMAP server): read from `doveconf -n` and the certificate at the guide's path.
// Pure: the host's side arrives as text (`npm run verify -- --changes`).
import { X509Certificate } from "node:crypto";
import type { Change } from "./changes";
import { DovecotImap, renderDovecotConf } from "./files";
import { TLS_EXCLUDED_CIPHERS } from "./main-cf";
import { PATHS } from "./paths";
import type { Settings } from "./settings";

/** IMAP as the stack sets it: Postfix's listen addresses and the TLS 1.2 ciphers of its one policy (smtpd_tls_ciphers = high, less the excluded classes). */
export function imapOf(settings: Settings): DovecotImap | undefined {
    if (!settings.imap) return undefined;
    return { listen: settings.listenAddresses.map((a) => a.text), tlsCiphers: ["HIGH", ...TLS_EXCLUDED_CIPHERS.map((c) => `!${c}`)].join(":") };
}

/** The component's conf.d file for this host's Dovecot version (2.3 until Dovecot is installed). */
export function renderedDovecotConf(settings: Settings, dovecotVersion: string | undefined): string | undefined {
    return settings.submission ? renderDovecotConf(dovecotVersion, imapOf(settings)) : undefined;
}

/** What the host's Dovecot runs now, as `doveconf -n` prints it (the component's file left out: the guide's own). */
export interface DovecotNow {
    protocols: string[];
    /** Drivers of the global password databases (`pam`, `passwd-file`...). */
    passdbs: string[];
    listen?: string;
}

/** Reads `doveconf -n`: the protocols, the global passdb drivers (2.3 `driver = x` or 2.4 `passdb x {`), the listen addresses. */
export function parseDoveconf(text: string): DovecotNow {
    const protocols = /^protocols = "?([^"\n]*)"?$/m.exec(text)?.[1].trim().split(/\s+/).filter(Boolean)
        ?? [...text.matchAll(/^protocols \{\n((?:  .*\n)*)\}/gm)].flatMap((m) => [...m[1].matchAll(/^\s+(\w+) = yes$/gm)].map((p) => p[1]));
    const passdbs: string[] = [];
    let depth = 0;
    // The top-level passdb being read: its name (2.4), then its driver when one is written.
    let current: string | undefined;
    for (const line of text.split("\n")) {
        const trimmed = line.trim();
        if (depth === 0 && /^passdb\b.*\{$/.test(trimmed)) {
            current = /^passdb (\S+) \{$/.exec(trimmed)?.[1] ?? "";
        } else if (depth === 1 && current !== undefined) {
            current = /^driver = (\S+)$/.exec(trimmed)?.[1] ?? current;
        }
        if (trimmed.endsWith("{")) depth++;
        if (trimmed === "}") {
            depth--;
            if (depth === 0 && current !== undefined) passdbs.push(current || "unnamed");
            if (depth === 0) current = undefined;
        }
    }
    const listen = /^listen = (.*)$/m.exec(text)?.[1].trim();
    return { protocols, passdbs: [...new Set(passdbs)], ...(listen ? { listen } : {}) };
}

/**
 * What the next `pulumi up` changes for the people who use this host's Dovecot and certificate:
 * with `imap`, IMAP logins move from the host's own password databases to the stack's passwords,
 * and Dovecot listens on the stack's addresses; the certificate at the guide's path is replaced
 * (and kept, for `pulumi destroy`).
 */
export function userChanges(settings: Settings, host: { doveconf?: string; certPem?: string }, stackCertPem?: string): Change[] {
    const changes: Change[] = [];
    const now = host.doveconf === undefined ? undefined : parseDoveconf(host.doveconf);
    const logins = settings.mailLogins.join(", ");
    if (settings.imap && now?.protocols.includes("imap")) {
        const others = now.passdbs.filter((driver) => driver !== "passwd-file" || now.passdbs.length === 1);
        changes.push({
            file: "dovecot: IMAP logins",
            from: `the host's accounts and passwords (passdb ${others.join(", ") || "none"})`,
            to: `the stack's mailPasswords only (${logins}); other accounts can no longer read mail over IMAP`,
        });
        const listen = settings.listenAddresses.map((a) => a.text).join(", ");
        if (now.listen !== undefined && now.listen.replace(/,/g, " ").split(/\s+/).join(", ") !== listen) {
            changes.push({ file: "dovecot: IMAP addresses", from: now.listen, to: `${listen} (ports 993 and 143, STARTTLS before any login)` });
        }
    } else if (settings.imap) {
        changes.push({ file: "dovecot: IMAP", to: `served on 993 and 143 for ${logins}, with the stack's passwords` });
    }
    if (host.certPem !== undefined && host.certPem !== stackCertPem) {
        changes.push({ file: PATHS.tlsCert, from: describeCertificate(host.certPem), to: `the stack's certificate (this one kept in ${PATHS.stateDir}/original/; pulumi destroy puts it back)` });
    }
    return changes;
}

function describeCertificate(pem: string): string {
    try {
        const certificate = new X509Certificate(pem);
        return `${certificate.subject.replace(/\n/g, ", ")}, SHA-256 ${certificate.fingerprint256.slice(0, 23)}...`;
    } catch {
        return "a file that is not a certificate";
    }
}
