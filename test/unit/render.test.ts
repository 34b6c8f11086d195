// Golden files: what the home (the guide's values) and lab stacks write on the host.
// UPDATE_GOLDEN=1 npm run test:unit rewrites them; review the diff before committing.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderAliases, renderMailname, renderPreseed } from "../../components/core/files";
import { mainCfParameters, OWNED_PARAMETERS, renderMainCf } from "../../components/core/main-cf";
import { validateMailOptions } from "../../components/core/validate";
import { readStackConfig } from "../../components/stack-config";
import { REPO, stackConfig } from "../support/stack";

const DEBIAN_12 = { compatibilityLevel: "3.6" };

function golden(stack: string, file: string, actual: string): void {
    const path = join(REPO, "test", "golden", stack, file);
    if (process.env.UPDATE_GOLDEN === "1" || !existsSync(path)) {
        mkdirSync(join(REPO, "test", "golden", stack), { recursive: true });
        writeFileSync(path, actual);
    }
    assert.equal(actual, readFileSync(path, "utf8"), `${stack}/${file} differs from its golden file`);
}

for (const stack of ["home", "lab"]) {
    test(`${stack} stack renders its golden files`, () => {
        const { servers, problems } = readStackConfig(stackConfig(stack));
        assert.deepEqual(problems, []);
        const { settings } = servers[0];
        golden(stack, "main.cf", renderMainCf(mainCfParameters(settings, DEBIAN_12)));
        golden(stack, "aliases", renderAliases(settings));
        golden(stack, "mailname", renderMailname(settings));
        golden(stack, "preseed", renderPreseed(settings));
    });
}

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
    assert.deepEqual(names.slice(0, OWNED_PARAMETERS.length), [...OWNED_PARAMETERS]);
    assert.deepEqual(names.slice(OWNED_PARAMETERS.length), ["defer_transports", "maillog_file"]);
    const cf = renderMainCf(parameters);
    assert.match(cf, /^smtpd_banner = \$myhostname ESMTP ready$/m);
    assert.match(cf, /^inet_interfaces = \[fd00::25\], 10\.0\.0\.25$/m);
    assert.match(cf, /^mynetworks = \[fd00::\]\/64, 10\.0\.0\.0\/24$/m);
    assert.match(cf, /^inet_protocols = all$/m);
});
