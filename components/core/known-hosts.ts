// Host keys the way OpenSSH reads them: `known_hosts` lines (hashed or plain names, `[host]:port`
// for another port, patterns with `*`, `?` and `!`, the `@revoked` marker), the key lines that
// `ssh-keyscan` prints, and SHA256 fingerprints. Pure: the files are read by the caller.
import { createHash, createHmac, randomBytes } from "node:crypto";

/** A public host key: its type and its base64 blob. */
export interface HostKey {
    type: string;
    base64: string;
}

/** A key found for a host, and where. */
export interface KnownKey extends HostKey {
    file: string;
    /** `file:line`, for messages. */
    where: string;
}

/** Key types the component and the command provider can pin, in the order they are preferred. */
export const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"] as const;
const KEY_TYPE = new Set<string>(HOST_KEY_TYPES);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** `type base64` as the command provider and `authorized_keys` write it. */
export function formatHostKey(key: HostKey): string {
    return `${key.type} ${key.base64}`;
}

/**
 * A key as a user pastes it: `ssh-ed25519 AAAA... [comment]`, or a `known_hosts` or
 * `ssh-keyscan` line with the host field in front (`host ssh-ed25519 AAAA...`).
 */
export function parseHostKey(text: string): HostKey | undefined {
    const fields = text.trim().split(/\s+/);
    const at = KEY_TYPE.has(fields[0]) ? 0 : KEY_TYPE.has(fields[1]) ? 1 : -1;
    if (at < 0 || fields.length < at + 2 || !BASE64.test(fields[at + 1])) return undefined;
    const key = { type: fields[at], base64: fields[at + 1] };
    return blobType(key) === key.type ? key : undefined;
}

/** The type named inside the blob itself (its first length-prefixed string). */
function blobType(key: HostKey): string | undefined {
    const blob = Buffer.from(key.base64, "base64");
    if (blob.length < 4) return undefined;
    const length = blob.readUInt32BE(0);
    return length > 0 && 4 + length <= blob.length ? blob.subarray(4, 4 + length).toString("latin1") : undefined;
}

/** `SHA256:...` as `ssh-keygen -l` and `ssh` print it. */
export function fingerprint(key: HostKey): string {
    return `SHA256:${createHash("sha256").update(Buffer.from(key.base64, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** The short name `ssh-keygen -l` gives a type: `ED25519`, `ECDSA`, `RSA`. */
export function typeLabel(type: string): string {
    return type === "ssh-ed25519" ? "ED25519" : type.startsWith("ecdsa-") ? "ECDSA" : type === "ssh-rsa" ? "RSA" : type;
}

/** The name a host is filed under: `host` on port 22, `[host]:port` on any other. */
export function hostEntryName(host: string, port: number): string {
    return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

/** OpenSSH's wildcard match: `*` any run, `?` one character, case-insensitive. */
function wildcardMatch(pattern: string, name: string): boolean {
    const source = pattern.toLowerCase().replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(`^${source}$`).test(name);
}

/** Does a line's host field name this entry? Hashed (`|1|salt|hash`) or a comma list of patterns, where a negated match excludes. */
function hostFieldMatches(field: string, name: string): boolean {
    if (field.startsWith("|1|")) {
        const [, , salt, hash] = field.split("|");
        if (!salt || !hash) return false;
        return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
    }
    let matched = false;
    for (const pattern of field.split(",")) {
        const negated = pattern.startsWith("!");
        if (wildcardMatch(negated ? pattern.slice(1) : pattern, name)) {
            if (negated) return false;
            matched = true;
        }
    }
    return matched;
}

export interface KnownHostsMatch {
    /** Keys listed for the host, in file order. */
    keys: KnownKey[];
    /** Keys marked `@revoked` for the host: never accepted. */
    revoked: KnownKey[];
}

/** The keys a `known_hosts` text lists for `host` on `port`. `@cert-authority` lines are not used. */
export function lookupKnownHosts(text: string, file: string, host: string, port: number): KnownHostsMatch {
    const name = hostEntryName(host, port);
    const found: KnownHostsMatch = { keys: [], revoked: [] };
    text.split("\n").forEach((raw, index) => {
        const line = raw.trim();
        if (line === "" || line.startsWith("#")) return;
        const fields = line.split(/\s+/);
        const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
        if (marker === "@cert-authority" || fields.length < 3 || !hostFieldMatches(fields[0], name)) return;
        const key = parseHostKey(fields.slice(1).join(" "));
        if (!key) return;
        const known = { ...key, file, where: `${file}:${index + 1}` };
        if (marker === "@revoked") found.revoked.push(known);
        else if (marker === undefined) found.keys.push(known);
    });
    return found;
}

/** Is this key among the revoked ones? */
export function isRevoked(key: HostKey, revoked: readonly HostKey[]): boolean {
    return revoked.some((r) => r.base64 === key.base64);
}

/** The key to pin among several for one host: the first of the preferred types, never a revoked one. */
export function preferredKey<K extends HostKey>(keys: readonly K[], revoked: readonly HostKey[] = []): K | undefined {
    const usable = keys.filter((k) => !isRevoked(k, revoked));
    for (const type of HOST_KEY_TYPES) {
        const key = usable.find((k) => k.type === type);
        if (key) return key;
    }
    return undefined;
}

/** A hashed `known_hosts` line, as OpenSSH writes it with `HashKnownHosts yes` (Debian's default). */
export function hashedKnownHostsLine(host: string, port: number, key: HostKey, salt: Buffer = randomBytes(20)): string {
    const hash = createHmac("sha1", salt).update(hostEntryName(host, port)).digest("base64");
    return `|1|${salt.toString("base64")}|${hash} ${formatHostKey(key)}`;
}
