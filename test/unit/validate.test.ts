import assert from "node:assert/strict";
import { test } from "node:test";
import { validateSsh } from "../../components/core/ssh";
import { validateMailOptions } from "../../components/core/validate";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig, toConfigMap } from "../support/stack";

const base = () => ({
    domain: "home.lan",
    hostname: "server.home.lan",
    listenAddresses: ["127.0.0.1", "192.168.1.100"],
    trustedNetworks: ["127.0.0.0/8", "192.168.1.0/24"],
    mailUsers: ["fribeiro"],
    aliases: { root: "fribeiro" } as Record<string, unknown>,
});

function problems(change: (o: Record<string, any>) => void): string[] {
    const options: Record<string, any> = base();
    change(options);
    return validateMailOptions(options, (path) => `postfix:${path}`).problems;
}

test("the guide's options are valid, with the corrected defaults", () => {
    const { settings, problems: found } = validateMailOptions(base(), (p) => p);
    assert.deepEqual(found, []);
    assert.deepEqual(settings!.destinations, ["home.lan", "server.home.lan", "localhost.home.lan", "localhost"]);
    assert.equal(settings!.messageSizeLimit, 52428800);
    assert.equal(settings!.inetProtocols, "ipv4");
    assert.deepEqual(settings!.aliases.map((a) => a.name), ["postmaster", "root"]);
    assert.deepEqual(settings!.certificate.ipAddresses, ["192.168.1.100"], "loopback stays out of the certificate");
    assert.equal(settings!.certificate.validityHours, 397 * 24, "self-signed: 397 days, as with the authority (Apple refuses more than 825)");
});

// Each case: how the options are broken, and what the one message must say (key first).
const CASES: Array<[string, (o: Record<string, any>) => void, RegExp]> = [
    ["malformed CIDR", (o) => (o.trustedNetworks[1] = "192.168.1.0/24x"), /^postfix:trustedNetworks\[1\] .*prefix/],
    ["CIDR with host bits", (o) => (o.trustedNetworks[1] = "192.168.1.7/24"), /^postfix:trustedNetworks\[1\] .*did you mean 192\.168\.1\.0\/24/],
    ["not a network", (o) => (o.trustedNetworks[1] = "lan"), /^postfix:trustedNetworks\[1\] .*CIDR/],
    ["overlapping networks", (o) => o.trustedNetworks.push("192.168.0.0/16"), /^postfix:trustedNetworks\[2\] .*overlaps trustedNetworks\[1\]/],
    ["every IPv4 address", (o) => o.trustedNetworks.push("0.0.0.0/0"), /^postfix:trustedNetworks\[2\] .*open relay/],
    ["every IPv6 address", (o) => o.trustedNetworks.push("::/0"), /^postfix:trustedNetworks\[2\] .*open relay/],
    ["the guide's typo, a public range", (o) => (o.trustedNetworks[1] = "192.169.1.0/24"), /^postfix:trustedNetworks\[1\] .*public addresses.*allowPublicNetworks/],
    ["listen address outside trusted networks", (o) => o.listenAddresses.push("10.0.0.1"), /^postfix:listenAddresses\[2\] .*outside every trusted network/],
    ["listen on a network address", (o) => o.listenAddresses.push("192.168.1.0"), /^postfix:listenAddresses\[2\] .*network or broadcast address of 192\.168\.1\.0\/24/],
    ["listen on a broadcast address", (o) => o.listenAddresses.push("192.168.1.255"), /^postfix:listenAddresses\[2\] .*network or broadcast address/],
    ["catch-all on a final destination", (o) => (o.virtualAliases = { "@home.lan": "fribeiro" }), /^postfix:virtualAliases\.@home\.lan catches every address of a final destination/],
    ["smarthost TLS turned off by an extra", (o) => {
        o.relayHost = { host: "smtp.isp.test" };
        o.extraParameters = { smtp_tls_security_level: "none" };
    }, /^postfix:extraParameters\.smtp_tls_security_level would change TLS towards the relayHost/],
    ["listen on all", (o) => (o.listenAddresses = ["all"]), /^postfix:listenAddresses\[0\] .*not an IPv4 or IPv6 address/],
    ["bad domain", (o) => (o.domain = "home..lan"), /^postfix:domain .*not a valid domain/],
    ["upper-case domain", (o) => (o.domain = "Home.lan"), /^postfix:domain .*lower case/],
    ["unicode look-alike domain", (o) => (o.domain = "hоme.lan"), /^postfix:domain .*ASCII/],
    ["host name without a dot", (o) => (o.hostname = "server"), /^postfix:hostname .*fully qualified/],
    ["zero size", (o) => (o.messageSizeLimit = 0), /^postfix:messageSizeLimit .*whole number/],
    ["negative size", (o) => (o.messageSizeLimit = -5), /^postfix:messageSizeLimit .*whole number/],
    ["size as text", (o) => (o.messageSizeLimit = "50M"), /^postfix:messageSizeLimit .*whole number/],
    ["bad alias name", (o) => (o.aliases["Root Admin"] = "fribeiro"), /^postfix:aliases\.Root Admin .*not a valid alias name/],
    ["pipe alias target", (o) => (o.aliases.root = "|/bin/sh -c x"), /^postfix:aliases\.root .*command, file or include/],
    ["file alias target", (o) => (o.aliases.root = "/tmp/mail"), /^postfix:aliases\.root .*command, file or include/],
    ["bad alias address", (o) => (o.aliases.root = ["fribeiro", "a@b"]), /^postfix:aliases\.root\[1\] .*domain/],
    ["bad mail user", (o) => (o.mailUsers = ["Fribeiro"]), /^postfix:mailUsers\[0\] .*not a valid new user name/],
    ["newline in a value", (o) => (o.hostname = "server.home.lan\nrelayhost = evil.test"), /^postfix:hostname .*control character/],
    ["NUL in a list", (o) => (o.trustedNetworks[0] = "127.0.0.0/8\u0000"), /^postfix:trustedNetworks\[0\] .*control character/],
    ["newline in an extra value", (o) => (o.extraParameters = { smtpd_banner: "x\ny" }), /^postfix:extraParameters\.smtpd_banner .*control character/],
    ["extra overriding relay restrictions", (o) => (o.extraParameters = { smtpd_relay_restrictions: "permit" }), /^postfix:extraParameters\.smtpd_relay_restrictions .*safety.*allowUnsafeOverrides/],
    ["extra overriding client restrictions", (o) => (o.extraParameters = { smtpd_client_restrictions: "permit" }), /^postfix:extraParameters\.smtpd_client_restrictions .*safety/],
    ["extra overriding mynetworks", (o) => (o.extraParameters = { mynetworks: "0.0.0.0/0" }), /^postfix:extraParameters\.mynetworks .*safety/],
    ["extra shadowing a typed option", (o) => (o.extraParameters = { message_size_limit: 1 }), /^postfix:extraParameters\.message_size_limit .*option "messageSizeLimit"/],
    ["extra with a bad name", (o) => (o.extraParameters = { "smtpd banner": "x" }), /^postfix:extraParameters\.smtpd banner .*parameter name/],
    ["mailbox limit below message limit", (o) => (o.extraParameters = { mailbox_size_limit: 1000 }), /^postfix:extraParameters\.mailbox_size_limit .*local delivery/],
    ["unknown option", (o) => (o.listenAdresses = ["127.0.0.1"]), /^postfix:listenAdresses is not a known option/],
    ["renewal window as long as validity", (o) => (o.certificate = { validityDays: 30, earlyRenewalDays: 30 }), /^postfix:certificate\.earlyRenewalDays /],
    ["self-signed certificate longer than Apple accepts", (o) => (o.certificate = { validityDays: 826 }), /^postfix:certificate\.validityDays must be at most 825: Apple's systems refuse longer server certificates, even one trusted by hand$/],
    ["bad certificate algorithm", (o) => (o.certificate = { algorithm: "DSA" }), /^postfix:certificate\.algorithm /],
];

for (const [name, change, expected] of CASES) {
    test(`refused: ${name}`, () => {
        const found = problems(change);
        assert.ok(found.some((p) => expected.test(p)), `expected ${expected} in:\n${found.join("\n")}`);
    });
}

test("public networks and safety overrides are possible when the user says so", () => {
    assert.deepEqual(problems((o) => {
        o.trustedNetworks.push("198.51.100.0/24");
        o.allowPublicNetworks = true;
    }), []);
    const { settings } = validateMailOptions({ ...base(), allowUnsafeOverrides: true, extraParameters: { smtpd_client_restrictions: "permit_mynetworks, permit_sasl_authenticated, reject" } }, (p) => p);
    assert.ok(settings);
});

test("a client's own claim of its address or route is a safety setting: refused unless allowed", () => {
    const extras = {
        smtpd_upstream_proxy_protocol: "haproxy", postscreen_upstream_proxy_protocol: "haproxy",
        allow_untrusted_routing: true, resolve_dequoted_address: false,
    };
    for (const [name, value] of Object.entries(extras)) {
        const found = problems((o) => (o.extraParameters = { [name]: value }));
        assert.ok(found.some((p) => p.startsWith(`postfix:extraParameters.${name} would replace a safety setting`)), `${name}:\n${found.join("\n")}`);
        const allowed = validateMailOptions({ ...base(), allowUnsafeOverrides: true, extraParameters: { [name]: value } }, (p) => p);
        assert.deepEqual(allowed.problems, [], name);
        assert.deepEqual(allowed.settings!.extraParameters, [{ name, value }]);
    }
});

test("with logins, an address belongs to one user only: an alias of a user's own address that reaches another user is refused", () => {
    const withLogins = (extra: Record<string, unknown>) => validateMailOptions({
        ...base(), mailUsers: ["fribeiro", "alice", "bob"], submission: true, ...extra,
    }, (path) => `postfix:${path}`, { mailLogins: ["alice", "bob"] });
    const found = withLogins({ virtualAliases: { "alice@home.lan": ["alice", "bob"] } }).problems;
    assert.deepEqual(found, ["postfix:virtualAliases.alice@home.lan is alice's own address, but reaches bob too: an address belongs to one user only, "
        + "or they could send as each other (give shared mail an address of its own, like team@home.lan)"]);
    assert.match(withLogins({ virtualAliases: { "alice@server.home.lan": "bob" } }).problems.join("\n"), /^postfix:virtualAliases\.alice@server\.home\.lan is alice's own address, but reaches bob too/);
    // Through a local alias, and as a local alias.
    assert.match(withLogins({ aliases: { root: "fribeiro", helpers: ["bob"] }, virtualAliases: { "alice@home.lan": ["alice", "helpers"] } }).problems.join("\n"),
        /^postfix:virtualAliases\.alice@home\.lan is alice's own address, but reaches bob too/);
    assert.match(withLogins({ aliases: { root: "fribeiro", alice: ["alice", "bob"] } }).problems.join("\n"), /^postfix:aliases\.alice is alice's own address, but reaches bob too/);
    // Shared addresses of their own, and the same address on another domain, stay possible.
    const shared = withLogins({ aliases: { root: "fribeiro", team: ["alice", "bob"] }, virtualAliases: { "sales@shop.test": ["alice", "bob"], "alice@shop.test": "bob", "alice@home.lan": "alice" } });
    assert.deepEqual(shared.problems, []);
    assert.deepEqual(shared.settings!.senderLogins.find((e) => e.sender === "team")?.logins, ["alice", "bob"]);
    // Without port 587 nobody sends as anybody: a copy to another user is just a copy.
    assert.deepEqual(problems((o) => {
        o.mailUsers = ["fribeiro", "bob"];
        o.virtualAliases = { "fribeiro@home.lan": ["fribeiro", "bob"] };
    }), []);
});

test("the SASL and TLS-auth parameters are safety settings: AUTH in clear on port 25 is refused unless allowed", () => {
    // The review's reproduction: port 25 would offer AUTH without TLS, against port 587's passwords.
    const clearAuth = { smtpd_tls_auth_only: "no", smtpd_sasl_auth_enable: "yes", smtpd_sasl_type: "dovecot", smtpd_sasl_path: "private/auth" };
    const found = problems((o) => (o.extraParameters = clearAuth));
    assert.deepEqual(found.map((p) => p.split(" ")[0]).sort(), Object.keys(clearAuth).map((n) => `postfix:extraParameters.${n}`).sort());
    for (const p of found) assert.match(p, / would change who may log in and how .* set allowUnsafeOverrides: true only if you mean it$/);
    for (const name of ["broken_sasl_auth_clients", "smtpd_sasl_security_options", "smtpd_sasl_tls_security_options", "smtpd_sasl_exceptions_networks",
        "smtpd_sasl_mechanism_filter", "cyrus_sasl_config_path", "smtpd_client_auth_rate_limit", "smtpd_client_event_limit_exceptions"]) {
        assert.match(problems((o) => (o.extraParameters = { [name]: "x" })).join("\n"), new RegExp(`^postfix:extraParameters\\.${name} would change who may log in`), name);
    }
    const allowed = validateMailOptions({ ...base(), allowUnsafeOverrides: true, extraParameters: clearAuth }, (p) => p);
    assert.deepEqual(allowed.problems, []);
});

test("a password set in clear text is refused with the command that sets it as a secret, never with the password", () => {
    const passwords = { ana: "ana's lab mail password", ops: "ops-lab-mail-password" };
    const config = { ...stackConfig("lab"), "postfix:mailPasswords": JSON.stringify(passwords) };
    const clear = readStackConfig(config, new Set()).problems;
    assert.deepEqual(clear, ["postfix:mailPasswords is set in clear text, so it is readable in the stack's config file (Pulumi.<stack>.yaml): set it as a secret, "
        + "one user at a time: pulumi config set --secret --path 'postfix:mailPasswords.ana'; pulumi config set --secret --path 'postfix:mailPasswords.ops'"]);
    assert.ok(!clear.join("\n").includes(passwords.ana), "no password in a message");
    assert.deepEqual(readStackConfig(config, new Set(["postfix:mailPasswords"])).problems, [], "set as secrets");
    // The relay's password, and the SSH secrets.
    const relay = { ...stackConfig("home"), "postfix:relayHost": JSON.stringify({ host: "smtp.isp.test", username: "me@isp.test" }), "postfix:relayHostPassword": "relay password" };
    assert.deepEqual(readStackConfig(relay, new Set()).problems, [
        "postfix:relayHostPassword is set in clear text, so it is readable in the stack's config file (Pulumi.<stack>.yaml): set it as a secret: pulumi config set --secret postfix:relayHostPassword",
    ]);
    assert.deepEqual(readStackConfig(relay, new Set(["postfix:relayHostPassword"])).problems, []);
    assert.match(readStackConfig({ ...stackConfig("home"), "postfix:sshPrivateKey": "a key pasted in clear text" }, new Set()).problems.join("\n"),
        /^postfix:sshPrivateKey is set in clear text, .*: pulumi config set --secret postfix:sshPrivateKey < KEYFILE \(or use the SSH agent\)$/);
    // A user name that is no plain name is not echoed into the command.
    const odd = readStackConfig({ ...config, "postfix:mailPasswords": JSON.stringify({ "a b": "long enough password" }) }, new Set()).problems;
    assert.ok(odd.some((p) => p.endsWith("pulumi config set --secret --path 'postfix:mailPasswords.<user>'")), odd.join("\n"));
});

test("all problems are reported together", () => {
    const found = problems((o) => {
        o.domain = "bad_domain";
        o.messageSizeLimit = 0;
        o.trustedNetworks = ["0.0.0.0/0"];
    });
    // One problem per wrong value, each naming its key.
    assert.equal(found.length, 3, found.join("\n"));
    assert.match(found[0], /^postfix:domain is not a valid domain name/);
    assert.match(found[1], /^postfix:trustedNetworks\[0\] "0\.0\.0\.0\/0" trusts every address/);
    assert.match(found[2], /^postfix:messageSizeLimit must be a whole number/);
});

test("ssh options", () => {
    const keyOf = (p: string) => `ssh.${p}`;
    assert.deepEqual(validateSsh({ host: "192.168.1.100" }, keyOf).ssh, {
        host: "192.168.1.100", port: 22, user: "root", dialErrorLimit: 10, perDialTimeout: 15, strictHostKeyChecking: "yes",
        privateKeyPath: undefined, hostKey: undefined, knownHostsFile: undefined,
    }, "host keys checked by default");
    assert.match(validateSsh({ host: "a b" }, keyOf).problems[0], /^ssh\.host /);
    assert.match(validateSsh({ host: "h.lan", port: 0 }, keyOf).problems[0], /^ssh\.port /);
    assert.match(validateSsh({ host: "h.lan", user: "root; rm -rf /" }, keyOf).problems[0], /^ssh\.user /);
    assert.match(validateSsh({ host: "h.lan", hostKey: "not a key" }, keyOf).problems[0], /^ssh\.hostKey /);
    assert.equal(validateSsh({ host: "h.lan", strictHostKeyChecking: "accept-new" }, keyOf).ssh!.strictHostKeyChecking, "accept-new");
    assert.match(validateSsh({ host: "h.lan", strictHostKeyChecking: "no" }, keyOf).problems[0], /^ssh\.strictHostKeyChecking must be "yes" .* or "accept-new"/,
        "no switch that accepts any key");
    assert.match(validateSsh({ host: "h.lan", knownHostsFile: "" }, keyOf).problems[0], /^ssh\.knownHostsFile must be a file path/);
});

test("stack config: problems name the key where the value was written", () => {
    const config = stackConfig("home");
    assert.deepEqual(readStackConfig(config).problems, []);
    const broken = toConfigMap({
        ...JSON.parse(JSON.stringify({ "postfix:domain": "home.lan" })),
        "postfix:trustedNetworks": ["0.0.0.0/0"],
        "postfix:typo": 1,
        "postfix:servers": [{ name: "server", hostname: "server.home.lan", listenAddresses: ["10.9.9.9"], ssh: { host: "10.9.9.9", port: "22" } }],
    });
    const found = readStackConfig(broken).problems;
    assert.ok(found.some((p) => p.startsWith("postfix:trustedNetworks[0] ")), found.join("\n"));
    assert.ok(found.some((p) => p.startsWith("postfix:typo is not a known option")), found.join("\n"));
    assert.ok(found.some((p) => p.startsWith("postfix:servers[0].ssh.port ")), found.join("\n"));
    assert.deepEqual(readStackConfig(toConfigMap({ "postfix:domain": "home.lan" })).problems, ["postfix:servers must be a non-empty list of servers, each with a name and ssh.host"]);
});

test("stack config: a server entry overrides a shared option", () => {
    const config = stackConfig("home");
    const servers = JSON.parse(config["postfix:servers"]);
    servers[0].messageSizeLimit = 10485760;
    const { servers: plans } = readStackConfig({ ...config, "postfix:servers": JSON.stringify(servers) });
    assert.equal(plans[0].settings.messageSizeLimit, 10485760);
});

test("keys are shown escaped: a newline in a key never starts a new line of the error", () => {
    const found = problems((o) => (o.aliases["evil\nroot"] = "fribeiro"));
    assert.ok(found.length > 0);
    for (const p of found) assert.ok(!p.includes("\n"), JSON.stringify(p));
    assert.ok(found.some((p) => p.includes("evil\\nroot")), found.join(" | "));
});

test("an extra parameter named like a JavaScript built-in is just an unknown parameter", () => {
    assert.deepEqual(problems((o) => (o.extraParameters = { constructor: "x" })), []);
});

test("mail passwords and the certificate authority in the stack config: each problem names its key, never a password", () => {
    const lab = (extra: Record<string, string>) => readStackConfig({ ...stackConfig("lab"), ...extra });
    const secret = "line one\nmynetworks = 0.0.0.0/0";
    const { problems } = lab({
        "postfix:mailPasswords": JSON.stringify({ ana: secret, ops: "short", "bob": "long enough password" }),
        "postfix:certificateAuthority": JSON.stringify({ commonName: "", validityDays: 5, color: "red" }),
    });
    assert.deepEqual(problems.sort(), [
        "postfix:certificateAuthority.color is not a known option (known: commonName, organization, validityDays)",
        "postfix:certificateAuthority.commonName must be a name of 1 to 64 printable characters",
        "postfix:certificateAuthority.validityDays must be a whole number from 365 to 10950",
        "postfix:mailPasswords.ana contains a control character (newline, tab, NUL...), which is never allowed",
        "postfix:mailPasswords.bob names \"bob\", who is not in mailUsers: only mail users can log in",
        "postfix:mailPasswords.ops is shorter than 12 characters: port 587 takes logins from any network that reaches it",
    ]);
    assert.ok(!problems.join("\n").includes("line one") && !problems.join("\n").includes("short\""), "no password in a message");
    assert.match(lab({}).problems.join("\n"), /postfix:submission is true, but no mail user has a password/);
    const fine = lab({ "postfix:mailPasswords": JSON.stringify({ ana: "ana's long password" }), "postfix:certificateAuthority": "true" });
    assert.deepEqual(fine.problems, []);
    assert.deepEqual(fine.certificateAuthority, { commonName: "lab.home.arpa mail CA" });
    assert.equal(fine.servers[0].settings.certificate.validityHours, 365 * 24, "the lab sets 365 days");
    const home = readStackConfig({ ...stackConfig("home"), "postfix:mailPasswords": JSON.stringify({ fribeiro: "fribeiro's password" }) });
    assert.deepEqual(home.problems, ["postfix:mailPasswords is set but no server has submission: true (the passwords are for port 587)"]);
    const tooLong = readStackConfig({ ...stackConfig("home"), "postfix:certificateAuthority": "true", "postfix:certificate": JSON.stringify({ validityDays: 1095 }) });
    assert.match(tooLong.problems.join("\n"), /postfix:certificate\.validityDays must be at most 825: Apple's systems refuse longer server certificates, even from an imported certificate authority/);
    assert.equal(readStackConfig({ ...stackConfig("home"), "postfix:certificateAuthority": "true" }).servers[0].settings.certificate.validityHours, 397 * 24);
});
