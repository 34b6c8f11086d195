// Thunderbird's automatic set-up for the stack's domain: Mozilla's config-v1.1.xml format (the
// ISPDB's, which Thunderbird also reads from https://autoconfig.<domain>/mail/config-v1.1.xml and
// from the domain's /.well-known/autoconfig/mail/config-v1.1.xml). A user or their web server
// hands it to Thunderbird; the user then types their address and password only.
import type { Settings } from "./settings";

/** One server entry of the file: where, and how the connection is secured. */
export interface AutoconfigServer {
    type: "imap" | "smtp";
    hostname: string;
    port: number;
    socketType: "SSL" | "STARTTLS";
}

/**
 * The servers a mail program uses, in Thunderbird's order of preference: IMAP on 993 (TLS from the
 * first byte), then 143 (STARTTLS); sending on 587 (STARTTLS). All with a password, and the mail
 * user's name (the local part of their address) as the login.
 */
export function autoconfigServers(settings: Settings): AutoconfigServer[] {
    const hostname = settings.hostname;
    return [
        { type: "imap", hostname, port: 993, socketType: "SSL" },
        { type: "imap", hostname, port: 143, socketType: "STARTTLS" },
        { type: "smtp", hostname, port: 587, socketType: "STARTTLS" },
    ];
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** `config-v1.1.xml` for the domain when the stack serves IMAP and port 587; undefined otherwise (Thunderbird needs both). */
export function renderAutoconfig(settings: Settings): string | undefined {
    if (!settings.imap || !settings.submission) return undefined;
    const domain = escapeXml(settings.domain);
    const server = (s: AutoconfigServer) => {
        const tag = s.type === "imap" ? "incomingServer" : "outgoingServer";
        return [
            `    <${tag} type="${s.type}">`,
            `      <hostname>${escapeXml(s.hostname)}</hostname>`,
            `      <port>${s.port}</port>`,
            `      <socketType>${s.socketType}</socketType>`,
            // A password sent inside TLS (Thunderbird's "Normal password").
            "      <authentication>password-cleartext</authentication>",
            "      <username>%EMAILLOCALPART%</username>",
            `    </${tag}>`,
        ];
    };
    return [
        `<?xml version="1.0" encoding="UTF-8"?>`,
        `<clientConfig version="1.1">`,
        `  <emailProvider id="${domain}">`,
        `    <domain>${domain}</domain>`,
        `    <displayName>${domain} mail</displayName>`,
        `    <displayShortName>${domain}</displayShortName>`,
        ...autoconfigServers(settings).flatMap(server),
        `  </emailProvider>`,
        `</clientConfig>`,
        "",
    ].join("\n");
}
