// The small files besides main.cf, rendered from settings.
import { postfixCidr } from "./net";
import { PATHS } from "./paths";
import type { Settings } from "./settings";

const HEADER = "# Managed by pulumi-postfix: local changes are overwritten on the next change.";

/** `/etc/aliases` (aliases(5)); the component runs newaliases when it changes. */
export function renderAliases(settings: Settings): string {
    const lines = settings.aliases.map(({ name, targets }) => `${name}: ${targets.join(", ")}`);
    return [HEADER, ...lines, ""].join("\n");
}

/** `/etc/postfix/virtual` (virtual(5)): `address target, target`; postmap builds its database. */
export function renderVirtualAliases(settings: Settings): string {
    const lines = settings.virtualAliases.map(({ address, targets }) => `${address} ${targets.join(", ")}`);
    return [HEADER, ...lines, ""].join("\n");
}

/** `/etc/postfix/sasl_passwd`: the smarthost's credentials. The password was checked by relayPasswordProblem. */
export function renderSaslPasswd(settings: Settings, password: string): string {
    const relay = settings.relayHost;
    if (!relay?.username) throw new Error("renderSaslPasswd: no relayHost.username");
    return `${HEADER}\n${relay.nexthop} ${relay.username}:${password}\n`;
}

/**
 * The services we manage in master.cf, as `postconf -M` (service) and `-P` (parameter) arguments,
 * applied on the host to a copy of Debian's own master.cf. Empty: our services are removed.
 */
export function renderMasterServices(settings: Settings, mailVersion: string): string {
    if (!settings.submission) return "";
    const [major, minor] = mailVersion.split(".").map(Number);
    const submission: Array<[string, string]> = [
        ["syslog_name", "postfix/submission"],
        // STARTTLS before anything else: AUTH is not even offered before it (smtpd_tls_auth_only).
        ["smtpd_tls_security_level", "encrypt"],
        ["smtpd_sasl_auth_enable", "yes"],
        ["smtpd_sasl_type", "dovecot"],
        ["smtpd_sasl_path", DOVECOT_AUTH_SOCKET],
        ["smtpd_sasl_security_options", "noanonymous"],
        // Here only a login counts: the trusted networks send on port 25.
        ["smtpd_client_restrictions", "permit_sasl_authenticated,reject"],
        // Mail programs name themselves as they like (Outlook: the Windows computer name).
        ["smtpd_helo_restrictions", ""],
        // The null sender first: reject_sender_login_mismatch skips it (Postfix checks only a
        // non-empty sender), and a bounce is the server's job, never a mail program's. The table
        // is written without spaces: master.cf's `-o` values take none.
        ["smtpd_sender_restrictions", "check_sender_access,inline:{<>=REJECT},reject_non_fqdn_sender,reject_sender_login_mismatch,permit_sasl_authenticated,reject"],
        ["smtpd_relay_restrictions", "permit_sasl_authenticated,reject"],
        // The envelope's rule for the From: header too (sender-check.py, spawned below); when it
        // cannot answer, mail waits (tempfail) rather than passing unchecked.
        ["smtpd_milters", `unix:private/${SENDER_CHECK_SERVICE}`],
        ["milter_default_action", "tempfail"],
        ["smtpd_recipient_restrictions", "permit_sasl_authenticated,reject"],
        // Password guessing: Dovecot answers a wrong password after 2 s, and each client address
        // (the trusted networks too) gets this many AUTH commands a minute.
        ["smtpd_client_auth_rate_limit", String(SUBMISSION_AUTH_PER_MINUTE)],
        ["smtpd_client_event_limit_exceptions", ""],
        // Counted per IPv6 /64 (a client may hold a whole one), where Postfix can: 3.8 and later
        // (Debian 13) count per /84 by default, 3.7 (Debian 12) only per address.
        ...(major > 3 || (major === 3 && minor >= 8) ? [["smtpd_client_ipv6_prefix_length", "64"] as [string, string]] : []),
    ];
    return [
        // The From: rule, started by Postfix for each session of port 587: outside the chroot, as nobody.
        `service ${SENDER_CHECK_SERVICE}/unix=${SENDER_CHECK_SERVICE} unix - n n - - spawn user=nobody argv=/usr/bin/python3 ${PATHS.senderCheck}`,
        // Same columns as Debian's smtp service: public, chrooted smtpd.
        "service submission/inet=submission inet n - y - - smtpd",
        ...submission.map(([name, value]) => `parameter submission/inet/${name}=${value}`),
        "",
    ].join("\n");
}

/** The master.cf service (a socket in Postfix's private/) where port 587's smtpd asks sender-check.py. */
export const SENDER_CHECK_SERVICE = "pulumi-sender-check";

/** AUTH commands a client address may send to port 587 per minute (anvil's time unit). */
export const SUBMISSION_AUTH_PER_MINUTE = 10;
/** Dovecot's auth socket, relative to Postfix's queue directory (smtpd runs chrooted there). */
export const DOVECOT_AUTH_SOCKET = "private/auth";

/** The passwords step's standard input: `user password` lines (the script hashes each). Passwords were checked: no newline. */
export function renderMailPasswords(entries: ReadonlyArray<readonly [string, string]>): string {
    return entries.map(([user, password]) => `${user} ${password}\n`).join("");
}

/** What Dovecot serves over IMAP when the stack turns it on (`imap`). */
export interface DovecotImap {
    /** Addresses Dovecot listens on: the server's listen addresses, IPv6 without brackets. */
    listen: readonly string[];
    /** The OpenSSL cipher list of TLS 1.2: the one policy of Postfix's ports. */
    tlsCiphers: string;
}

/**
 * `/etc/dovecot/conf.d/99-pulumi-postfix.conf`: the component's additions to Dovecot, where Debian
 * expects local ones (its dovecot.conf includes conf.d/*.conf, in name order, after its own
 * settings), so an admin's Dovecot keeps everything else: its protocols, users and certificate.
 * Port 587's logins come from the stack's password hashes only: the passdb of protocol smtp is
 * consulted before the global ones (Debian's PAM, which knows every system account) and ends the
 * lookup either way. With `imap`, the same holds for IMAP (the stack's passwords replace the
 * system ones there), and Dovecot serves each user's ~/Maildir on 993 and 143 with the stack's
 * certificate and TLS policy. Dovecot 2.4 (Debian 13) changed the syntax of 2.3.
 */
export function renderDovecotConf(dovecotVersion: string | undefined, imap?: DovecotImap): string {
    const v24 = dovecotVersion !== undefined && /^(2\.([4-9]|\d\d)|[3-9])\b/.test(dovecotVersion);
    const common = [
        "auth_mechanisms = plain login",
        // A wrong password is answered after this delay (Dovecot's default, written to be seen);
        // Dovecot slows repeated failures from one address further.
        "auth_failure_delay = 2 secs",
        // Never a password in a log, whatever else is logged (the defaults, written to be seen).
        "auth_verbose_passwords = no",
        "auth_debug_passwords = no",
    ];
    const listener = [
        "service auth {",
        `  unix_listener /var/spool/postfix/${DOVECOT_AUTH_SOCKET} {`,
        "    mode = 0660",
        "    user = postfix",
        "    group = postfix",
        "  }",
        "}",
    ];
    // Found or not, a login of these protocols ends here: no other passdb is asked.
    const passdb = v24
        ? [
            "  passdb pulumi-postfix {",
            "    driver = passwd-file",
            `    passwd_file_path = ${PATHS.mailPasswords}`,
            "    default_password_scheme = SHA512-CRYPT",
            "    result_failure = return-fail",
            "    result_internalfail = return-fail",
            "  }",
        ]
        : [
            "  passdb {",
            "    driver = passwd-file",
            `    args = scheme=SHA512-CRYPT ${PATHS.mailPasswords}`,
            "    result_failure = return-fail",
            "    result_internalfail = return-fail",
            "  }",
        ];
    const protocols = ["smtp", ...(imap ? ["imap"] : [])].flatMap((protocol) => [`protocol ${protocol} {`, ...passdb, "}"]);
    const mail = imap ? [
        `listen = ${imap.listen.join(v24 ? " " : ", ")}`,
        // No login before TLS, on 143 as on 993: LOGINDISABLED until STARTTLS.
        "ssl = required",
        ...(v24
            ? [
                "auth_allow_cleartext = no",
                `ssl_server_cert_file = ${PATHS.tlsCert}`,
                `ssl_server_key_file = ${PATHS.tlsKey}`,
                "ssl_server_prefer_ciphers = server",
                // Where Postfix delivers (home_mailbox = Maildir/). INBOX is that folder itself:
                // Debian's 10-mail.conf names an mbox file in /var/mail otherwise.
                "mail_driver = maildir",
                "mail_path = %{home}/Maildir",
                "mail_inbox_path = %{home}/Maildir",
            ]
            : [
                "disable_plaintext_auth = yes",
                `ssl_cert = <${PATHS.tlsCert}`,
                `ssl_key = <${PATHS.tlsKey}`,
                "ssl_prefer_server_ciphers = yes",
                // Where Postfix delivers (home_mailbox = Maildir/).
                "mail_location = maildir:~/Maildir",
            ]),
        "ssl_min_protocol = TLSv1.2",
        `ssl_cipher_list = ${imap.tlsCiphers}`,
        "service imap-login {",
        "  inet_listener imap {",
        "    port = 143",
        "  }",
        "  inet_listener imaps {",
        "    port = 993",
        "    ssl = yes",
        "  }",
        "}",
    ] : [];
    return [HEADER, ...common, ...mail, ...listener, ...protocols, ""].join("\n");
}

/** `/etc/mailname`: one line, the domain of outgoing mail. */
export function renderMailname(settings: Settings): string {
    return `${settings.domain}\n`;
}

/**
 * Answers for the postfix package's install questions (debconf-set-selections format; values are
 * not quoted). Debian ignores `destinations` on a fresh install, and the config written afterwards
 * replaces it all; the answers matter for the seconds between install and that write, so they are
 * already the safe ones: only the trusted networks, the configured protocols.
 */
export function renderPreseed(settings: Settings): string {
    const rootAlias = settings.aliases.find((a) => a.name === "root")?.targets[0] ?? "";
    const answers: Array<[string, string, string]> = [
        ["main_mailer_type", "select", "Internet Site"],
        ["mailname", "string", settings.domain],
        ["destinations", "string", settings.destinations.join(", ")],
        ["mynetworks", "string", settings.trustedNetworks.map(postfixCidr).join(" ")],
        ["root_address", "string", rootAlias],
        ["relayhost", "string", ""],
        ["protocols", "select", settings.inetProtocols],
        ["mailbox_limit", "string", "0"],
        ["recipient_delim", "string", "+"],
    ];
    return answers.map(([question, type, value]) => `postfix postfix/${question} ${type} ${value}`.trimEnd()).join("\n") + "\n";
}
