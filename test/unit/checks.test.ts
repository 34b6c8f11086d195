// `npm run verify`: the pure judging, parsing and output, and its host scripts. No network.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseArgs, UsageError } from "../../cli/verify";
import {
    describeDrift, ehloChecks, expiryCheck, fileCheck, formatReport, HOST_SECTIONS, hostReportScript, mainCfDrift,
    maildirWaitScript, parseHostReport, parsePostconf, parseReplies, relayProbeChecks, report, smtpTargets,
} from "../../components/core/checks";
import { renderAliases } from "../../components/core/files";
import { formatValue, mainCfParameters, renderMainCf } from "../../components/core/main-cf";
import { remoteCommand } from "../../components/core/shell";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

const { settings } = readStackConfig(stackConfig("home")).servers[0];
const parameters = mainCfParameters(settings, { compatibilityLevel: "3.6" });
/** What the stack's `mainCfParameters` output holds. */
const deployed = Object.fromEntries(parameters.map(([name, value]) => [name, formatValue(value)]));

test("SMTP replies: single and multi-line, split anywhere, CR LF or LF", () => {
    const text = "220 mx.home.lan ESMTP\r\n250-mx.home.lan\r\n250-SIZE 52428800\r\n250 STARTTLS\r\n550 5.1.1 <x@home.lan>: Recipient";
    const all = parseReplies(text);
    assert.deepEqual(all.replies.map((r) => r.code), [220, 250]);
    assert.deepEqual(all.replies[1].lines, ["250-mx.home.lan", "250-SIZE 52428800", "250 STARTTLS"]);
    assert.equal(all.rest, "550 5.1.1 <x@home.lan>: Recipient");

    // Arriving in pieces: an unfinished multi-line reply waits in the rest.
    const first = parseReplies("250-mx.home.lan\r\n250-PIPE");
    assert.deepEqual(first.replies, []);
    const second = parseReplies(first.rest + "LINING\n250 8BITMIME\n");
    assert.deepEqual(second.replies, [{ code: 250, lines: ["250-mx.home.lan", "250-PIPELINING", "250 8BITMIME"] }]);
    assert.equal(second.rest, "");

    assert.deepEqual(parseReplies("354\r\n").replies, [{ code: 354, lines: ["354"] }]);
    assert.throws(() => parseReplies("hello\r\n"), /not an SMTP reply line/);
});

test("EHLO checks: STARTTLS, SIZE as configured, no VRFY", () => {
    const ehlo = (...features: string[]) => parseReplies(["250-mx.home.lan", ...features.map((f) => `250-${f}`), "250 8BITMIME", ""].join("\r\n")).replies[0];
    const good = ehloChecks(ehlo("PIPELINING", "SIZE 52428800", "STARTTLS"), 52428800);
    assert.deepEqual(good.map((c) => [c.name, c.ok]), [["starttls offered", true], ["size limit", true], ["no vrfy", true]]);

    const bad = ehloChecks(ehlo("VRFY", "SIZE 1234"), 52428800);
    assert.deepEqual(bad.map((c) => c.ok), [false, false, false]);
    assert.equal(bad[1].detail, "expected SIZE 52428800, seen SIZE 1234");
    assert.equal(bad[2].detail, "expected no VRFY, seen VRFY offered");
});

test("drift: the rendered main.cf read back by postconf -n has none", () => {
    const live = parsePostconf(renderMainCf(parameters).split("\n").filter((l) => !l.startsWith("#")).join("\n"));
    assert.deepEqual(mainCfDrift(deployed, live), []);
    assert.equal(live.relayhost, "", "an empty value is read as empty");
    assert.equal(live.smtp_tls_session_cache_database, "btree:${data_directory}/smtp_scache");
});

test("drift: changed, missing and unwanted parameters, one by one", () => {
    const live = { ...deployed, message_size_limit: "1234", smtpd_relay_restrictions: "permit", maillog_file: "/var/log/x" };
    delete (live as Record<string, string>).biff;
    const drift = mainCfDrift(deployed, live);
    assert.deepEqual(drift.map((d) => d.name), ["message_size_limit", "biff", "smtpd_relay_restrictions", "maillog_file"]);
    assert.deepEqual(drift.map(describeDrift), [
        'message_size_limit: expected "52428800", seen "1234"',
        'biff: expected "no", seen not set',
        'smtpd_relay_restrictions: expected "permit_mynetworks, reject_unauth_destination", seen "permit"',
        'maillog_file: expected not set, seen "/var/log/x"',
    ]);
    // Only spacing differs: no drift.
    assert.deepEqual(mainCfDrift({ a: "x, y" }, { a: "x,   y " }), []);
});

test("files: equal passes, else the first differing line", () => {
    const aliases = renderAliases(settings);
    assert.ok(fileCheck("aliases", "/etc/aliases", aliases, { status: 0, output: aliases }).ok);
    const changed = fileCheck("aliases", "/etc/aliases", aliases, { status: 0, output: aliases.replace("root: fribeiro", "root: bob") });
    assert.equal(changed.detail, 'expected /etc/aliases line 3 "root: fribeiro", seen "root: bob"');
    const longer = fileCheck("mailname", "/etc/mailname", "home.lan\n", { status: 0, output: "home.lan\nextra\n" });
    assert.equal(longer.detail, 'expected /etc/mailname line 2 "", seen "extra"');
    const missing = fileCheck("mailname", "/etc/mailname", "home.lan\n", { status: 1, output: "cat: /etc/mailname: No such file or directory\n" });
    assert.equal(missing.detail, "cannot read /etc/mailname: cat: /etc/mailname: No such file or directory");
});

test("certificate expiry: days left, the renewal window, expired", () => {
    const now = new Date("2025-01-01T00:00:00Z");
    const inDays = (days: number) => new Date(now.getTime() + days * 86400_000);
    assert.deepEqual(expiryCheck(inDays(100), now, 30 * 24), { name: "certificate expiry", ok: true, detail: "100 days left" });
    assert.equal(expiryCheck(inDays(10), now, 30 * 24).detail, "expected more than 30 days left, seen 10 days left (run pulumi up)");
    assert.equal(expiryCheck(inDays(-3), now, 30 * 24).detail, "expected a valid certificate, seen expired 3 days ago (run pulumi up)");
});

test("the host report is read back byte for byte, terminal CRs in first lines dropped", () => {
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const sections = parseHostReport(`running 1 ${b64("postfix/postfix-script: the Postfix mail system is not running\r\n")}\naliases 0 ${b64("a: b\n")}\nqueue 0 ${b64("")}\n`);
    assert.deepEqual(sections.aliases, { status: 0, output: "a: b\n" });
    assert.equal(sections.running.status, 1);
    assert.deepEqual(sections.queue, { status: 0, output: "" });
});

test("the relay probe's report becomes the relay, main.cf and XCLIENT checks, or says what went wrong", () => {
    const same = "a".repeat(64);
    const run = (stdout: string, code = 0, stderr = "") => relayProbeChecks({ code, stdout, stderr });
    const refused = run(`main_cf=${same} ${same}\nxclient=220 2.0.0 Ok\nrcpt=554 5.7.1 <probe@relay-check.invalid>: Relay access denied\n`);
    assert.deepEqual(refused.map((c) => [c.name, c.ok]), [["relay refused", true], ["main.cf restored", true], ["xclient removed", true]]);
    assert.equal(refused[0].detail, "554 5.7.1 <probe@relay-check.invalid>: Relay access denied (as 192.0.2.1 through XCLIENT)");
    const open = run(`main_cf=${same} ${"b".repeat(64)}\nleft=smtpd_authorized_xclient_hosts = 127.0.0.1\nxclient=220 2.0.0 Ok\nrcpt=250 2.1.5 Ok\n`);
    assert.equal(open[0].detail, "expected 5xx to an outside client relaying, seen 250 2.1.5 Ok (as 192.0.2.1 through XCLIENT)");
    assert.equal(open[1].detail, `expected sha256 ${same}, seen sha256 ${"b".repeat(64)}`);
    assert.equal(open[2].detail, "expected not set, seen smtpd_authorized_xclient_hosts = 127.0.0.1");
    assert.equal(run(`main_cf=${same} ${same}\nxclient=554 5.7.1 Error: insufficient authorization\nrcpt=(not asked)\n`)[0].detail, "XCLIENT refused: 554 5.7.1 Error: insufficient authorization");
    assert.equal(run(`reload=failed\nmain_cf=${same} ${same}\nxclient=220 2.0.0 Ok\nrcpt=554 5.7.1 denied\n`)[2].ok, false);
    // It could not start: postfix down. Nothing was touched, so there is one check only.
    assert.deepEqual(run("", 1, "postfix is not running\n").map((c) => [c.name, c.ok, c.detail]), [["relay refused", false, "postfix is not running"]]);
    assert.equal(run("", 1)[0].detail, "the relay probe exited 1 with no message", "a failure without a message still says something");
});

test("output: one line per check, grouped per server, and the summary; --json keeps the same data", () => {
    const r = report("home", [{ name: "server", checks: [
        { name: "smtp banner", ok: true, detail: "220 server.home.lan ESMTP" },
        { name: "size limit", ok: false, detail: "expected SIZE 52428800, seen SIZE 1234" },
    ] }]);
    assert.deepEqual([r.passed, r.failed], [1, 1]);
    assert.equal(formatReport(r), [
        "server (stack home)",
        "  ✓ smtp banner  220 server.home.lan ESMTP",
        "  ✗ size limit   expected SIZE 52428800, seen SIZE 1234",
        "1 passed, 1 failed",
        "",
    ].join("\n"));
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(r))), ["stack", "servers", "passed", "failed"]);
});

test("endpoints: the SMTP session goes to the server, never to the workstation's own loopback", () => {
    // The home stack: 127.0.0.1 first, as the guide's inet_interfaces; verify runs on another machine.
    const home = ["127.0.0.1:25", "192.168.1.100:25"];
    assert.deepEqual(smtpTargets(home, "192.168.1.100"), { session: "192.168.1.100:25", others: [], notFromHere: ["127.0.0.1:25"] });
    // Reached by name: the first address that is not loopback.
    assert.deepEqual(smtpTargets([...home, "127.0.0.1:587", "192.168.1.100:587"], "server.home.lan"),
        { session: "192.168.1.100:25", others: ["192.168.1.100:587"], notFromHere: ["127.0.0.1:25", "127.0.0.1:587"] });
    // Several LAN addresses: the one SSH reaches, whatever the order.
    assert.equal(smtpTargets(["[fd00::25]:25", "10.0.0.25:25"], "10.0.0.25").session, "10.0.0.25:25");
    assert.equal(smtpTargets(["[fd00::25]:25", "10.0.0.25:25"], "fd00::25").session, "[fd00::25]:25");
    assert.equal(smtpTargets(["[fd00:0::25]:25"], "fd00::25").session, "[fd00:0::25]:25", "addresses compared, not their text");
    // A server SSH reaches on this machine's loopback is this machine: its loopback is reachable too.
    assert.deepEqual(smtpTargets(["127.0.0.1:25", "127.0.23.2:25"], "127.0.23.2"), { session: "127.0.23.2:25", others: ["127.0.0.1:25"], notFromHere: [] });
    assert.deepEqual(smtpTargets(["[::1]:25", "127.0.9.2:25", "[::1]:587"], "127.0.9.2"), { session: "127.0.9.2:25", others: ["[::1]:25", "[::1]:587"], notFromHere: [] });
    assert.deepEqual(smtpTargets(["127.0.0.1:25"], "localhost"), { session: "127.0.0.1:25", others: [], notFromHere: [] });
    // Only loopback, from another machine: nothing to talk to (verify says so in the SMTP checks).
    assert.deepEqual(smtpTargets(["127.0.0.1:25", "[::1]:25"], "192.168.1.100"), { session: undefined, others: [], notFromHere: ["127.0.0.1:25", "[::1]:25"] });
    // The output names the endpoint, and what was left alone.
    const r = report("home", [{ name: "server", smtpEndpoint: "192.168.1.100:25", notFromHere: ["127.0.0.1:25"], checks: [{ name: "smtp banner", ok: true, detail: "220 server.home.lan ESMTP" }] }]);
    assert.equal(formatReport(r).split("\n")[0], "server (stack home): SMTP checks on 192.168.1.100:25; not from here: 127.0.0.1:25 (the server's own loopback)");
});

test("arguments", () => {
    assert.deepEqual(parseArgs(["--stack", "home"]), { stack: "home", json: false, send: undefined, sourceAddress: undefined, server: undefined });
    assert.deepEqual(parseArgs(["--json", "--stack=lab", "--send", "fribeiro", "--source-address", "192.168.1.20", "--server", "mx"]),
        { stack: "lab", json: true, send: "fribeiro", sourceAddress: "192.168.1.20", server: "mx" });
    for (const [argv, message] of [
        [[], /--stack is required/],
        [["--stack"], /--stack needs a value/],
        [["--stack", "--json"], /--stack needs a value/],
        [["--stack", "home", "--verbose"], /unknown argument "--verbose"/],
        [["--stack", "home", "--send", "x;rm -rf /"], /not a local user name/],
        [["--stack", "home", "--json=yes"], /unknown argument/],
    ] as const) {
        assert.throws(() => parseArgs(argv), (e: Error) => e instanceof UsageError && message.test(e.message), JSON.stringify(argv));
    }
});

const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

test("the verify host scripts pass shellcheck, alone and as the command line sent", { skip: !shellcheck && !process.env.CI && "shellcheck is not installed" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "shellcheck-"));
    const scripts = {
        report: hostReportScript(),
        maildir: maildirWaitScript("fribeiro", "pulumi-postfix verify 1234", 30),
    };
    for (const [name, body] of Object.entries(scripts)) {
        assert.match(body, /^set -eu\n/, `${name} starts with set -eu`);
        for (const [kind, text, args] of [["script", body, ["-s", "sh"]], ["sudo command line", remoteCommand(body, "deploy"), ["-s", "bash", "-S", "warning"]]] as const) {
            const file = join(dir, "script.sh");
            writeFileSync(file, text);
            const result = spawnSync("shellcheck", [...args, file], { encoding: "utf8" });
            assert.equal(result.status, 0, `${name} (${kind}):\n${result.stdout}`);
        }
    }
});

test("the host report script runs and encodes each section", () => {
    // Run where postfix is absent: every section still reports, with its status.
    const r = spawnSync("sh", ["-c", hostReportScript()], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
    const sections = parseHostReport(r.stdout);
    assert.deepEqual(Object.keys(sections), Object.keys(HOST_SECTIONS));
    assert.notEqual(sections.running.status, 0, "no postfix here");
});
