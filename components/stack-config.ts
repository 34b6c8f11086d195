// Reads a stack's `postfix:*` config into validated settings per server. Pure, so unit tests
// read it without Pulumi: index.ts hands it the stack's config map.
import { MailOptions, Settings } from "./core/settings";
import { SshOptions, SshSettings, validateSsh } from "./core/ssh";
import { MAIL_OPTIONS, relayPasswordProblem, validateMailOptions } from "./core/validate";

export const NAMESPACE = "postfix";
/** Secret keys: read as secrets by index.ts, never parsed here. */
export const SECRET_KEYS = new Set(["sshPrivateKey", "sshPrivateKeyPassword", "relayHostPassword"]);
const RELAY_PASSWORD_KEY = `${NAMESPACE}:relayHostPassword`;
const SERVER_KEYS = new Set(["name", "ssh", ...MAIL_OPTIONS]);
const SERVER_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

export interface ServerPlan {
    name: string;
    /** The options as written, shared ones merged in: what the component takes. */
    options: MailOptions;
    sshOptions: SshOptions;
    /** The same, validated. */
    settings: Settings;
    ssh: SshSettings;
}

/** Config values arrive as text; structured ones are JSON. */
function parseValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/**
 * `config` maps `namespace:key` to the value text, as `pulumi.runtime.allConfig()` returns it.
 * Options set at the top level apply to every server; a server entry may override any of them.
 */
export function readStackConfig(config: Record<string, string>): { servers: ServerPlan[]; problems: string[] } {
    const problems: string[] = [];
    const shared: Record<string, unknown> = {};
    for (const [fullKey, text] of Object.entries(config)) {
        const [namespace, key] = fullKey.split(":", 2);
        if (namespace !== NAMESPACE || SECRET_KEYS.has(key)) continue;
        if (key !== "servers" && !MAIL_OPTIONS.has(key)) {
            problems.push(`${fullKey} is not a known option (known: servers, ${[...SECRET_KEYS, ...MAIL_OPTIONS].join(", ")})`);
            continue;
        }
        shared[key] = parseValue(text);
    }
    const entries = shared.servers;
    delete shared.servers;
    if (!Array.isArray(entries) || entries.length === 0) {
        problems.push(`${NAMESPACE}:servers must be a non-empty list of servers, each with a name and ssh.host`);
        return { servers: [], problems };
    }

    const servers: ServerPlan[] = [];
    const names = new Set<string>();
    entries.forEach((entry: unknown, i) => {
        const at = `${NAMESPACE}:servers[${i}]`;
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
            problems.push(`${at} must be an object with a name and ssh`);
            return;
        }
        const own = entry as Record<string, unknown>;
        for (const key of Object.keys(own)) {
            if (!SERVER_KEYS.has(key)) problems.push(`${at}.${key} is not a known option (known: ${[...SERVER_KEYS].join(", ")})`);
        }
        const name = own.name;
        if (typeof name !== "string" || !SERVER_NAME.test(name)) {
            problems.push(`${at}.name must be a short name (a-z, 0-9 and inner hyphens)`);
        } else if (names.has(name)) {
            problems.push(`${at}.name "${name}" is used by another server`);
        } else {
            names.add(name);
        }
        const options: Record<string, unknown> = { ...shared };
        for (const [key, value] of Object.entries(own)) if (MAIL_OPTIONS.has(key)) options[key] = value;
        // Name each problem by where the user wrote the value: the server entry or the shared key.
        const keyOf = (path: string) => {
            const top = path.split(/[.[]/)[0];
            return top in own ? `${at}.${path}` : `${NAMESPACE}:${path}`;
        };
        const mail = validateMailOptions(options, keyOf);
        const ssh = validateSsh(own.ssh, (path) => `${at}.ssh${path ? `.${path}` : ""}`);
        problems.push(...mail.problems, ...ssh.problems);
        if (mail.settings && ssh.ssh && typeof name === "string") {
            servers.push({ name, options: options as unknown as MailOptions, sshOptions: own.ssh as SshOptions, settings: mail.settings, ssh: ssh.ssh });
        }
    });
    // The secret is shared by every server that names a relay user; its text never goes into a message.
    const password = config[RELAY_PASSWORD_KEY];
    const relayUsers = servers.filter((s) => s.settings.relayHost?.username !== undefined).map((s) => s.name);
    if (relayUsers.length > 0 && password === undefined) {
        problems.push(`${RELAY_PASSWORD_KEY} must be set (pulumi config set --secret ${RELAY_PASSWORD_KEY}): relayHost.username is set for ${relayUsers.join(", ")}`);
    } else if (relayUsers.length === 0 && password !== undefined && servers.length > 0) {
        problems.push(`${RELAY_PASSWORD_KEY} is set but no server has relayHost.username`);
    } else if (password !== undefined && relayPasswordProblem(password)) {
        problems.push(`${RELAY_PASSWORD_KEY} ${relayPasswordProblem(password)}`);
    }
    return { servers: problems.length === 0 ? servers : [], problems };
}
