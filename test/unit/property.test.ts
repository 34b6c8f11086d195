// Property test. Configs mixing valid and hostile values go through validateMailOptions;
// every config it accepts must render a main.cf that is well formed and still safe.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { mainCfParameters, renderMainCf } from "../../components/core/main-cf";
import { Cidr, cidrContains, formatAddress, isNonPublic, parseAddress, parseCidr } from "../../components/core/net";
import { validateMailOptions } from "../../components/core/validate";

const SEED = 20250606;
const NUM_RUNS = 2000;
// Line breaks and control characters that must never reach main.cf (independent of the validator's own list).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const LINE = /^([a-z][A-Za-z0-9_]*) =(?: (.*))?$/;

/** Weighted choice: mostly valid values, so that enough configs are accepted. */
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<T>, weight = 6): fc.Arbitrary<T> =>
    fc.oneof({ arbitrary: valid, weight }, { arbitrary: invalid, weight: 1 });

// Any string: control characters, line separators, commas, non-ASCII, lone surrogates.
/** An optional option: absent (undefined) in most configs. */
const maybe = <T>(arbitrary: fc.Arbitrary<T>, absentWeight = 2): fc.Arbitrary<T | undefined> =>
    fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary, weight: 1 });

const anyString = fc.oneof(
    fc.string({ unit: "binary", maxLength: 24 }),
    fc.string({ maxLength: 24 }),
    fc.constantFrom("x\ny", "a\r\nrelayhost = evil.test", "a\u2028b", "a\u0085b", "\u0000", "\t", "a, b", ",", "  padded  ", "", "$(reboot)", "`id`", "a;b", "é"),
);

// Networks: private pools (disjoint), public, wide, IPv6, malformed, and random ones with or without host bits.
const PRIVATE_NETS = ["127.0.0.0/8", "192.168.1.0/24", "10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "169.254.0.0/16", "::1/128", "fd00::/64", "fd12:3456::/48", "fe80::/10"];
const PUBLIC_NETS = ["8.8.8.0/24", "192.169.1.0/24", "198.51.100.0/24", "2001:db8::/32", "0.0.0.0/1", "::/1", "0.0.0.0/8", "::/128", "::ffff:0:0/96", "10.0.0.0/7", "128.0.0.0/1"];
const WIDE_NETS = ["0.0.0.0/0", "::/0"];
const BAD_NETS = ["[fd00::]/64", "fe80::%eth0/64", "::ffff:10.0.0.0/104", "::/129", "192.168.1.0/33", "192.168.1.7/24", "lan", "192.168.1.0/24\n0.0.0.0/0", "10.0.0.0/8,8.8.8.0/24", "192.168.1.0 /24"];

function masked(text: string, prefix: number): string {
    const address = parseAddress(text);
    if (!address) return `${text}/${prefix}`;
    const width = address.family === 4 ? 32 : 128;
    const p = Math.min(prefix, width);
    const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - p)) - 1n);
    return `${formatAddress(address.family, address.value & mask)}/${p}`;
}

const randomNetwork = fc.oneof(
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, p]) => masked(ip, p)),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, p]) => masked(ip, p)),
    fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: -1, max: 130 })).map(([ip, p]) => `${ip}/${p}`),
    fc.tuple(fc.constantFrom("10", "172.16", "192.168", "fd00:", "fe80:"), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 32 }))
        .map(([head, n, p]) => (head.endsWith(":") ? masked(`${head}${n.toString(16)}::`, p + 32) : masked(`${head}.${n}.0.0`.split(".").slice(0, 4).join("."), p))),
);
const network = fc.oneof(
    { arbitrary: fc.constantFrom(...PRIVATE_NETS), weight: 30 },
    { arbitrary: fc.constantFrom(...PUBLIC_NETS), weight: 2 },
    { arbitrary: fc.constantFrom(...WIDE_NETS), weight: 1 },
    { arbitrary: fc.constantFrom(...BAD_NETS), weight: 1 },
    { arbitrary: randomNetwork, weight: 3 },
    { arbitrary: anyString, weight: 1 },
);
const trustedNetworks = mostly(
    fc.uniqueArray(network, { minLength: 1, maxLength: 3 }),
    fc.oneof(fc.constant([] as string[]), fc.constant("192.168.1.0/24" as unknown as string[]), fc.constant(undefined as unknown as string[])),
    12,
);

const BAD_LISTEN = ["0.0.0.0", "::", "all", "fe80::1%eth0", "::ffff:192.168.1.100", "[::1]", "192.168.1.100 ", "localhost", "192.169.1.100", "8.8.8.8", "2001:db8::25"];

/** Listen addresses, mostly inside the generated networks. */
function listenAddresses(trusted: unknown): fc.Arbitrary<string[]> {
    const parsed = (Array.isArray(trusted) ? trusted : [])
        .map((t) => (typeof t === "string" ? parseCidr(t) : "x"))
        .filter((n): n is Cidr => typeof n !== "string");
    const outside = fc.oneof(fc.constantFrom(...BAD_LISTEN), fc.ipV4(), fc.ipV6(), anyString);
    if (parsed.length === 0) return fc.array(outside, { minLength: 1, maxLength: 3 });
    const inside = fc.constantFrom(...parsed).chain((n) => {
        const size = 1n << BigInt((n.family === 4 ? 32 : 128) - n.prefix);
        const small = size - 1n < 300n ? size - 1n : 300n;
        return fc.oneof(fc.bigInt({ min: 0n, max: small }), fc.bigInt({ min: 0n, max: size - 1n }))
            .map((k) => formatAddress(n.family, n.base + k));
    });
    return fc.uniqueArray(mostly(inside, outside, 8), { minLength: 1, maxLength: 3 });
}

const domainName = mostly(
    fc.oneof(fc.constantFrom("home.lan", "example.com", "xn--bcher-kva.example", "mail.office.lan"), fc.domain()),
    fc.oneof(anyString, fc.constantFrom("Home.lan", "home..lan", "h\u043eme.lan", "home\uff0elan", "home\u200b.lan", "a".repeat(300), `${"a".repeat(70)}.lan`, "home.lan;reboot", "1.2.3.4")),
    10,
);

// Safety parameters: refused without allowUnsafeOverrides.
const SAFETY_NAMES = [
    "mynetworks", "mynetworks_style", "relay_domains", "inet_interfaces", "smtpd_client_restrictions", "smtpd_helo_restrictions",
    "smtpd_sender_restrictions", "smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_authorized_xclient_hosts",
    "disable_vrfy_command", "smtpd_helo_required", "local_recipient_maps", "smtpd_upstream_proxy_protocol",
];
// Set through a typed option: always refused.
const TYPED_NAMES = ["myhostname", "mydomain", "mydestination", "message_size_limit", "alias_maps", "compatibility_level", "inet_protocols"];
// Owned and free parameters.
const FREE_NAMES = [
    "smtpd_banner", "mailbox_size_limit", "smtpd_tls_loglevel", "relayhost", "home_mailbox", "smtpd_tls_security_level",
    "delay_warning_time", "notify_classes", "smtpd_data_restrictions", "smtp_helo_name",
];
const parameterName = fc.oneof(
    { arbitrary: fc.constantFrom(...FREE_NAMES), weight: 10 },
    { arbitrary: fc.constantFrom(...SAFETY_NAMES), weight: 4 },
    { arbitrary: fc.constantFrom(...TYPED_NAMES), weight: 1 },
    { arbitrary: fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/), weight: 3 },
    { arbitrary: anyString, weight: 1 },
);
const parameterValue = fc.oneof(
    { arbitrary: fc.string({ maxLength: 24 }), weight: 6 },
    { arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }), weight: 2 },
    anyString,
    fc.constantFrom("permit", "permit_mynetworks, reject", "0.0.0.0/0", "0", "unlimited", "-1", "104857600", "yes", "no"),
    fc.integer({ min: -10, max: 2 ** 31 }),
    fc.boolean(),
    fc.double(),
    { arbitrary: fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }), weight: 2 },
    fc.array(anyString, { maxLength: 3 }),
    fc.constant(null),
);
const extraParameters = fc.dictionary(parameterName, parameterValue, { maxKeys: 3 });

const aliasName = mostly(fc.constantFrom("root", "postmaster", "abuse", "webmaster", "info"), anyString, 12);
const aliasTarget = mostly(
    fc.constantFrom("fribeiro", "root", "alice", "alice@home.lan", "info+x@example.com"),
    fc.oneof(anyString, fc.constantFrom("|/bin/sh -c reboot", "/tmp/x", ":include:/etc/passwd", '"|cmd"', "a@h\u043eme.lan", "a@b")),
    12,
);
const aliases = fc.dictionary(aliasName, fc.oneof(aliasTarget, fc.array(aliasTarget, { maxLength: 3 })), { maxKeys: 3 });

const flag = mostly(fc.boolean(), fc.constantFrom("yes", 1, "true") as fc.Arbitrary<unknown> as fc.Arbitrary<boolean>, 10);

const options = trustedNetworks.chain((trusted) => fc.record({
    domain: domainName,
    hostname: domainName.map((d) => `server.${d}`),
    destinations: maybe(fc.array(domainName, { minLength: 1, maxLength: 3 }), 3),
    trustedNetworks: fc.constant(trusted),
    listenAddresses: mostly(listenAddresses(trusted), fc.constantFrom([], "127.0.0.1", undefined) as fc.Arbitrary<unknown> as fc.Arbitrary<string[]>, 15),
    allowPublicNetworks: maybe(flag, 1),
    allowUnsafeOverrides: maybe(flag, 1),
    messageSizeLimit: maybe(mostly(fc.integer({ min: 1024, max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 1.5, "50M", 2 ** 40) as fc.Arbitrary<unknown> as fc.Arbitrary<number>)),
    mailUsers: maybe(fc.uniqueArray(mostly(fc.constantFrom("fribeiro", "alice", "bob"), anyString, 12), { maxLength: 3 })),
    aliases: maybe(aliases),
    extraParameters: maybe(extraParameters, 1),
    certificate: maybe(fc.constantFrom({ algorithm: "ECDSA" }, { rsaBits: 4096 }, { rsaBits: 512 }, { organization: "Home\nCN=x" }, { commonName: "mail.home.lan" }) as fc.Arbitrary<object>, 8),
    unknown: maybe(fc.constantFrom("listenAdresses", "relayhost"), 30),
})).map(({ unknown, ...o }) => {
    const raw: Record<string, unknown> = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    if (unknown) raw[unknown] = "x";
    return raw;
});

/** `[fd00::]/64` -> `fd00::/64`, `[::1]` -> `::1`. */
const unbracket = (text: string): string => text.replace(/^\[([^\]]*)\]/, "$1");

test("property: every accepted config renders a well-formed, safe main.cf", () => {
    let generated = 0;
    let accepted = 0;
    fc.assert(fc.property(options, (raw) => {
        generated++;
        const { settings, problems } = validateMailOptions(raw, (path) => `postfix:${path}`);
        if (!settings) {
            assert.ok(problems.length > 0, "a refusal names at least one problem");
            assert.ok(problems.every((p) => p.startsWith("postfix:")), `every problem names its key:\n${problems.join("\n")}`);
            return;
        }
        assert.deepEqual(problems, []);
        accepted++;
        const text = renderMainCf(mainCfParameters(settings, { compatibilityLevel: "3.6" }));

        // (a) no value holds a line break or control character; every line is `name = value`.
        const lines = text.split("\n");
        assert.ok(lines[0].startsWith("# "), "the header comment");
        assert.equal(lines[lines.length - 1], "", "ends with a newline");
        const values = new Map<string, string>();
        for (const line of lines.slice(1, -1)) {
            assert.ok(!CONTROL.test(line), `control character in ${JSON.stringify(line)}`);
            const match = LINE.exec(line);
            assert.ok(match, `not a "name = value" line: ${JSON.stringify(line)}`);
            // (b) each parameter once.
            assert.ok(!values.has(match[1]), `${match[1]} appears twice`);
            values.set(match[1], match[2] ?? "");
        }

        const allowPublic = raw.allowPublicNetworks === true;
        for (const n of settings.trustedNetworks) {
            assert.notEqual(n.prefix, 0, `trusted network ${n.text} trusts every address`);
            assert.ok(allowPublic || isNonPublic(n), `public trusted network ${n.text} without allowPublicNetworks`);
        }

        // (c) the relay protection is intact unless the user opted out.
        if (!settings.allowUnsafeOverrides) {
            assert.equal(values.get("smtpd_client_restrictions"), "permit_mynetworks, reject");
            assert.equal(values.get("smtpd_relay_restrictions"), "permit_mynetworks, reject_unauth_destination");
            assert.equal(values.get("smtpd_recipient_restrictions"), "permit_mynetworks, reject_unauth_destination");
            const mynetworks = (values.get("mynetworks") ?? "").split(", ").map((t) => parseCidr(unbracket(t)));
            assert.ok(mynetworks.length > 0);
            for (const n of mynetworks) {
                assert.ok(typeof n !== "string", `mynetworks entry does not parse: ${n}`);
                assert.notEqual(n.prefix, 0, `mynetworks ${n.text} trusts every address`);
                assert.ok(allowPublic || isNonPublic(n), `mynetworks ${n.text} is public without allowPublicNetworks`);
            }
            // (d) as rendered: every listen address inside a trusted network.
            for (const t of (values.get("inet_interfaces") ?? "").split(", ")) {
                const address = parseAddress(unbracket(t));
                assert.ok(address, `inet_interfaces entry does not parse: ${t}`);
                assert.ok(mynetworks.some((n) => typeof n !== "string" && cidrContains(n, address)), `inet_interfaces ${t} is outside mynetworks`);
            }
        }
        // (d) as validated: every listen address inside a trusted network, and never the wildcard address.
        for (const address of settings.listenAddresses) {
            assert.ok(settings.trustedNetworks.some((n) => cidrContains(n, address)), `listen address ${address.text} outside every trusted network`);
            assert.notEqual(address.value, 0n, `listen address ${address.text} is every interface`);
        }
    }), { seed: SEED, numRuns: NUM_RUNS });

    console.log(`# property: generated ${generated} configs, accepted ${accepted}, refused ${generated - accepted}`);
    assert.equal(generated, NUM_RUNS);
    // The generators must exercise both sides, or the properties prove little.
    assert.ok(accepted >= NUM_RUNS / 10, `only ${accepted} of ${generated} configs were accepted`);
    assert.ok(generated - accepted >= NUM_RUNS / 10, `only ${generated - accepted} of ${generated} configs were refused`);
});
