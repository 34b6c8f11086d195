// Drift, the Pulumi way, on one deployed Debian 12 host: a hand edit that opens the relay, files
// changed or removed, postfix purged. `pulumi refresh` reads the server (ServerState, one SSH
// connection), the next preview names what drifted, and the next `up` runs exactly the drifted
// steps again. Plain `up` and `preview` read nothing. Last, port 587 turned on and the host
// upgraded in place to Debian 13 (apt from the test hosts' mirror): one `up --refresh` converges.
// Only loopback addresses (127.0.27.x, outsider 127.0.99.27); outbound mail is held, and relay
// attempts quit after RCPT.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PATHS } from "../../components/core/paths";
import { mxConfig } from "./support/config";
import { eventually, hostDown, hostOk, hostSh, HostInfo, hostUp, sshLogins } from "./support/host";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";
import { REPO } from "../support/stack";

const name = "drift-mx";
const subnet = "127.0.27";
const address = `${subnet}.2`;
const lanClient = `${subnet}.50`;
const outsider = "127.0.99.27";
const ALICE_PASSWORD = "alice-upgrades-with-debian";

/** Python's smtplib on 587 (test/e2e/support/mail-client.py): STARTTLS checked against the stack's CA, alice's login, one message to fribeiro. */
function sendOn587(caFile: string, subject: string): [string, string | undefined] {
    const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), address, "587", "mx.e2e.test", lanClient, caFile,
        "--login", "alice", ALICE_PASSWORD, "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--subject", subject], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { stage: string; error?: string };
    return [result.stage, result.error];
}

/** The server's reply to a relay attempt from the outsider (RCPT to another domain); swaks quits after it. */
function outsiderRelayReply(): string {
    const dialogue = swaks(address, outsider, ["--ehlo", "mail.example.invalid", "--from", "x@example.invalid", "--to", "victim@example.invalid", "--quit-after", "RCPT"]);
    const lines = dialogue.transcript.split("\n");
    const asked = lines.findIndex((l) => /^\s*-> RCPT TO:/.test(l));
    const answer = replies({ status: dialogue.status, transcript: lines.slice(asked + 1).join("\n") })[0];
    assert.ok(asked >= 0 && answer, `no reply to RCPT:\n${dialogue.transcript}`);
    return answer;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const fileDigest = (path: string) => sha256(hostOk(name, `cat ${path}`));

describe("drift: pulumi refresh reads the server, the next up repairs exactly what drifted", { timeout: 25 * 60_000 }, () => {
    const stack = new Stack(name);
    let host: HostInfo;
    /** main.cf as the deployment wrote it. */
    let mainCf = "";
    const timings: string[] = [];

    /** Runs pulumi and records how long it took and how many SSH logins it made. */
    const timed = (label: string, args: string[], expectStatus: number | "nonzero" = 0) => {
        const logins = sshLogins(host);
        const r = stack.run(args);
        const opened = sshLogins(host) - logins;
        timings.push(`${label}: ${r.seconds.toFixed(1)} s, ${opened} SSH logins${r.status === 0 ? "" : `, exit ${r.status}`}`);
        if (expectStatus === "nonzero") assert.notEqual(r.status, 0, `${label} should fail:\n${r.stdout}\n${r.stderr}`);
        else assert.equal(r.status, expectStatus, `${label}:\n${r.stdout}\n${r.stderr}`);
        return { ...r, logins: opened };
    };
    /** The steps a preview after a refresh plans, `step -> op` (without the stack's prefix `mx-`). */
    const plannedAfterRefresh = () => {
        const r = timed("preview --refresh --json", ["preview", "--refresh", "--json"]);
        const steps = (JSON.parse(r.stdout).steps ?? []) as Array<{ op: string; urn: string }>;
        return Object.fromEntries(steps.filter((s) => s.op !== "same" && s.op !== "refresh")
            .map((s) => [s.urn.split("::").pop()!.replace(/^mx-/, ""), s.op]));
    };
    /** The SSH key file's second line (key material) is not in the state in clear. */
    const keyNotInClear = () => {
        const material = readFileSync(host.privateKeyPath, "utf8").split("\n")[1];
        assert.ok(!stack.ok(["stack", "export"]).stdout.includes(material), "the SSH key is encrypted in the state, never in clear");
    };
    /** The ServerState's inputs and outputs in the state. */
    /** What a user sees of the drift in a preview: the ServerState's lines, printed for the docs. */
    const showDrift = (label: string, preview: string) => console.log(`# ${label}:\n${preview.split("\n")
        .filter((l) => /ServerState|server-state|Command|mynetworks|\/etc\/|mode|sha256|error|drift|changes|installed|running|stopped/.test(l)).map((l) => `#   ${l}`).join("\n")}`);
    const serverStateRecord = () => {
        const resources = JSON.parse(stack.ok(["stack", "export", "--show-secrets"]).stdout).deployment.resources as Array<{ urn: string; inputs: unknown; outputs: unknown }>;
        const record = resources.find((r) => r.urn.endsWith("::mx-server-state"))!;
        return { inputs: record.inputs, outputs: record.outputs };
    };

    before(() => {
        host = hostUp(name, "bookworm", address);
        stack.init(mxConfig({ host, subnet }));
        stack.up();
        mainCf = hostOk(name, `cat ${PATHS.mainCf}`);
    });
    after(() => {
        console.log(`drift suite timings (${new Date().toISOString().slice(0, 10)}):\n  ${timings.join("\n  ")}`);
        stack.remove();
        hostDown(name);
    });

    test("a clean server: refresh reads it over one SSH connection and changes nothing; the next up opens none", () => {
        const before = serverStateRecord();
        const refresh = timed("refresh, no drift", ["refresh", "--yes", "--skip-preview"]);
        assert.equal(refresh.logins, 1, "one SSH connection for the server");
        assert.deepEqual(serverStateRecord(), before, "the state is unchanged");
        const check = timed("preview --refresh --expect-no-changes, no drift", ["preview", "--refresh", "--expect-no-changes"]);
        assert.equal(check.logins, 1);
        const up = timed("up, no change", ["up", "--yes", "--skip-preview"]);
        assert.equal(up.logins, 0, "no SSH connection");
        keyNotInClear();
    });

    test("main.cf opened by hand: plain up repairs nothing; refresh, then up, puts it back byte for byte, and the outsider is refused", () => {
        hostOk(name, "postconf -e mynetworks=0.0.0.0/0 && postfix reload");
        assert.match(outsiderRelayReply(), /^250 /, "the hand edit opened the relay to the outsider");
        const plain = timed("up after a hand edit, no refresh", ["up", "--yes", "--skip-preview"]);
        assert.equal(plain.logins, 0, "plain up reads nothing");
        assert.match(hostOk(name, "postconf -h mynetworks"), /^0\.0\.0\.0\/0$/m, "so nothing was repaired");

        const check = timed("preview --refresh --expect-no-changes --diff, main.cf drifted", ["preview", "--refresh", "--expect-no-changes", "--diff"], "nonzero");
        showDrift("main.cf drifted", check.stdout + check.stderr);
        assert.match(check.stdout, /mynetworks\s*:\s*"0\.0\.0\.0\/0"\s*=>\s*"127\.0\.27\.0\/24"/, `the parameter named, from what the host has to what it gets:\n${check.stdout}`);

        timed("refresh, main.cf drifted", ["refresh", "--yes", "--skip-preview"]);
        keyNotInClear();
        assert.deepEqual(plannedAfterRefresh(), { "server-state": "update", "main-cf": "update", "service": "update" }, "exactly main.cf's step, then the reload");
        timed("up after the refresh", ["up", "--yes", "--skip-preview"]);
        assert.equal(hostOk(name, `cat ${PATHS.mainCf}`), mainCf, "main.cf byte for byte as deployed");
        assert.match(outsiderRelayReply(), /^554 5\.7\.1 .*Client host rejected/, "the outsider is refused again");
        const after = timed("up, no change after the repair", ["up", "--yes", "--skip-preview"]);
        assert.equal(after.logins, 0);
    });

    test("main.cf opened by hand again: up --refresh puts it back at once", () => {
        hostOk(name, "postconf -e mynetworks=0.0.0.0/0 && postfix reload");
        assert.match(outsiderRelayReply(), /^250 /);
        timed("up --refresh, main.cf drifted", ["up", "--refresh", "--yes", "--skip-preview"]);
        assert.equal(hostOk(name, `cat ${PATHS.mainCf}`), mainCf, "main.cf byte for byte as deployed");
        assert.match(outsiderRelayReply(), /^554 5\.7\.1 .*Client host rejected/);
        timed("preview --refresh --expect-no-changes after the repair", ["preview", "--refresh", "--expect-no-changes"]);
    });

    test("aliases edited, the TLS key made readable by all, the virtual map removed: up --refresh runs exactly those steps", () => {
        const aliases = fileDigest(PATHS.aliases);
        hostOk(name, `echo 'webmaster: root' >>${PATHS.aliases} && newaliases && chmod 0644 ${PATHS.tlsKey} && rm ${PATHS.virtualAliases}`);
        const check = timed("preview --refresh --expect-no-changes --diff, three files drifted", ["preview", "--refresh", "--expect-no-changes", "--diff"], "nonzero");
        showDrift("three files drifted", check.stdout + check.stderr);
        for (const path of [PATHS.aliases, PATHS.tlsKey, PATHS.virtualAliases]) assert.ok(check.stdout.includes(path), `${path} named:\n${check.stdout}`);
        assert.match(check.stdout, /mode\s*:\s*"0644"\s*=>\s*"0600"/, "the key's mode, from what it is to what it gets");
        assert.deepEqual(plannedAfterRefresh(), {
            "server-state": "update", "aliases": "update", "tls-key": "update", "virtual-aliases": "update", "service": "update",
        });
        timed("up --refresh, three files drifted", ["up", "--refresh", "--yes", "--skip-preview"]);
        assert.equal(fileDigest(PATHS.aliases), aliases, "/etc/aliases as deployed");
        assert.equal(hostOk(name, `stat -c '%a %U:%G' ${PATHS.tlsKey}`).trim(), "600 root:root", "the key is root's alone again");
        assert.match(hostOk(name, `cat ${PATHS.virtualAliases}`), /^# Managed by pulumi-postfix/, "the virtual map is back");
        assert.notEqual(hostSh(name, `postalias -q webmaster hash:${PATHS.aliases}`).status, 0, "the added alias is gone from the database too");
        timed("preview --refresh --expect-no-changes after the repair", ["preview", "--refresh", "--expect-no-changes"]);
    });

    test("another Postfix series than the deployment rendered for (Debian upgraded under it): up --refresh runs the install step again", () => {
        // What an admin's Debian 11 -> 12 upgrade leaves: the install step recorded Postfix 3.5, 3.7 runs.
        // (The record is edited here; the last test upgrades the host's Debian itself.)
        assert.match(hostOk(name, "cat /var/lib/pulumi-postfix/deployed-versions"), /^postfix 3\.7\.\d+$/m, "the cold up recorded the series it rendered for");
        hostOk(name, "sed -i 's/^postfix .*/postfix 3.5.25/' /var/lib/pulumi-postfix/deployed-versions");
        const check = timed("preview --refresh --expect-no-changes --diff, another series", ["preview", "--refresh", "--expect-no-changes", "--diff"], "nonzero");
        showDrift("another Postfix series", check.stdout + check.stderr);
        assert.match(check.stdout, /postfix\s*:\s*"installed 3\.7, deployed with 3\.5"\s*=>\s*"installed"/, "the package named, with both series");
        assert.equal(plannedAfterRefresh().install, "update");
        const up = timed("up --refresh, another series", ["up", "--refresh", "--yes", "--skip-preview"]);
        assert.match(up.stdout, /mx-install/, "the install step ran again");
        assert.match(hostOk(name, "cat /var/lib/pulumi-postfix/deployed-versions"), /^postfix 3\.7\.\d+$/m, "and recorded the running series");
        assert.equal(hostOk(name, `cat ${PATHS.mainCf}`), mainCf, "main.cf, rendered for the same series, unchanged");
        timed("preview --refresh --expect-no-changes after the install", ["preview", "--refresh", "--expect-no-changes"]);
    });

    test("postfix purged and /etc/postfix removed: up --refresh installs and configures it again, and verify passes", () => {
        hostOk(name, "postfix stop >/dev/null 2>&1 || true; DEBIAN_FRONTEND=noninteractive apt-get purge -q -y postfix postfix-doc >/dev/null; rm -rf /etc/postfix");
        assert.notEqual(hostSh(name, "command -v postconf").status, 0, "postfix is gone");
        const check = timed("preview --refresh --expect-no-changes --diff, postfix purged", ["preview", "--refresh", "--expect-no-changes", "--diff"], "nonzero");
        showDrift("postfix purged", check.stdout + check.stderr);
        assert.match(check.stdout, /postfix\s*:\s*"missing"\s*=>\s*"installed"/, "the package named");
        const up = timed("up --refresh, postfix purged", ["up", "--refresh", "--yes", "--skip-preview"]);
        assert.match(up.stdout, /mx-install/, "the install step ran again");
        assert.equal(hostOk(name, `cat ${PATHS.mainCf}`), mainCf, "main.cf byte for byte as deployed");
        const report = stack.verify(lanClient);
        assert.equal(report.failed, 0, JSON.stringify(report, null, 2));
        assert.match(outsiderRelayReply(), /^554 5\.7\.1 .*Client host rejected/);
        timed("preview --refresh --expect-no-changes after the reinstall", ["preview", "--refresh", "--expect-no-changes"]);
    });

    test("Debian 12 upgraded in place to 13 under a port-587 server (Postfix 3.10, Dovecot 2.4): one up --refresh converges", async () => {
        // Port 587 on: Dovecot 2.3 answers logins, in the file rendered for 2.3.
        stack.configure(mxConfig({ host, subnet, options: { "postfix:submission": true, "postfix:certificateAuthority": { commonName: "E2E mail CA" } } }));
        stack.setSecret("postfix:mailPasswords.alice", ALICE_PASSWORD);
        timed("up, port 587 on (Debian 12)", ["up", "--yes", "--skip-preview"]);
        const caFile = join(mkdtempSync(join(tmpdir(), "pulumi-postfix-drift-")), "ca.pem");
        writeFileSync(caFile, stack.outputs().certificateAuthorityPem);
        assert.match(hostOk(name, "dovecot --version"), /^2\.3\./);
        assert.match(hostOk(name, "cat /var/lib/pulumi-postfix/deployed-versions"), /^dovecot 2\.3\./m);
        const before = `before the upgrade ${randomUUID()}`;
        assert.deepEqual(sendOn587(caFile, before), ["done", undefined]);
        await eventually(name, `grep -l 'Subject: ${before}' /home/fribeiro/Maildir/new/*`);

        // What the admin does: the sources to trixie, a full upgrade keeping the changed configuration files.
        const started = Date.now();
        hostOk(name, "sed -i 's/bookworm/trixie/g' /etc/apt/sources.list && apt-get update -q >/dev/null && " +
            "DEBIAN_FRONTEND=noninteractive apt-get full-upgrade -q -y -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef >/tmp/upgrade.log 2>&1");
        timings.push(`apt-get full-upgrade to trixie on the host: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.match(hostOk(name, ". /etc/os-release && echo $VERSION_ID"), /^13$/m);
        assert.match(hostOk(name, "postconf -h mail_version"), /^3\.10\./);
        assert.match(hostOk(name, "dovecot --version"), /^2\.4\./);
        // The packages' restarts, which the test host's policy-rc.d holds back and systemd runs on a
        // server: sshd restarts as OpenSSH 10 (SIGHUP: it executes its new binary), Postfix 3.10
        // starts on the kept main.cf, and Dovecot 2.4 refuses the file rendered for 2.3.
        const listenedBefore = Number(hostOk(name, "grep -c 'Server listening on' /var/log/sshd.log || true").trim());
        hostOk(name, "kill -HUP \"$(cat /run/sshd.pid)\"");
        await eventually(name, `test "$(grep -c 'Server listening on' /var/log/sshd.log)" -gt ${listenedBefore}`);
        const dovecotPid = hostOk(name, "cat /run/dovecot/master.pid").trim();
        assert.match(dovecotPid, /^\d+$/);
        hostOk(name, `postfix stop >/dev/null && postfix start >/dev/null 2>&1 && kill ${dovecotPid}`);
        // (By its process id: a chroot host shares the machine's process table.)
        await eventually(name, `! kill -0 ${dovecotPid} 2>/dev/null`);
        assert.notEqual(hostSh(name, "doveconf -n >/dev/null").status, 0, "Dovecot 2.4 refuses the 2.3 file");
        assert.notEqual(hostSh(name, "dovecot").status, 0, "so Dovecot does not start, and 587 takes no login");

        const check = timed("preview --refresh --expect-no-changes --diff, Debian 12 -> 13", ["preview", "--refresh", "--expect-no-changes", "--diff"], "nonzero");
        showDrift("Debian upgraded to 13", check.stdout + check.stderr);
        assert.match(check.stdout, /postfix\s*:\s*"installed 3\.10, deployed with 3\.7"\s*=>\s*"installed"/, "Postfix named, with both series");
        assert.match(check.stdout, /dovecot-core\s*:\s*"installed 2\.4, deployed with 2\.3"\s*=>\s*"installed"/, "Dovecot named, with both series");
        const up = timed("up --refresh after the upgrade", ["up", "--refresh", "--yes", "--skip-preview"]);
        assert.match(up.stdout, /mx-install/, "the install step ran again");
        assert.match(hostOk(name, "cat /var/lib/pulumi-postfix/deployed-versions"), /^postfix 3\.10\.[\s\S]*^dovecot 2\.4\./m, "and recorded the running versions");
        assert.match(hostOk(name, `cat ${PATHS.dovecotConf}`), /^\s+passwd_file_path = /m, "Dovecot's file in 2.4 syntax");
        hostOk(name, "doveconf -n >/dev/null");
        const after = `after the upgrade ${randomUUID()}`;
        assert.deepEqual(sendOn587(caFile, after), ["done", undefined], "587 takes a login and a message");
        await eventually(name, `grep -l 'Subject: ${after}' /home/fribeiro/Maildir/new/*`);
        const report = stack.verify(lanClient);
        assert.equal(report.failed, 0, JSON.stringify(report, null, 2));
        timed("preview --refresh --expect-no-changes after the upgrade's repair", ["preview", "--refresh", "--expect-no-changes"]);
        assert.equal(timed("up, no change after the upgrade", ["up", "--yes", "--skip-preview"]).logins, 0, "no SSH connection");
    });
});
