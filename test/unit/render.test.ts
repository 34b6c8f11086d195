// Golden files: what the home (the guide's values) and lab stacks write on the host.
// UPDATE_GOLDEN=1 npm run test:unit rewrites them; review the diff before committing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderAliases, renderDovecotConf, renderMailname, renderMasterServices, renderPreseed, renderSaslPasswd, renderVirtualAliases } from "../../components/core/files";
import { mainCfParameters, OWNED_PARAMETERS, renderMainCf } from "../../components/core/main-cf";
import { validateMailOptions } from "../../components/core/validate";
import { imapOf } from "../../components/core/dovecot";
import { readStackConfig } from "../../components/stack-config";
import { REPO, stackConfig } from "../support/stack";

const DEBIAN_12 = { compatibilityLevel: "3.6" };

function golden(stack: string, file: string, actual: string): void {
    const path = join(REPO, "test", "golden", stack, file);
    if (process.env.UPDATE_GOLDEN === "1") {
        mkdirSync(join(REPO, "test", "golden", stack), { recursive: true });
        writeFileSync(path, actual);
    }
    // A missing golden file is a failure, not a new baseline: only UPDATE_GOLDEN=1 writes one.
    assert.ok(existsSync(path), `${stack}/${file} has no golden file (UPDATE_GOLDEN=1 npm run test:unit writes it; review it)`);
    assert.equal(actual, readFileSync(path, "utf8"), `${stack}/${file} differs from its golden file`);
}

/** The lab stack's passwords, as `pulumi config set --secret --path` leaves them for the program. */
export const LAB_PASSWORDS = { ana: "correct horse battery", ops: "staple-staple-staple" };
const configOf = (stack: string) => stack === "lab" ? { ...stackConfig("lab"), "postfix:mailPasswords": JSON.stringify(LAB_PASSWORDS) } : stackConfig(stack);

for (const stack of ["home", "lab"]) {
    test(`${stack} stack renders its golden files`, () => {
        const { servers, problems } = readStackConfig(configOf(stack));
        assert.deepEqual(problems, []);
        const { settings } = servers[0];
        golden(stack, "main.cf", renderMainCf(mainCfParameters(settings, DEBIAN_12)));
        golden(stack, "aliases", renderAliases(settings));
        golden(stack, "mailname", renderMailname(settings));
        golden(stack, "preseed", renderPreseed(settings));
        golden(stack, "virtual", renderVirtualAliases(settings));
        golden(stack, "master-services", renderMasterServices(settings, "3.7.11"));
        if (settings.submission) {
            // Postfix 3.8 and later count AUTH commands per IPv6 /64; 3.7 cannot.
            assert.equal(renderMasterServices(settings, "3.10.13"), `${renderMasterServices(settings, "3.7.11")}parameter submission/inet/smtpd_client_ipv6_prefix_length=64\n`);
            golden(stack, "dovecot-2.3.conf", renderDovecotConf("2.3.19.1"));
            golden(stack, "dovecot-2.4.conf", renderDovecotConf("2.4.1"));
        }
    });
}

test("imap: Dovecot's conf.d file for 2.3 and 2.4 (golden), the listen addresses and the TLS policy of Postfix's ports", () => {
    const { servers, problems } = readStackConfig({ ...configOf("lab"), "postfix:imap": "true" });
    assert.deepEqual(problems, []);
    const imap = imapOf(servers[0].settings)!;
    golden("lab", "dovecot-imap-2.3.conf", renderDovecotConf("2.3.19.1", imap));
    golden("lab", "dovecot-imap-2.4.conf", renderDovecotConf("2.4.1", imap));
    const v23 = renderDovecotConf("2.3.19.1", imap);
    assert.match(v23, new RegExp(`^listen = ${servers[0].settings.listenAddresses.map((a) => a.text).join(", ")}$`, "m"));
    assert.match(v23, /^ssl = required$/m);
    assert.match(v23, /^ssl_min_protocol = TLSv1\.2$/m);
    // The cipher list is main.cf's: the same classes left out.
    const mainCf = renderMainCf(mainCfParameters(servers[0].settings, DEBIAN_12));
    const excluded = /^smtpd_tls_exclude_ciphers = (.*)$/m.exec(mainCf)![1].split(", ");
    assert.equal(/^ssl_cipher_list = (.*)$/m.exec(v23)![1], ["HIGH", ...excluded.map((c) => `!${c}`)].join(":"));
    // Both protocols take the stack's passwords only.
    assert.equal(v23.match(/result_failure = return-fail/g)?.length, 2);
    assert.doesNotMatch(renderDovecotConf("2.3.19.1"), /^(listen|ssl|protocol imap|service imap)/m, "without imap: no listener, no TLS, no protocol of the admin's changed");
});

test("imap requires submission (the same passwords)", () => {
    const { problems } = readStackConfig({ ...stackConfig("home"), "postfix:imap": "true" });
    assert.ok(problems.some((p) => /^postfix:imap is true, but submission is not/.test(p)), problems.join("\n"));
});

test("the guide's corrections are in main.cf", () => {
    const { settings } = readStackConfig(stackConfig("home")).servers[0];
    const cf = renderMainCf(mainCfParameters(settings, DEBIAN_12));
    const lines = cf.split("\n");
    for (const line of [
        "inet_interfaces = 127.0.0.1, 192.168.1.100",
        "mynetworks = 127.0.0.0/8, 192.168.1.0/24",
        "mydestination = home.lan, server.home.lan, localhost.home.lan, localhost",
        "message_size_limit = 52428800",
        "mailbox_size_limit = 0",
        "home_mailbox = Maildir/",
        "smtpd_tls_security_level = may",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtpd_client_restrictions = permit_mynetworks, reject",
        "smtpd_helo_required = yes",
        "smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache",
        "compatibility_level = 3.6",
    ]) assert.ok(lines.includes(line), `missing: ${line}`);
    assert.ok(!/smtpd_use_tls|queue_directory|reject_unknown_helo_hostname/.test(cf));
    assert.equal(new Set(lines.map((l) => l.split(" = ")[0])).size, lines.length, "no parameter twice");
});

test("extras: allowed ones replace in place or append; IPv6 is bracketed", () => {
    const { settings } = validateMailOptions({
        domain: "lab.test", hostname: "mx.lab.test",
        listenAddresses: ["fd00::25", "10.0.0.25"], trustedNetworks: ["fd00::/64", "10.0.0.0/24"],
        extraParameters: { smtpd_banner: "$myhostname ESMTP ready", defer_transports: "smtp", maillog_file: "/var/log/postfix.log" },
    }, (p) => p);
    const parameters = mainCfParameters(settings!, DEBIAN_12);
    const names = parameters.map(([n]) => n);
    // Owned ones in table order (those of unused options left out), then the new extras.
    assert.deepEqual(names.slice(0, -2), OWNED_PARAMETERS.filter((n) => names.includes(n)));
    assert.deepEqual(names.slice(-2), ["defer_transports", "maillog_file"]);
    assert.ok(!names.includes("smtp_sasl_auth_enable"), "no smarthost: no SASL parameters");
    const cf = renderMainCf(parameters);
    assert.match(cf, /^smtpd_banner = \$myhostname ESMTP ready$/m);
    assert.match(cf, /^inet_interfaces = \[fd00::25\], 10\.0\.0\.25$/m);
    assert.match(cf, /^mynetworks = \[fd00::\]\/64, 10\.0\.0\.0\/24$/m);
    assert.match(cf, /^inet_protocols = all$/m);
});

test("smarthost: relayhost in brackets, its certificate verified by default against the system CAs, SASL from a root-only map", () => {
    const options = {
        domain: "lab.test", hostname: "mx.lab.test", listenAddresses: ["10.0.0.25"], trustedNetworks: ["10.0.0.0/24"],
        relayHost: { host: "smtp.isp.test", username: "me@isp.test" },
    };
    const byDefault = validateMailOptions(options, (p) => p).settings!;
    const cf = renderMainCf(mainCfParameters(byDefault, DEBIAN_12));
    for (const line of ["relayhost = [smtp.isp.test]:587", "smtp_tls_security_level = secure",
        "smtp_tls_policy_maps = inline:{ { [smtp.isp.test]:587 = secure match=smtp.isp.test } }", "smtp_tls_CApath = /etc/ssl/certs",
        "smtp_sasl_auth_enable = yes", "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd", "smtp_sasl_security_options = noanonymous"]) {
        assert.ok(cf.split("\n").includes(line), `${line} in:\n${cf}`);
    }
    assert.doesNotMatch(cf, /smtp_tls_CAfile/);
    assert.equal(renderSaslPasswd(byDefault, "pw with spaces").split("\n")[1], "[smtp.isp.test]:587 me@isp.test:pw with spaces");
    // encrypt only when asked for by name.
    const encrypt = validateMailOptions({ ...options, relayHost: { ...options.relayHost, tls: "encrypt" } }, (p) => p).settings!;
    const unchecked = renderMainCf(mainCfParameters(encrypt, DEBIAN_12));
    assert.match(unchecked, /^smtp_tls_security_level = encrypt$/m);
    assert.doesNotMatch(unchecked, /smtp_tls_policy_maps/);
    assert.match(validateMailOptions({ ...options, relayHost: { host: "192.0.2.25" } }, (p) => p).problems.join("\n"),
        /^relayHost\.tlsName is required when host is an address/m, "an address alone cannot be verified: the name is asked for");

    const ca = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----";
    const verify = validateMailOptions({ ...options, relayHost: { host: "192.0.2.25", port: 465, tls: "verify", tlsName: "relay.isp.test", caCertificatePem: ca } }, (p) => p).settings!;
    const verified = renderMainCf(mainCfParameters(verify, DEBIAN_12));
    assert.match(verified, /^relayhost = \[192\.0\.2\.25\]:465$/m);
    assert.match(verified, /^smtp_tls_security_level = secure$/m);
    assert.match(verified, /^smtp_tls_policy_maps = inline:\{ \{ \[192\.0\.2\.25\]:465 = secure match=relay\.isp\.test \} \}$/m);
    assert.match(verified, /^smtp_tls_CAfile = \/etc\/postfix\/relay-ca\.pem$/m);
    assert.doesNotMatch(verified, /smtp_sasl/, "no user name: no SASL");
    assert.equal(verify.relayHost!.caCertificatePem, `${ca}\n`);
    const implicit = validateMailOptions({ ...options, relayHost: { host: "smtp.isp.test", port: 465 } }, (p) => p).settings!;
    assert.match(renderMainCf(mainCfParameters(implicit, DEBIAN_12)), /^smtp_tls_wrappermode = yes$/m, "465 speaks TLS from the first byte");
    assert.doesNotMatch(cf, /smtp_tls_wrappermode/);
    const v6 = validateMailOptions({ ...options, relayHost: { host: "2001:db8::25", tlsName: "smtp.isp.test" } }, (p) => p).settings!;
    assert.equal(v6.relayHost!.nexthop, "[ipv6:2001:db8::25]:587");
});

test("virtual aliases: one line per address; their domains, less the final destinations, become virtual domains", () => {
    const settings = validateMailOptions({
        domain: "lab.test", hostname: "mx.lab.test", listenAddresses: ["10.0.0.25"], trustedNetworks: ["10.0.0.0/24"],
        virtualAliases: { "info@shop.test": "alice", "@tickets.test": ["bob", "carol@lab.test"], "sales@lab.test": "alice", "x@shop.test": "bob" },
    }, (p) => p).settings!;
    assert.deepEqual(settings.virtualAliasDomains, ["shop.test", "tickets.test"]);
    assert.deepEqual(renderVirtualAliases(settings).split("\n").slice(1), [
        "info@shop.test alice", "@tickets.test bob, carol@lab.test", "sales@lab.test alice", "x@shop.test bob", "",
    ]);
    assert.match(renderMainCf(mainCfParameters(settings, DEBIAN_12)), /^virtual_alias_domains = shop\.test, tickets\.test$/m);
});

test("the TLS policy, as this machine's OpenSSL expands Postfix's high grade without the excluded classes: ECDHE with AEAD ciphers only", () => {
    const { settings } = readStackConfig(stackConfig("home")).servers[0];
    const parameters = Object.fromEntries(mainCfParameters(settings, DEBIAN_12));
    assert.equal(parameters.smtpd_tls_ciphers, "high");
    assert.equal(parameters.smtpd_tls_mandatory_ciphers, "high");
    // Postfix 3.7's tls_high_cipherlist, then one `!class` per excluded class, as Postfix builds it.
    const list = ["aNULL:-aNULL:HIGH:@STRENGTH", ...(parameters.smtpd_tls_exclude_ciphers as string[]).map((c) => `!${c}`)].join(":");
    const suites = execFileSync("openssl", ["ciphers", "-v", list], { encoding: "utf8" }).trim().split("\n")
        .filter((line) => !/TLSv1\.3/.test(line)).map((line) => line.split(/\s+/));
    assert.ok(suites.length >= 4, suites.join("\n"));
    for (const [name, , kx, au, , mac] of suites) {
        assert.equal(kx, "Kx=ECDH", name);
        assert.match(au, /^Au=(RSA|ECDSA)$/, name);
        assert.equal(mac, "Mac=AEAD", name);
    }
});

test("who may send as what on port 587: each user as themselves, and as the aliases that reach them", () => {
    const config = { ...configOf("lab"), "postfix:mailPasswords": JSON.stringify({ ana: LAB_PASSWORDS.ana }) };
    const { settings } = readStackConfig(config).servers[0];
    assert.deepEqual(settings.mailLogins, ["ana"]);
    assert.deepEqual(settings.senderLogins, [
        { sender: "ana", logins: ["ana"] },
        { sender: "ops", logins: ["ops"] },
        { sender: "postmaster", logins: ["ana"] },
        { sender: "root", logins: ["ana"] },
        { sender: "abuse", logins: ["ana"] },
        { sender: "monitoring", logins: ["ana", "ops"] },
        { sender: "info@wiki.lab.home.arpa", logins: ["ops"] },
        { sender: "@tickets.lab.home.arpa", logins: ["ana"] },
    ], "every mail user is listed, with or without a password: a password added or removed changes nothing but the password file");
});
