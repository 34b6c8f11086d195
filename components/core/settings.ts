// The options a user sets (plain data, as in the stack config) and the validated settings the
// renderers take. The options, not a template, are the interface.
import type { Address, Cidr } from "./net";

/** Mail options of one server. Shared options may be set once for every server of a stack. */
export interface MailOptions {
    /** Mail domain (`mydomain`, `/etc/mailname`): the part after the `@` of local addresses, e.g. `home.lan`. */
    domain: string;
    /** Fully qualified host name of the server (`myhostname`), e.g. `server.home.lan`. */
    hostname: string;
    /** Domains this server is the final destination for (`mydestination`). Default: the domain, the host name, `localhost.<domain>`, `localhost`. */
    destinations?: string[];
    /** IP addresses Postfix listens on (`inet_interfaces`). Each must be configured on the host and lie inside a trusted network. */
    listenAddresses: string[];
    /** Trusted client networks in CIDR form (`mynetworks`): these clients may send and relay mail on port 25 without a login; port 25 refuses every other client (port 587, with `submission`, takes logins from anywhere that reaches it). */
    trustedNetworks: string[];
    /** Allow trusted networks outside the private, loopback and link-local ranges. Default `false`. */
    allowPublicNetworks?: boolean;
    /** Largest message accepted, in bytes (`message_size_limit`). Default 52428800 (50 MiB). */
    messageSizeLimit?: number;
    /** Local accounts that receive mail in `~/Maildir/`. Created (no password, no login shell) when missing; never deleted. */
    mailUsers?: string[];
    /** `/etc/aliases`: alias name to its targets (local users, other aliases, or addresses). `postmaster: [root]` is added when absent. (Stack config may also give one target as a plain string.) */
    aliases?: Record<string, string[]>;
    /** The certificate offered with STARTTLS on every port: self-signed, or signed by the stack's certificate authority when there is one. */
    certificate?: CertificateOptions;
    /** Further `main.cf` parameters as Postfix writes them (`"yes"`, `"10s"`, `"a, b"`), written after the managed ones. Parameters the typed options own are refused. (Stack config may also give numbers, booleans and lists.) */
    extraParameters?: Record<string, string>;
    /** Let `extraParameters` replace the safety parameters (client, relay and recipient restrictions...). Default `false`. */
    allowUnsafeOverrides?: boolean;
    /** Seconds the install waits for another apt or dpkg run to release its lock. Default 120. */
    aptLockTimeoutSeconds?: number;
    /** Send all outbound mail through this smarthost (most ISPs block port 25). Its password is the secret `relayHostPassword`. Default: deliver directly. */
    relayHost?: RelayHostOptions;
    /**
     * Listen on the submission port 587 for mail clients that log in: STARTTLS first, then SASL
     * (Dovecot's auth service) with a mail user's password from the secret `mailPasswords`. There an
     * authenticated user may send from any network that reaches the port, as their own addresses
     * only; nobody else may send. Requires at least one password. Default `false`.
     */
    submission?: boolean;
    /**
     * Serve each mail user's `~/Maildir` over IMAP (Dovecot): on 993 (TLS from the first byte) and
     * on 143 (STARTTLS before any login), on the listen addresses only, with the server's
     * certificate and TLS policy, and the same password as port 587 (`mailPasswords`), so it
     * requires `submission`. On a Dovecot the admin already runs, the stack's passwords replace
     * the system ones for IMAP. Default `false`.
     */
    imap?: boolean;
    /** Addresses in other domains delivered here (`virtual_alias_maps`), e.g. `info@shop.test: [alice]`; `@shop.test` catches the rest of a domain. Their domains become virtual alias domains. (Stack config may also give one target as a plain string.) */
    virtualAliases?: Record<string, string[]>;
}

// Named value sets (not bare literal unions): the component package's schema lists them as enums.

/** How the smarthost's TLS is checked. */
export const RelayTls = {
    /** TLS required, and the certificate must chain to a trusted CA and carry `tlsName` (the default). */
    verify: "verify",
    /** TLS required, certificate not checked: whoever intercepts the connection gets the password. Only for a relay that cannot present a valid certificate. */
    encrypt: "encrypt",
} as const;
export type RelayTls = (typeof RelayTls)[keyof typeof RelayTls];

/** The certificate's key algorithm. */
export const KeyAlgorithm = {
    /** RSA: the widest client support. */
    RSA: "RSA",
    /** ECDSA on the P-256 curve. */
    ECDSA: "ECDSA",
} as const;
export type KeyAlgorithm = (typeof KeyAlgorithm)[keyof typeof KeyAlgorithm];

export interface RelayHostOptions {
    /** The relay's host name or IP address; written `[host]:port` (no MX lookup). */
    host: string;
    /** The relay's port. Default 587 (submission with STARTTLS); 465 speaks TLS from the first byte. */
    port?: number;
    /** SASL user name. With it, the secret `relayHostPassword` is required. */
    username?: string;
    /** `verify` (default): TLS required, and the certificate must chain to a trusted CA and carry `tlsName`, before the password is sent. `encrypt`: TLS required, certificate not checked (whoever intercepts the connection gets the password). */
    tls?: RelayTls;
    /** The name the relay's certificate must carry when `tls` is `verify`. Default: `host` (required when `host` is an address). */
    tlsName?: string;
    /** PEM certificate(s) of the authority that signed the relay's certificate, for `verify`. Default: the system's CAs (`/etc/ssl/certs`). */
    caCertificatePem?: string;
}

export interface CertificateOptions {
    /** Key algorithm: `RSA` (default, widest client support) or `ECDSA` (P-256). */
    algorithm?: KeyAlgorithm;
    /** RSA key size: 2048 (default), 3072 or 4096. */
    rsaBits?: number;
    /** Subject common name. Default: the host name. */
    commonName?: string;
    /** Subject organization. Optional. */
    organization?: string;
    /** DNS names in the certificate. Default: the host name. */
    dnsNames?: string[];
    /** IP addresses in the certificate. Default: the listen addresses. */
    ipAddresses?: string[];
    /** Days the certificate is valid. Default 397, at most 825: Apple's systems refuse longer server certificates, self-signed or from a private authority. */
    validityDays?: number;
    /** Days before expiry from which `pulumi up` issues a new certificate. Default 30. */
    earlyRenewalDays?: number;
}

export type ParameterValue = string | number | boolean | readonly string[];

/** Validated, normalised settings: what the renderers take. */
export interface Settings {
    domain: string;
    hostname: string;
    destinations: string[];
    listenAddresses: Address[];
    inetProtocols: "ipv4" | "ipv6" | "all";
    trustedNetworks: Cidr[];
    messageSizeLimit: number;
    mailUsers: string[];
    /** In file order: `postmaster` first, then as configured. */
    aliases: Array<{ name: string; targets: string[] }>;
    certificate: {
        algorithm: KeyAlgorithm;
        rsaBits: number;
        commonName: string;
        organization?: string;
        dnsNames: string[];
        ipAddresses: string[];
        validityHours: number;
        earlyRenewalHours: number;
    };
    extraParameters: Array<{ name: string; value: ParameterValue }>;
    allowUnsafeOverrides: boolean;
    aptLockTimeoutSeconds: number;
    relayHost?: {
        /** `[host]:port`, as relayhost and sasl_passwd write it. */
        nexthop: string;
        /** Port 465 (submissions): TLS from the first byte instead of STARTTLS. */
        implicitTls: boolean;
        username?: string;
        tls: RelayTls;
        tlsName?: string;
        caCertificatePem?: string;
    };
    submission: boolean;
    /** IMAP (993 and 143) for the mail users who have a password. */
    imap: boolean;
    /** Mail users who may log in on port 587 (they have a password), sorted. */
    mailLogins: string[];
    /** Who may send as what on port 587: a local part (any final destination) or a full address, and its owners' logins. */
    senderLogins: Array<{ sender: string; logins: string[] }>;
    /** In file order; keys are `local@domain` or `@domain`. */
    virtualAliases: Array<{ address: string; targets: string[] }>;
    /** Domains of the virtual aliases that are not final destinations. */
    virtualAliasDomains: string[];
}

export const DEFAULT_MESSAGE_SIZE_LIMIT = 52428800;
