// IP address and CIDR arithmetic for validating listen addresses and trusted networks.
// Pure: no Pulumi, no I/O. Addresses are held as BigInt so IPv4 and IPv6 share one code path.
import { isIPv4, isIPv6 } from "node:net";

export type Family = 4 | 6;

export interface Address {
    family: Family;
    value: bigint;
    /** Canonical text: dotted quad, or compressed lower-case IPv6. */
    text: string;
}

export interface Cidr {
    family: Family;
    base: bigint;
    prefix: number;
    /** Canonical text, e.g. `192.168.1.0/24` or `fd00::/64`. */
    text: string;
}

const bits = (family: Family): number => (family === 4 ? 32 : 128);

export function parseAddress(text: string): Address | undefined {
    if (isIPv4(text)) {
        const value = text.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
        return { family: 4, value, text: formatAddress(4, value) };
    }
    // Zone ids (fe80::1%eth0) and embedded IPv4 forms are not accepted: they cannot be rendered
    // unambiguously in main.cf and are never needed for a LAN server.
    if (isIPv6(text) && !text.includes("%") && !text.includes(".")) {
        return { family: 6, value: parseIPv6(text), text: formatAddress(6, parseIPv6(text)) };
    }
    return undefined;
}

function parseIPv6(text: string): bigint {
    const [head, tail] = text.split("::");
    const groups = (part: string | undefined): string[] => (part ? part.split(":") : []);
    const left = groups(head);
    const right = groups(tail);
    const missing = 8 - left.length - right.length;
    const all = tail === undefined ? left : [...left, ...Array<string>(missing).fill("0"), ...right];
    return all.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

export function formatAddress(family: Family, value: bigint): string {
    if (family === 4) {
        return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join(".");
    }
    const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn));
    // RFC 5952: compress the longest run (length >= 2) of zero groups.
    let bestStart = -1;
    let bestLength = 1;
    for (let start = 0; start < 8; start++) {
        let length = 0;
        while (start + length < 8 && groups[start + length] === 0) length++;
        if (length > bestLength) {
            bestStart = start;
            bestLength = length;
        }
    }
    const hex = groups.map((g) => g.toString(16));
    if (bestStart < 0) return hex.join(":");
    return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Parses `a.b.c.d/n` or `v6addr/n`. Returns an error text for host bits set or a bad prefix. */
export function parseCidr(text: string): Cidr | string {
    const slash = text.indexOf("/");
    if (slash < 0) return "must be a network in CIDR form, such as 192.168.1.0/24";
    const address = parseAddress(text.slice(0, slash));
    const prefixText = text.slice(slash + 1);
    if (!address) return "is not a valid IPv4 or IPv6 network";
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits(address.family)) {
        return `has an invalid prefix length (0 to ${bits(address.family)})`;
    }
    const prefix = Number(prefixText);
    const base = address.value & mask(address.family, prefix);
    if (base !== address.value) {
        return `has host bits set; did you mean ${formatAddress(address.family, base)}/${prefix}?`;
    }
    return { family: address.family, base, prefix, text: `${address.text}/${prefix}` };
}

function mask(family: Family, prefix: number): bigint {
    const width = BigInt(bits(family));
    return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
}

export function cidrContains(network: Cidr, address: Address): boolean {
    return network.family === address.family && (address.value & mask(network.family, network.prefix)) === network.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    if (a.family !== b.family) return false;
    const prefix = Math.min(a.prefix, b.prefix);
    return (a.base & mask(a.family, prefix)) === (b.base & mask(b.family, prefix));
}

// Ranges that never route on the public Internet: a LAN server may trust these without opt-in.
const NON_PUBLIC = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
].map((text) => parseCidr(text) as Cidr);

/** True when every address of the network lies in a private, loopback or link-local range. */
export function isNonPublic(network: Cidr): boolean {
    return NON_PUBLIC.some((range) => range.prefix <= network.prefix && cidrContains(range, { family: network.family, value: network.base, text: "" }));
}

const LOOPBACK = ["127.0.0.0/8", "::1/128"].map((text) => parseCidr(text) as Cidr);

export function isLoopback(address: Address): boolean {
    return LOOPBACK.some((range) => cidrContains(range, address));
}

/** Postfix writes IPv6 in brackets in mynetworks and inet_interfaces: `[fd00::]/64`, `[::1]`. */
export function postfixCidr(network: Cidr): string {
    return network.family === 4 ? network.text : `[${formatAddress(6, network.base)}]/${network.prefix}`;
}

export function postfixAddress(address: Address): string {
    return address.family === 4 ? address.text : `[${address.text}]`;
}
