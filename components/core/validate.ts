// Validation of user options into Settings. Every problem is reported at once, each naming the
// config key, before any resource exists. Nothing that fails here reaches a file or a shell.
import { isLoginParameter, SAFETY_PARAMETERS, TYPED_OPTION_OF } from "./main-cf";
import { Address, Cidr, cidrContains, cidrsOverlap, isLoopback, isNonPublic, parseAddress, parseCidr } from "./net";
import { CertificateOptions, DEFAULT_MESSAGE_SIZE_LIMIT, MailOptions, ParameterValue, RelayTls, Settings } from "./settings";

/** Maps a path inside the options (`listenAddresses[1]`) to the key the user wrote (`postfix:servers[0].listenAddresses[1]`). */
export type KeyOf = (path: string) => string;

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

const MAIL_OPTION_KEYS: ReadonlyArray<keyof MailOptions> = [
    "domain", "hostname", "destinations", "listenAddresses", "trustedNetworks", "allowPublicNetworks",
    "messageSizeLimit", "mailUsers", "aliases", "certificate", "extraParameters", "allowUnsafeOverrides",
    "aptLockTimeoutSeconds", "relayHost", "submission", "imap", "virtualAliases",
];
export const MAIL_OPTIONS: ReadonlySet<string> = new Set(MAIL_OPTION_KEYS);
const MULTI_LINE = new Set(["relayHost.caCertificatePem"]);
const RELAY_HOST_KEYS = new Set(["host", "port", "username", "tls", "tlsName", "caCertificatePem"]);
const CERTIFICATE_KEYS = new Set(["algorithm", "rsaBits", "commonName", "organization", "dnsNames", "ipAddresses", "validityDays", "earlyRenewalDays"]);

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LOCAL_PART = /^[a-z0-9][a-z0-9._+-]{0,63}$/;
// SASL user names are often addresses; ':' and whitespace would break sasl_passwd's `user:password`.
const SASL_USER = /^[A-Za-z0-9._@+=-]{1,256}$/;
const PEM_CERTIFICATE = /^(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?)+$/;
export const UNIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const PARAMETER_NAME = /^[a-z][a-z0-9_]{0,99}$/;
export const MAX_VALUE_LENGTH = 4096;
// C0 controls, DEL, C1 controls, and Unicode line and paragraph separators.
export const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A domain or host name: lower-case ASCII labels (internationalised names in their xn-- form). */
export function domainProblem(name: string, requireDot: boolean): string | undefined {
    if (/[^\x20-\x7e]/.test(name)) return "must be ASCII (write internationalised names in their xn-- form)";
    if (name !== name.toLowerCase()) return "must be lower case";
    if (name.length > 253) return "is longer than 253 characters";
    const labels = name.split(".");
    if (labels.some((label) => !LABEL.test(label))) {
        return "is not a valid domain name (labels of a-z, 0-9 and inner hyphens, 1 to 63 characters)";
    }
    if (requireDot && labels.length < 2) return "must be fully qualified (contain a dot)";
    if (/^\d+$/.test(labels[labels.length - 1])) return "must not end in a numeric label";
    return undefined;
}

class Checker {
    readonly problems: string[] = [];
    /** Paths holding a control character: reported once, not again by the checks that follow. */
    private readonly tainted: string[] = [];
    constructor(private readonly keyOf: KeyOf) {}

    add(path: string, message: string): void {
        if (this.tainted.some((t) => t === path || t.startsWith(`${path}.`) || t.startsWith(`${path}[`) || path.startsWith(t))) return;
        // A key the user wrote may itself hold control characters: show them escaped, never raw.
        const key = this.keyOf(path).replace(new RegExp(CONTROL.source, "g"), (ch) => JSON.stringify(ch).slice(1, -1));
        this.problems.push(`${key} ${message}`);
    }

    isObject(value: unknown): value is Record<string, unknown> {
        return typeof value === "object" && value !== null && !Array.isArray(value);
    }

    unknownKeys(path: string, value: Record<string, unknown>, known: ReadonlySet<string>): void {
        for (const key of Object.keys(value)) {
            if (!known.has(key)) this.add(join(path, key), `is not a known option (known: ${[...known].join(", ")})`);
        }
    }

    string(path: string, value: unknown): value is string {
        if (typeof value !== "string" || value.length === 0) {
            this.add(path, "must be a non-empty string");
            return false;
        }
        if (value.length > MAX_VALUE_LENGTH) {
            this.add(path, `is longer than ${MAX_VALUE_LENGTH} characters`);
            return false;
        }
        return true;
    }

    stringList(path: string, value: unknown, allowEmpty = false): string[] | undefined {
        if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) {
            this.add(path, allowEmpty ? "must be a list" : "must be a non-empty list");
            return undefined;
        }
        const ok = value.every((item, i) => this.string(`${path}[${i}]`, item));
        return ok ? (value as string[]) : undefined;
    }

    integer(path: string, value: unknown, min: number, max: number): number | undefined {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
            this.add(path, `must be a whole number from ${min} to ${max}`);
            return undefined;
        }
        return value;
    }

    boolean(path: string, value: unknown): boolean {
        if (value === undefined) return false;
        if (typeof value !== "boolean") {
            this.add(path, "must be true or false");
            return false;
        }
        return value;
    }

    domain(path: string, value: unknown, requireDot: boolean): string | undefined {
        if (!this.string(path, value)) return undefined;
        const problem = domainProblem(value, requireDot);
        if (problem) {
            this.add(path, problem);
            return undefined;
        }
        return value;
    }

    /** Reports every string holding a control character (newline, NUL, ...), wherever it is. */
    controlCharacters(path: string, value: unknown): void {
        if (typeof value === "string") {
            // PEM text is the one multi-line value; its own check allows only base64 lines.
            if (MULTI_LINE.has(path)) return;
            if (CONTROL.test(value)) {
                this.add(path, "contains a control character (newline, tab, NUL...), which is never allowed");
                this.tainted.push(path);
            }
        } else if (Array.isArray(value)) {
            value.forEach((item, i) => this.controlCharacters(`${path}[${i}]`, item));
        } else if (this.isObject(value)) {
            for (const [key, item] of Object.entries(value)) {
                if (CONTROL.test(key)) this.add(path, "has a key with a control character");
                else this.controlCharacters(join(path, key), item);
            }
        }
    }
}

function join(path: string, key: string): string {
    return path ? `${path}.${key}` : key;
}

/** What the options of one server are validated with, besides the options themselves. */
export interface ValidationContext {
    /** The mail users who have a password (the keys of the secret `mailPasswords`); their passwords are checked by mailPasswordProblem. */
    mailLogins?: readonly string[];
    /** The stack's certificate authority signs the server's certificate. */
    certificateAuthority?: boolean;
}

/** Validates mail options; returns the settings only when there is no problem at all. */
export function validateMailOptions(raw: unknown, keyOf: KeyOf, context: ValidationContext = {}): { settings?: Settings; problems: string[] } {
    const c = new Checker(keyOf);
    if (!c.isObject(raw)) {
        c.add("", "must be an object of mail options");
        return { problems: c.problems };
    }
    c.controlCharacters("", raw);
    c.unknownKeys("", raw, MAIL_OPTIONS);

    const domain = c.domain("domain", raw.domain, true);
    const hostname = c.domain("hostname", raw.hostname, true);
    const destinations = raw.destinations === undefined
        ? domain && hostname ? unique([domain, hostname, `localhost.${domain}`, "localhost"]) : undefined
        : c.stringList("destinations", raw.destinations)?.filter((d, i) => c.domain(`destinations[${i}]`, d, false) !== undefined);

    const allowPublic = c.boolean("allowPublicNetworks", raw.allowPublicNetworks);
    const trusted = networks(c, raw.trustedNetworks, allowPublic);
    const listen = listenAddresses(c, raw.listenAddresses, trusted);

    const messageSizeLimit = raw.messageSizeLimit === undefined
        ? DEFAULT_MESSAGE_SIZE_LIMIT
        : c.integer("messageSizeLimit", raw.messageSizeLimit, 1024, 2 ** 31 - 1);
    const mailUsers = mailUserList(c, raw.mailUsers);
    const aliases = aliasList(c, raw.aliases);
    const certificate = certificateSettings(c, raw.certificate, hostname, listen, context.certificateAuthority === true);
    const allowUnsafeOverrides = c.boolean("allowUnsafeOverrides", raw.allowUnsafeOverrides);
    const relayHost = relayHostSettings(c, raw.relayHost);
    const extraParameters = extras(c, raw.extraParameters, allowUnsafeOverrides, messageSizeLimit, relayHost !== undefined);
    const aptLockTimeoutSeconds = raw.aptLockTimeoutSeconds === undefined
        ? 120
        : c.integer("aptLockTimeoutSeconds", raw.aptLockTimeoutSeconds, 0, 3600);
    const submission = c.boolean("submission", raw.submission);
    const imap = c.boolean("imap", raw.imap);
    if (imap && !submission) c.add("imap", "is true, but submission is not: IMAP logins take port 587's passwords (mailPasswords); set submission: true");
    const virtualAliases = virtualAliasList(c, raw.virtualAliases, destinations ?? []);
    const mailLogins = loginList(c, context.mailLogins ?? [], submission, mailUsers);
    // Only logins on port 587 can send as an address; without them a copy to another user is just a copy.
    if (submission && mailUsers && aliases && virtualAliases) ownAddressesKeptOwn(c, mailUsers, aliases, virtualAliases, destinations ?? []);

    if (c.problems.length > 0 || !domain || !hostname || !destinations || !trusted || !listen || !messageSizeLimit
        || !mailUsers || !aliases || !certificate || !extraParameters || aptLockTimeoutSeconds === undefined || !mailLogins) {
        return { problems: c.problems };
    }
    const families = new Set(listen.map((a) => a.family));
    return {
        problems: [],
        settings: {
            domain, hostname, destinations,
            listenAddresses: listen,
            inetProtocols: families.size === 2 ? "all" : families.has(6) ? "ipv6" : "ipv4",
            trustedNetworks: trusted,
            messageSizeLimit, mailUsers, aliases, certificate, extraParameters, allowUnsafeOverrides, aptLockTimeoutSeconds,
            relayHost, submission, imap, mailLogins,
            // Every mail user, not only those with a password: a password added or removed then
            // changes the password file alone.
            senderLogins: senderLogins(mailUsers, aliases, virtualAliases ?? []),
            virtualAliases: virtualAliases ?? [],
            virtualAliasDomains: unique((virtualAliases ?? []).map((v) => v.address.slice(v.address.indexOf("@") + 1)))
                .filter((d) => !destinations.includes(d)),
        },
    };
}

function unique(items: string[]): string[] {
    return [...new Set(items)];
}

function networks(c: Checker, value: unknown, allowPublic: boolean): Cidr[] | undefined {
    const texts = c.stringList("trustedNetworks", value);
    if (!texts) return undefined;
    const parsed: Cidr[] = [];
    texts.forEach((text, i) => {
        const path = `trustedNetworks[${i}]`;
        const network = parseCidr(text);
        if (typeof network === "string") return c.add(path, `"${text}" ${network}`);
        if (network.prefix === 0) return c.add(path, `"${text}" trusts every address: that is an open relay`);
        if (!allowPublic && !isNonPublic(network)) {
            return c.add(path, `"${text}" includes public addresses; set allowPublicNetworks: true only if you mean it`);
        }
        const clash = parsed.findIndex((other) => cidrsOverlap(other, network));
        if (clash >= 0) return c.add(path, `"${text}" overlaps trustedNetworks[${clash}] "${parsed[clash].text}"`);
        parsed.push(network);
    });
    return parsed.length === texts.length ? parsed : undefined;
}

function listenAddresses(c: Checker, value: unknown, trusted: Cidr[] | undefined): Address[] | undefined {
    const texts = c.stringList("listenAddresses", value);
    if (!texts) return undefined;
    const parsed: Address[] = [];
    texts.forEach((text, i) => {
        const path = `listenAddresses[${i}]`;
        const address = parseAddress(text);
        if (!address) return c.add(path, `"${text}" is not an IPv4 or IPv6 address (names like "all" are not allowed: list the addresses)`);
        if (address.value === 0n) return c.add(path, `"${text}" listens on every interface, like "all": list the addresses`);
        if (parsed.some((other) => other.value === address.value && other.family === address.family)) {
            return c.add(path, `"${text}" is listed twice`);
        }
        const network = trusted?.find((n) => cidrContains(n, address));
        if (trusted && !network) {
            return c.add(path, `"${text}" is outside every trusted network: clients there could not use this server`);
        }
        // An IPv4 network's first and last addresses name the network and its broadcast: no host has them.
        const hostBits = network && network.family === 4 ? 32 - network.prefix : 0;
        if (network && hostBits >= 2 && (address.value === network.base || address.value === network.base + (1n << BigInt(hostBits)) - 1n)) {
            return c.add(path, `"${text}" is the network or broadcast address of ${network.text}, not a host address`);
        }
        parsed.push(address);
    });
    return parsed.length === texts.length ? parsed : undefined;
}

function mailUserList(c: Checker, value: unknown): string[] | undefined {
    if (value === undefined) return [];
    const users = c.stringList("mailUsers", value, true);
    if (!users) return undefined;
    const bad = users.map((u, i) => [u, i] as const).filter(([u]) => !UNIX_USER.test(u) || u === "root");
    bad.forEach(([u, i]) => c.add(`mailUsers[${i}]`, `"${u}" is not a valid new user name (a-z, 0-9, _ and -, not root)`));
    if (new Set(users).size !== users.length) c.add("mailUsers", "lists a user twice");
    return bad.length === 0 ? users : undefined;
}

/** A map of key to one or more alias targets (aliases, virtual aliases): each key and target checked. */
function targetMap(c: Checker, path: string, value: unknown, keyProblem: (key: string) => string | undefined, shape: string)
    : Array<{ key: string; targets: string[] }> | undefined {
    if (!c.isObject(value)) {
        c.add(path, `must be a map of ${shape}`);
        return undefined;
    }
    const entries: Array<{ key: string; targets: string[] }> = [];
    let ok = true;
    for (const [key, raw] of Object.entries(value)) {
        const at = `${path}.${key}`;
        const problem = keyProblem(key);
        const targets = problem ? undefined : typeof raw === "string" ? [raw] : c.stringList(at, raw);
        if (problem) c.add(at, problem);
        if (!targets) {
            ok = false;
            continue;
        }
        targets.forEach((target, i) => {
            const targetProblem = aliasTargetProblem(target);
            if (targetProblem) {
                c.add(typeof raw === "string" ? at : `${at}[${i}]`, `"${target}" ${targetProblem}`);
                ok = false;
            }
        });
        entries.push({ key, targets });
    }
    return ok ? entries : undefined;
}

function aliasList(c: Checker, value: unknown): Settings["aliases"] | undefined {
    const entries = targetMap(c, "aliases", value ?? {},
        (name) => (LOCAL_PART.test(name) ? undefined : "is not a valid alias name (a-z, 0-9, and . _ + - inside)"), "alias name to target(s)")
        ?.map(({ key, targets }) => ({ name: key, targets }));
    if (!entries) return undefined;
    if (!entries.some((e) => e.name === "postmaster")) entries.unshift({ name: "postmaster", targets: ["root"] });
    entries.sort((a, b) => (a.name === "postmaster" ? -1 : b.name === "postmaster" ? 1 : 0));
    return entries;
}

function aliasTargetProblem(target: string): string | undefined {
    // Pipes, files and includes run as other users or write anywhere: never from config.
    if (/^[|/:"]/.test(target)) return "is a command, file or include target, which is not allowed";
    const at = target.indexOf("@");
    if (at < 0) return LOCAL_PART.test(target) ? undefined : "is not a valid local user or alias name";
    const local = target.slice(0, at);
    const problem = domainProblem(target.slice(at + 1), true);
    if (!LOCAL_PART.test(local)) return "has an invalid local part";
    return problem ? `has a domain that ${problem}` : undefined;
}

function relayHostSettings(c: Checker, value: unknown): Settings["relayHost"] {
    if (value === undefined) return undefined;
    if (!c.isObject(value)) {
        c.add("relayHost", "must be an object with at least host");
        return undefined;
    }
    c.unknownKeys("relayHost", value, RELAY_HOST_KEYS);
    let host: string | undefined;
    const address = typeof value.host === "string" ? parseAddress(value.host) : undefined;
    if (address) host = address.family === 4 ? address.text : `ipv6:${address.text}`;
    else host = c.domain("relayHost.host", value.host, false);
    const port = value.port === undefined ? 587 : c.integer("relayHost.port", value.port, 1, 65535);
    const username = value.username === undefined ? undefined : c.string("relayHost.username", value.username) ? value.username : undefined;
    if (typeof username === "string" && !SASL_USER.test(username)) {
        c.add("relayHost.username", "must be 1 to 256 of A-Z, a-z, 0-9 and . _ @ + = - (no spaces or colons)");
    }
    // Verified by default: the relay's password must go only to the relay.
    const tls = value.tls ?? "verify";
    if (tls !== "encrypt" && tls !== "verify") c.add("relayHost.tls", 'must be "verify" (the default) or "encrypt"');
    const tlsName = value.tlsName === undefined ? (address ? undefined : host) : c.domain("relayHost.tlsName", value.tlsName, false);
    if (tls === "verify" && tlsName === undefined && address && value.tlsName === undefined) {
        c.add("relayHost.tlsName", "is required when host is an address: the name the relay's certificate carries, which is checked before the password is sent "
            + "(relayHost.tls: \"encrypt\" skips the check, and whoever answers at that address gets the password)");
    }
    const ca = value.caCertificatePem;
    if (ca !== undefined && (typeof ca !== "string" || !PEM_CERTIFICATE.test(ca.replace(/\r/g, "").trim() + "\n"))) {
        c.add("relayHost.caCertificatePem", "must be one or more PEM certificates (BEGIN CERTIFICATE blocks)");
    }
    if (!host || port === undefined || (value.username !== undefined && !username)) return undefined;
    return {
        nexthop: `[${host}]:${port}`, implicitTls: port === 465, username, tls: tls as RelayTls, tlsName,
        caCertificatePem: typeof ca === "string" ? `${ca.replace(/\r/g, "").trim()}\n` : undefined,
    };
}

/**
 * The mail users who may log in on port 587: each must be a mail user, and logins need the port.
 * Problems name the key of the secret (`mailPasswords.<user>`), never its value.
 */
function loginList(c: Checker, logins: readonly string[], submission: boolean, mailUsers: string[] | undefined): string[] | undefined {
    const before = c.problems.length;
    if (submission && logins.length === 0) {
        c.add("submission", "is true, but no mail user has a password: set mailPasswords.<user> (a secret) for each user who sends on port 587");
    }
    for (const login of logins) {
        if (!mailUsers?.includes(login)) c.add(`mailPasswords.${login}`, `names "${login}", who is not in mailUsers: only mail users can log in`);
    }
    return c.problems.length > before ? undefined : [...logins].sort();
}

/** A mail user's password for port 587: hashed on the host, never stored there in clear. Returns the problem, or undefined. */
export function mailPasswordProblem(password: unknown): string | undefined {
    if (typeof password !== "string" || password.length === 0) return "must be a non-empty string";
    if (password.length < MIN_MAIL_PASSWORD_LENGTH) return `is shorter than ${MIN_MAIL_PASSWORD_LENGTH} characters: port 587 takes logins from any network that reaches it`;
    if (Buffer.byteLength(password, "utf8") > MAX_MAIL_PASSWORD_BYTES) {
        return `is longer than ${MAX_MAIL_PASSWORD_BYTES} bytes in UTF-8 (an accented letter takes 2, most other scripts 3): `
            + `openssl's SHA512-CRYPT hashes only the first ${MAX_MAIL_PASSWORD_BYTES}, so the whole password would never log in`;
    }
    if (CONTROL.test(password)) return "contains a control character (newline, tab, NUL...), which is never allowed";
    return undefined;
}
export const MIN_MAIL_PASSWORD_LENGTH = 12;
/** `openssl passwd -6` (OpenSSL 3.0 and 3.5, Debian 12 and 13) reads at most this many bytes of a password. */
export const MAX_MAIL_PASSWORD_BYTES = 256;

/**
 * Who may send as what on port 587: each user as themselves, and as every alias and virtual alias
 * whose mail reaches them (through other aliases too). A bare local part stands for that name at
 * every final destination (Postfix looks the local part up for local domains only).
 */
export function senderLogins(users: readonly string[], aliases: Settings["aliases"], virtualAliases: Settings["virtualAliases"]): Settings["senderLogins"] {
    const owners = usersReached(users, aliases);
    const entries: Settings["senderLogins"] = users.map((user) => ({ sender: user, logins: [user] }));
    for (const alias of aliases) {
        const found = owners(alias.targets);
        if (found.length > 0 && !users.includes(alias.name)) entries.push({ sender: alias.name, logins: found });
    }
    for (const alias of virtualAliases) {
        const found = owners(alias.targets);
        if (found.length > 0) entries.push({ sender: alias.address, logins: found });
    }
    return entries;
}

/** The mail users that mail to these targets reaches, through the local aliases too. */
function usersReached(users: readonly string[], aliases: Settings["aliases"]): (targets: readonly string[]) => string[] {
    const aliasTargets = new Map(aliases.map((a) => [a.name, a.targets]));
    const reaches = (targets: readonly string[], login: string, seen: Set<string>): boolean => targets.some((target) => {
        if (target === login) return true;
        const next = aliasTargets.get(target);
        if (!next || seen.has(target)) return false;
        seen.add(target);
        return reaches(next, login, seen);
    });
    return (targets) => users.filter((user) => reaches(targets, user, new Set()));
}

/**
 * A mail user's own address (their name, or name@ a final destination) belongs to that user alone:
 * with port 587, an alias or virtual alias of it that reaches another user would let that user
 * send as them (smtpd_sender_login_maps looks the full address up first). Shared mail needs an address
 * of its own (team@...), which each user it reaches may send as.
 */
function ownAddressesKeptOwn(c: Checker, users: readonly string[], aliases: Settings["aliases"], virtualAliases: Settings["virtualAliases"], destinations: readonly string[]): void {
    const owners = usersReached(users, aliases);
    const check = (path: string, address: string, user: string, targets: readonly string[]) => {
        const others = owners(targets).filter((other) => other !== user);
        if (others.length > 0) {
            c.add(path, `is ${user}'s own address, but reaches ${others.join(", ")} too: an address belongs to one user only, `
                + "or they could send as each other (give shared mail an address of its own, like team@" + (address.split("@")[1] ?? destinations[0] ?? "domain") + ")");
        }
    };
    for (const alias of aliases) if (users.includes(alias.name)) check(`aliases.${alias.name}`, alias.name, alias.name, alias.targets);
    for (const alias of virtualAliases) {
        const at = alias.address.indexOf("@");
        const local = alias.address.slice(0, at);
        if (users.includes(local) && destinations.includes(alias.address.slice(at + 1))) check(`virtualAliases.${alias.address}`, alias.address, local, alias.targets);
    }
}

/** A SASL password for sasl_passwd: one line, no surrounding spaces. Returns the problem, or undefined. */
export function relayPasswordProblem(password: unknown): string | undefined {
    if (typeof password !== "string" || password.length === 0) return "must be a non-empty string";
    if (password.length > 1024) return "is longer than 1024 characters";
    if (CONTROL.test(password)) return "contains a control character (newline, tab, NUL...), which is never allowed";
    if (password.trim() !== password) return "must not start or end with a space";
    return undefined;
}

function virtualAliasList(c: Checker, value: unknown, destinations: readonly string[]): Settings["virtualAliases"] | undefined {
    const addressProblem = (address: string) => {
        const at = address.indexOf("@");
        const local = address.slice(0, at);
        const domainError = at < 0 ? "has no @domain" : domainProblem(address.slice(at + 1), true);
        if (domainError) return `is not an address: it ${domainError}`;
        // Virtual aliasing comes before local delivery: this would take every local address.
        if (local === "" && destinations.includes(address.slice(1))) return "catches every address of a final destination (destinations), root and postmaster included";
        return local === "" || LOCAL_PART.test(local) ? undefined : "has an invalid local part (a-z, 0-9, and . _ + - inside)";
    };
    return targetMap(c, "virtualAliases", value ?? {}, addressProblem, "address (local@domain, or @domain for the rest of a domain) to target(s)")
        ?.map(({ key, targets }) => ({ address: key, targets }));
}

/**
 * Days any server certificate the component makes may be valid, self-signed or signed by the
 * stack's authority: Apple's systems refuse TLS server certificates valid longer than 825 days,
 * whether trusted by hand or through an imported authority.
 */
export const MAX_CERTIFICATE_DAYS = 825;
/**
 * The default: the CA/Browser Forum's limit for public server certificates since 2020 (398 days),
 * less a day, which browsers and mail clients hold every certificate to sooner or later; renewal is
 * a `pulumi up` within earlyRenewalDays, so a shorter life costs the admin nothing.
 */
export const DEFAULT_CERTIFICATE_DAYS = 397;

function certificateSettings(c: Checker, value: unknown, hostname: string | undefined, listen: Address[] | undefined, signedByAuthority: boolean): Settings["certificate"] | undefined {
    const raw: CertificateOptions & Record<string, unknown> = (value ?? {}) as never;
    if (!c.isObject(raw)) {
        c.add("certificate", "must be an object");
        return undefined;
    }
    c.unknownKeys("certificate", raw, CERTIFICATE_KEYS);
    const before = c.problems.length;
    const algorithm = raw.algorithm ?? "RSA";
    if (algorithm !== "RSA" && algorithm !== "ECDSA") c.add("certificate.algorithm", 'must be "RSA" or "ECDSA"');
    const rsaBits = raw.rsaBits ?? 2048;
    if (![2048, 3072, 4096].includes(rsaBits)) c.add("certificate.rsaBits", "must be 2048, 3072 or 4096");
    const commonName = raw.commonName === undefined ? hostname : c.domain("certificate.commonName", raw.commonName, false);
    if (raw.organization !== undefined) c.string("certificate.organization", raw.organization);
    const dnsNames = raw.dnsNames === undefined
        ? hostname ? [hostname] : []
        : c.stringList("certificate.dnsNames", raw.dnsNames)?.filter((d, i) => c.domain(`certificate.dnsNames[${i}]`, d, false)) ?? [];
    let ipAddresses = listen?.map((a) => a.text) ?? [];
    if (raw.ipAddresses !== undefined) {
        ipAddresses = c.stringList("certificate.ipAddresses", raw.ipAddresses) ?? [];
        ipAddresses.forEach((ip, i) => parseAddress(ip) || c.add(`certificate.ipAddresses[${i}]`, `"${ip}" is not an IP address`));
    } else {
        ipAddresses = ipAddresses.filter((ip) => !isLoopback(parseAddress(ip) as Address));
    }
    const validityDays = raw.validityDays === undefined ? DEFAULT_CERTIFICATE_DAYS : c.integer("certificate.validityDays", raw.validityDays, 1, 3650);
    if (validityDays !== undefined && validityDays > MAX_CERTIFICATE_DAYS) {
        c.add("certificate.validityDays", `must be at most ${MAX_CERTIFICATE_DAYS}: Apple's systems refuse longer server certificates, `
            + `${signedByAuthority ? "even from an imported certificate authority" : "even one trusted by hand"}`);
    }
    const earlyRenewalDays = raw.earlyRenewalDays === undefined ? 30 : c.integer("certificate.earlyRenewalDays", raw.earlyRenewalDays, 0, 3650);
    if (validityDays !== undefined && earlyRenewalDays !== undefined && earlyRenewalDays >= validityDays) {
        c.add("certificate.earlyRenewalDays", "must be smaller than validityDays, or every run would issue a new certificate");
    }
    if (c.problems.length > before || !commonName || validityDays === undefined || earlyRenewalDays === undefined) return undefined;
    return {
        algorithm, rsaBits, commonName, organization: raw.organization, dnsNames, ipAddresses,
        validityHours: validityDays * 24, earlyRenewalHours: earlyRenewalDays * 24,
    };
}

// With a smarthost, these decide whether the password crosses in clear text.
const RELAY_TLS_PARAMETERS = new Set(["smtp_tls_security_level", "smtp_tls_wrappermode", "smtp_sasl_tls_security_options", "smtp_tls_policy_maps", "smtp_tls_mandatory_protocols"]);

function extras(c: Checker, value: unknown, allowUnsafe: boolean, messageSizeLimit: number | undefined, relay: boolean): Settings["extraParameters"] | undefined {
    if (value === undefined) return [];
    if (!c.isObject(value)) {
        c.add("extraParameters", "must be a map of main.cf parameter name to value");
        return undefined;
    }
    const before = c.problems.length;
    const result: Settings["extraParameters"] = [];
    for (const [name, raw] of Object.entries(value)) {
        const path = `extraParameters.${name}`;
        if (!PARAMETER_NAME.test(name)) {
            c.add(path, "is not a valid main.cf parameter name (a-z, 0-9 and _)");
            continue;
        }
        if (SAFETY_PARAMETERS.has(name) && !allowUnsafe) {
            c.add(path, "would replace a safety setting (relay, client or recipient control); set allowUnsafeOverrides: true only if you mean it");
            continue;
        }
        if (isLoginParameter(name) && !allowUnsafe) {
            c.add(path, "would change who may log in and how (SASL, AUTH over TLS only, the AUTH rate limit): logins belong on port 587 (submission), "
                + "where they are guarded; set allowUnsafeOverrides: true only if you mean it");
            continue;
        }
        if (relay && RELAY_TLS_PARAMETERS.has(name)) {
            c.add(path, "would change TLS towards the relayHost, which carries its password: set relayHost.tls instead");
            continue;
        }
        if (Object.prototype.hasOwnProperty.call(TYPED_OPTION_OF, name) && !SAFETY_PARAMETERS.has(name)) {
            c.add(path, `is managed by the option "${TYPED_OPTION_OF[name]}": set that instead`);
            continue;
        }
        const parameter = parameterValue(c, path, raw);
        if (parameter === undefined) continue;
        if (name === "mailbox_size_limit" && messageSizeLimit
            && (!/^\d+$/.test(String(parameter)) || (Number(parameter) !== 0 && Number(parameter) < messageSizeLimit))) {
            c.add(path, "must be 0 or at least messageSizeLimit, or local delivery stops");
            continue;
        }
        result.push({ name, value: parameter });
    }
    return c.problems.length > before ? undefined : result;
}

function parameterValue(c: Checker, path: string, raw: unknown): ParameterValue | undefined {
    if (typeof raw === "boolean" || (typeof raw === "number" && Number.isFinite(raw))) return raw;
    if (typeof raw === "string") {
        if (raw.length > MAX_VALUE_LENGTH) return void c.add(path, `is longer than ${MAX_VALUE_LENGTH} characters`);
        return raw.trim();
    }
    if (Array.isArray(raw) && raw.every((item) => typeof item === "string" && item.length > 0 && !item.includes(","))) {
        return raw.map((item: string) => item.trim());
    }
    c.add(path, "must be a string, number, boolean, or list of strings without commas");
    return undefined;
}
