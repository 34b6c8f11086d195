// The small files besides main.cf, rendered from settings.
import { postfixCidr } from "./net";
import type { Settings } from "./settings";

const HEADER = "# Managed by pulumi-postfix: local changes are overwritten on the next change.";

/** `/etc/aliases` (aliases(5)); the component runs newaliases when it changes. */
export function renderAliases(settings: Settings): string {
    const lines = settings.aliases.map(({ name, targets }) => `${name}: ${targets.join(", ")}`);
    return [HEADER, ...lines, ""].join("\n");
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
