// main.cf as typed parameters, rendered by one generic function.
import { postfixAddress, postfixCidr } from "./net";
import { PATHS } from "./paths";
import type { ParameterValue, Settings } from "./settings";

/** What only the host knows: read once after install. */
export interface HostFacts {
    /** Debian writes its own level on install (3.6 on Debian 12, 3.9 on Debian 13); we keep it. */
    compatibilityLevel: string;
}

/** `undefined`: the parameter is not written (its option is not in use). */
type Rule = (s: Settings, host: HostFacts) => ParameterValue | undefined;

// Every parameter the component owns, in file order. Each is corrected against the guide where
// SPEC.md says so (comments name the reason).
const PARAMETERS: Record<string, Rule> = {
    compatibility_level: (_s, host) => host.compatibilityLevel,
    myhostname: (s) => s.hostname,
    mydomain: (s) => s.domain,
    myorigin: () => PATHS.mailname,
    mydestination: (s) => s.destinations,
    // Listener changes need a stop and start; the service step decides that.
    inet_interfaces: (s) => s.listenAddresses.map(postfixAddress),
    inet_protocols: (s) => s.inetProtocols,
    mynetworks: (s) => s.trustedNetworks.map(postfixCidr),
    // Brackets: the smarthost itself, no MX lookup.
    relayhost: (s) => s.relayHost?.nexthop ?? "",
    home_mailbox: () => "Maildir/",
    message_size_limit: (s) => s.messageSizeLimit,
    // The default 51200000 is below a 50 MiB message limit and would stop local delivery.
    mailbox_size_limit: () => 0,
    recipient_delimiter: () => "+",
    alias_maps: () => `hash:${PATHS.aliases}`,
    alias_database: () => `hash:${PATHS.aliases}`,
    // Explicit, even empty: the default ($virtual_alias_maps) would read domains from the map's keys.
    virtual_alias_domains: (s) => s.virtualAliasDomains,
    virtual_alias_maps: () => `hash:${PATHS.virtualAliases}`,
    append_dot_mydomain: () => false,
    biff: () => false,
    readme_directory: () => "/usr/share/doc/postfix",
    smtpd_banner: () => "$myhostname ESMTP",
    disable_vrfy_command: () => true,
    smtpd_helo_required: () => true,
    smtpd_client_restrictions: () => ["permit_mynetworks", "reject"],
    // The guide's reject_unknown_sender_domain here never checked HELO.
    smtpd_helo_restrictions: () => ["permit_mynetworks", "reject_invalid_helo_hostname", "reject_non_fqdn_helo_hostname"],
    // permit_mynetworks first: LAN devices sending as outside domains must not need DNS.
    smtpd_sender_restrictions: () => ["permit_mynetworks", "reject_non_fqdn_sender", "reject_unknown_sender_domain"],
    // Explicit: Debian's default defers (4xx) instead of rejecting.
    smtpd_relay_restrictions: () => ["permit_mynetworks", "reject_unauth_destination"],
    smtpd_recipient_restrictions: () => ["permit_mynetworks", "reject_unauth_destination"],
    // Port 587's reject_sender_login_mismatch reads it: who may send as what (senderLogins).
    smtpd_sender_login_maps: (s) => (s.submission ? inlineTable(s.senderLogins.map((e) => [e.sender, e.logins.join(", ")])) : undefined),
    // smtpd_use_tls is deprecated since Postfix 3.9.
    smtpd_tls_security_level: () => "may",
    smtpd_tls_chain_files: () => [PATHS.tlsKey, PATHS.tlsCert],
    smtpd_tls_auth_only: () => true,
    smtpd_tls_protocols: () => ">=TLSv1.2",
    smtpd_tls_mandatory_protocols: () => ">=TLSv1.2",
    // One policy on every port, from Postfix's TLS_README and Mozilla's "intermediate" profile: TLS
    // 1.2 and 1.3 only (above), and in TLS 1.2 only ECDHE key exchange with AEAD ciphers. Postfix's
    // defaults for opportunistic TLS would also offer anonymous suites (no certificate at all),
    // static RSA (no forward secrecy) and CBC. Finite-field DHE is left out as well, so no DH group
    // size is ever in question: every client we name speaks ECDHE. TLS 1.3's suites are all AEAD.
    smtpd_tls_ciphers: () => "high",
    smtpd_tls_mandatory_ciphers: () => "high",
    smtpd_tls_exclude_ciphers: () => TLS_EXCLUDED_CIPHERS,
    smtpd_tls_loglevel: () => 1,
    // The server-side session cache is obsolete (RFC 5077 tickets); the client cache lives in data_directory.
    smtpd_tls_session_cache_database: () => "",
    // Through a smarthost TLS is required: the password must never cross in clear text.
    smtp_tls_security_level: (s) => (s.relayHost ? (s.relayHost.tls === "verify" ? "secure" : "encrypt") : "may"),
    // `secure` checks the certificate against the name the user gave, not against DNS.
    smtp_tls_policy_maps: (s) => (s.relayHost?.tls === "verify" && s.relayHost.tlsName
        ? `inline:{ { ${s.relayHost.nexthop} = secure match=${s.relayHost.tlsName} } }`
        : undefined),
    smtp_tls_wrappermode: (s) => (s.relayHost?.implicitTls ? true : undefined),
    smtp_tls_CAfile: (s) => (s.relayHost?.caCertificatePem ? PATHS.relayCa : undefined),
    smtp_tls_CApath: () => "/etc/ssl/certs",
    smtp_tls_session_cache_database: () => "btree:${data_directory}/smtp_scache",
    smtp_sasl_auth_enable: (s) => (s.relayHost?.username ? true : undefined),
    smtp_sasl_password_maps: (s) => (s.relayHost?.username ? `hash:${PATHS.saslPasswd}` : undefined),
    smtp_sasl_security_options: (s) => (s.relayHost?.username ? "noanonymous" : undefined),
    smtp_sasl_tls_security_options: (s) => (s.relayHost?.username ? "noanonymous" : undefined),
};

/** OpenSSL cipher classes never offered (see smtpd_tls_exclude_ciphers above). */
export const TLS_EXCLUDED_CIPHERS: readonly string[] = ["aNULL", "eNULL", "kRSA", "kDHE", "PSK", "SRP", "SHA1", "SHA256", "SHA384", "ARIA", "CAMELLIA", "AESCCM"];

/** A Postfix inline: table, `inline:{ { key = value }, ... }`; keys and values were validated (no braces, no commas in keys). */
function inlineTable(entries: Array<[string, string]>): string {
    return `inline:{ ${entries.map(([key, value]) => `{ ${key} = ${value} }`).join(", ")} }`;
}

/** Parameters the component always writes. */
export const OWNED_PARAMETERS: readonly string[] = Object.keys(PARAMETERS);

/** Parameters that keep the server from being an open relay; extras may replace them only when explicitly allowed. */
export const SAFETY_PARAMETERS: ReadonlySet<string> = new Set([
    "mynetworks",
    "mynetworks_style",
    "relay_domains",
    "inet_interfaces",
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_relay_before_recipient_restrictions",
    "smtpd_authorized_xclient_hosts",
    "smtpd_authorized_xforward_hosts",
    // A PROXY header is the client's own claim of its address, as XCLIENT is: with either set, any
    // client that reaches the port could pose as a trusted one (postscreen hands its claim to smtpd).
    "smtpd_upstream_proxy_protocol",
    "postscreen_upstream_proxy_protocol",
    // Sender-specified routing (user@remote@here, user%remote@here): Postfix documents both as
    // closing relay loopholes.
    "allow_untrusted_routing",
    "resolve_dequoted_address",
    "local_recipient_maps",
    "smtpd_reject_unlisted_recipient",
    "disable_vrfy_command",
    "smtpd_helo_required",
    // Port 587's sender check: who may send as what.
    "smtpd_sender_login_maps",
]);

/**
 * Parameters that decide whether and how a client may log in (every `smtpd_sasl_*` too, see
 * isLoginParameter): in main.cf they would offer AUTH on port 25, where the component offers none,
 * and `smtpd_tls_auth_only = no` lets a password cross in clear text, against the same passwords
 * and without port 587's rate limit.
 */
export const LOGIN_PARAMETERS: ReadonlySet<string> = new Set([
    "smtpd_tls_auth_only",
    "broken_sasl_auth_clients",
    "cyrus_sasl_config_path",
    "smtpd_client_auth_rate_limit",
    "smtpd_client_event_limit_exceptions",
]);

/** A SASL or TLS-auth parameter of the SMTP server (Postfix 3.7 and 3.10's postconf(5)). */
export function isLoginParameter(name: string): boolean {
    return name.startsWith("smtpd_sasl_") || LOGIN_PARAMETERS.has(name);
}

/** Owned parameters set through a typed option: an extra parameter of the same name points there. */
export const TYPED_OPTION_OF: Readonly<Record<string, string>> = {
    myhostname: "hostname",
    mydomain: "domain",
    myorigin: "domain",
    mydestination: "destinations",
    inet_interfaces: "listenAddresses",
    inet_protocols: "listenAddresses",
    mynetworks: "trustedNetworks",
    message_size_limit: "messageSizeLimit",
    smtpd_tls_chain_files: "certificate",
    alias_maps: "aliases",
    alias_database: "aliases",
    compatibility_level: "(kept from Debian)",
    relayhost: "relayHost",
    smtp_tls_policy_maps: "relayHost",
    smtp_tls_wrappermode: "relayHost",
    smtp_tls_CAfile: "relayHost",
    smtp_sasl_auth_enable: "relayHost",
    smtp_sasl_password_maps: "relayHost",
    smtp_sasl_security_options: "relayHost",
    smtp_sasl_tls_security_options: "relayHost",
    virtual_alias_domains: "virtualAliases",
    virtual_alias_maps: "virtualAliases",
    smtpd_sender_login_maps: "mailPasswords",
};

/** The parameters to write, in order: the owned ones (with allowed extras replacing them in place), then new extras. */
export function mainCfParameters(settings: Settings, host: HostFacts): Array<[string, ParameterValue]> {
    const extras = new Map(settings.extraParameters.map((p) => [p.name, p.value]));
    const owned: Array<[string, ParameterValue]> = [];
    for (const [name, rule] of Object.entries(PARAMETERS)) {
        const value = extras.get(name) ?? rule(settings, host);
        extras.delete(name);
        if (value !== undefined) owned.push([name, value]);
    }
    return [...owned, ...extras.entries()];
}

export function formatValue(value: ParameterValue): string {
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "number") return String(value);
    if (typeof value === "string") return value;
    return value.join(", ");
}

/** The one generic renderer: `name = value` lines. Values were validated: no newline can reach here. */
export function renderMainCf(parameters: Array<[string, ParameterValue]>): string {
    const lines = parameters.map(([name, value]) => `${name} = ${formatValue(value)}`.trimEnd());
    return ["# Managed by pulumi-postfix: local changes are overwritten on the next change.", ...lines, ""].join("\n");
}
