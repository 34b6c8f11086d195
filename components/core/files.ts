// The small files besides main.cf, rendered from settings.
import { postfixCidr } from "./net";
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
export function renderMasterServices(settings: Settings): string {
    if (!settings.submission) return "";
    return [
        // Same columns as Debian's smtp service: public, chrooted smtpd.
        "service submission/inet=submission inet n - y - - smtpd",
        "parameter submission/inet/syslog_name=postfix/submission",
        "parameter submission/inet/smtpd_tls_security_level=encrypt",
        "",
    ].join("\n");
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
