// Reads a stack's `postfix:*` config into validated settings per server. Pure, so unit tests
// read it without Pulumi: index.ts hands it the stack's config map.
import type { CertificateAuthorityArgs } from "./certificate-authority";
import { MailOptions, Settings } from "./core/settings";
import { SshOptions, SshSettings, validateSsh } from "./core/ssh";
import { MAIL_OPTIONS, mailPasswordProblem, relayPasswordProblem, UNIX_USER, validateMailOptions } from "./core/validate";

export const NAMESPACE = "postfix";
/** Secret keys: read as secrets by index.ts, never parsed here. */
export const SECRET_KEYS = new Set(["sshPrivateKey", "sshPrivateKeyPassword", "relayHostPassword", "mailPasswords"]);
const RELAY_PASSWORD_KEY = `${NAMESPACE}:relayHostPassword`;
export const MAIL_PASSWORDS_KEY = `${NAMESPACE}:mailPasswords`;
/** Stack-wide options that are not a server's mail options. */
const STACK_KEYS = new Set(["servers", "certificateAuthority"]);
const AUTHORITY_KEYS = new Set(["commonName", "organization", "validityDays"]);
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
 * `secretKeys`, the keys the engine holds as secrets: when given, a secret key set in clear text
 * is a problem (index.ts gives it; `npm run verify` reads a config the program already took).
 */
export function readStackConfig(config: Record<string, string>, secretKeys?: ReadonlySet<string>): {
    servers: ServerPlan[];
    problems: string[];
    /** The stack's certificate authority, when `postfix:certificateAuthority` is set. */
    certificateAuthority?: CertificateAuthorityArgs;
    /** The mail users' passwords (plain text: index.ts hands each on as a secret). */
    mailPasswords?: Record<string, string>;
} {
    const problems: string[] = [];
    const shared: Record<string, unknown> = {};
    for (const [fullKey, text] of Object.entries(config)) {
        const [namespace, key] = fullKey.split(":", 2);
        if (namespace !== NAMESPACE || SECRET_KEYS.has(key)) continue;
        if (!STACK_KEYS.has(key) && !MAIL_OPTIONS.has(key)) {
            problems.push(`${fullKey} is not a known option (known: ${[...STACK_KEYS, ...SECRET_KEYS, ...MAIL_OPTIONS].join(", ")})`);
            continue;
        }
        shared[key] = parseValue(text);
    }
    const entries = shared.servers;
    delete shared.servers;
    const authorityValue = shared.certificateAuthority;
    delete shared.certificateAuthority;
    if (secretKeys) problems.push(...secretsInClear(config, secretKeys));
    const mailPasswords = readMailPasswords(config[MAIL_PASSWORDS_KEY], problems);
    const logins = Object.keys(mailPasswords ?? {});
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
        // The passwords are the stack's: every server with port 587 takes all of them.
        const mail = validateMailOptions(options, keyOf, {
            mailLogins: options.submission === true ? logins : [], certificateAuthority: authorityValue !== undefined,
        });
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
    if (logins.length > 0 && servers.length > 0 && !servers.some((s) => s.settings.submission)) {
        problems.push(`${MAIL_PASSWORDS_KEY} is set but no server has submission: true (the passwords are for port 587)`);
    }
    const domain = typeof shared.domain === "string" ? shared.domain : servers[0]?.settings.domain;
    const certificateAuthority = authorityValue === undefined ? undefined : readAuthority(authorityValue, domain, problems);
    return { servers: problems.length === 0 ? servers : [], problems, certificateAuthority, mailPasswords };
}

/**
 * Secret keys set without `--secret` sit in clear text in `Pulumi.<stack>.yaml`, which people
 * commit. Each problem gives the command that sets the value as a secret (never the value). The
 * engine marks a map secret when any value in it is, so the passwords of a map are judged together.
 */
function secretsInClear(config: Record<string, string>, secretKeys: ReadonlySet<string>): string[] {
    const problems: string[] = [];
    for (const key of SECRET_KEYS) {
        const fullKey = `${NAMESPACE}:${key}`;
        if (config[fullKey] === undefined || secretKeys.has(fullKey)) continue;
        const why = `${fullKey} is set in clear text, so it is readable in the stack's config file (Pulumi.<stack>.yaml): set it as a secret`;
        if (fullKey === MAIL_PASSWORDS_KEY) {
            const value = parseValue(config[fullKey]);
            const users = typeof value === "object" && value !== null && !Array.isArray(value) ? Object.keys(value) : [];
            // User names appear in the command only when they are plain names (their text reaches a terminal).
            const shown = users.length > 0 && users.every((u) => UNIX_USER.test(u)) ? users : ["<user>"];
            problems.push(`${why}, one user at a time: ${shown.map((u) => `pulumi config set --secret --path '${MAIL_PASSWORDS_KEY}.${u}'`).join("; ")}`);
        } else if (key === "sshPrivateKey") {
            problems.push(`${why}: pulumi config set --secret ${fullKey} < KEYFILE (or use the SSH agent)`);
        } else {
            problems.push(`${why}: pulumi config set --secret ${fullKey}`);
        }
    }
    return problems;
}

/** `postfix:mailPasswords`: user name to password. Problems name the user, never the password. */
function readMailPasswords(text: string | undefined, problems: string[]): Record<string, string> | undefined {
    if (text === undefined) return undefined;
    const value = parseValue(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        problems.push(`${MAIL_PASSWORDS_KEY} must be a map of mail user to password (pulumi config set --secret --path '${MAIL_PASSWORDS_KEY}.alice')`);
        return undefined;
    }
    const passwords: Record<string, string> = {};
    for (const [user, password] of Object.entries(value)) {
        const problem = mailPasswordProblem(password);
        if (problem) problems.push(`${MAIL_PASSWORDS_KEY}.${user} ${problem}`);
        else passwords[user] = password as string;
    }
    return passwords;
}

/** `postfix:certificateAuthority`: `true`, or the authority's name and lifetime. */
function readAuthority(value: unknown, domain: string | undefined, problems: string[]): CertificateAuthorityArgs | undefined {
    const key = `${NAMESPACE}:certificateAuthority`;
    const fallbackName = `${domain ?? "pulumi-postfix"} mail CA`;
    if (value === true) return { commonName: fallbackName };
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        problems.push(`${key} must be true or an object (commonName, organization, validityDays)`);
        return undefined;
    }
    const raw = value as Record<string, unknown>;
    const before = problems.length;
    for (const name of Object.keys(raw)) {
        if (!AUTHORITY_KEYS.has(name)) problems.push(`${key}.${name} is not a known option (known: ${[...AUTHORITY_KEYS].join(", ")})`);
    }
    for (const name of ["commonName", "organization"]) {
        const text = raw[name];
        if (text !== undefined && (typeof text !== "string" || text.trim() === "" || text.length > 64 || /[\u0000-\u001f\u007f]/.test(text))) {
            problems.push(`${key}.${name} must be a name of 1 to 64 printable characters`);
        }
    }
    const days = raw.validityDays;
    if (days !== undefined && (typeof days !== "number" || !Number.isSafeInteger(days) || days < 365 || days > 10950)) {
        problems.push(`${key}.validityDays must be a whole number from 365 to 10950`);
    }
    if (problems.length > before) return undefined;
    return {
        commonName: (raw.commonName as string | undefined) ?? fallbackName,
        organization: raw.organization as string | undefined,
        validityDays: days as number | undefined,
    };
}
