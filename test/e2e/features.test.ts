// Beyond the guide, on a fresh Debian 13 host: IPv6 (on ::1), the submission port 587, virtual
// alias domains, and certificate renewal. Loopback only; outbound mail is held on the host.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { PATHS } from "../../components/core/paths";
import { ageCertificate } from "./support/certificates";
import { eventually, hostDown, hostOk, hostSh, HostInfo, hostUp, masterPid } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";
import { Dialogue, replies, starttlsFingerprint, swaks } from "./support/smtp";

const name = "e2e-features";
const subnet = "127.0.18";
const address = `${subnet}.2`;
const lanClient = `${subnet}.50`;
const outsider = "127.0.99.18";
const stack = new Stack(name);
let host: HostInfo;

type Changes = { submission?: boolean; virtualAliases?: Record<string, string | string[]>; messageSizeLimit?: number; unsafe?: Record<string, string> };
const VIRTUAL = { "info@shop.test": "alice", "@tickets.test": "fribeiro" };
const ALICE_PASSWORD = "alice-sends-on-587";
/** A login on port 587, after STARTTLS. */
const auth587 = ["--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", ALICE_PASSWORD];
const SENDER_CHECK = PATHS.senderCheck;

const config = (changes: Changes = {}) => mxConfig({
    // IPv6 first: the deploy check probes the first listen address (verify, the address SSH reaches).
    host, subnet, listenAddresses: ["::1", address], extraParameters: changes.unsafe,
    options: {
        "postfix:allowUnsafeOverrides": changes.unsafe !== undefined,
        "postfix:trustedNetworks": [`${subnet}.0/24`, "::1/128"],
        "postfix:submission": changes.submission ?? true,
        "postfix:virtualAliases": changes.virtualAliases ?? VIRTUAL,
        "postfix:messageSizeLimit": changes.messageSizeLimit ?? 52428800,
    },
});

const send = (server: string, from: string, to: string, subject: string, args: string[] = [], port = 25) => swaks(server, from, [
    "--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", to, "--header", `Subject: ${subject}`, "--body", "sent by the features suite", ...args,
], port);
const queued = (d: Dialogue) => replies(d).some((l) => /^250 2\.0\.0 Ok: queued as /.test(l));
const delivered = (user: string, subject: string) => eventually(name, `grep -l 'Subject: ${subject}' /home/${user}/Maildir/new/*`);
/** Modification time of a file inside the host, to the nanosecond. */
const mtime = (path: string) => hostOk(name, `stat -c %y ${path}`).trim();

describe("beyond the guide on Debian trixie: IPv6, port 587, virtual aliases, certificate renewal", { timeout: 15 * 60_000 }, () => {
    before(() => {
        host = hostUp(name, "trixie", address);
        stack.init(config());
        stack.setSecret("postfix:mailPasswords.alice", ALICE_PASSWORD);
        const up = stack.up();
        console.log(`# features: cold pulumi up took ${up.seconds.toFixed(1)} s`);
    });
    after(() => {
        stack.remove();
        hostDown(name);
    });

    test("IPv6 first: bracketed in main.cf, the deploy check passed on it, postfix listens on ::1, and a client there gets mail delivered", async () => {
        assert.equal(hostOk(name, "postconf -h inet_interfaces").trim(), `[::1], ${address}`);
        assert.equal(hostOk(name, "postconf -h mynetworks").trim(), `${subnet}.0/24, [::1]/128`);
        assert.equal(hostOk(name, "postconf -h inet_protocols").trim(), "all");
        assert.equal(stack.outputs().mailServers.mx.smtpEndpoints[0], "[::1]:25");
        const subject = `ipv6 ${randomUUID()}`;
        const dialogue = send("::1", "::1", "alice@e2e.test", subject, ["-6"]);
        assert.match(replies(dialogue)[0], /^220 mx\.e2e\.test ESMTP$/, dialogue.transcript);
        assert.ok(queued(dialogue), dialogue.transcript);
        await delivered("alice", subject);
    });

    test("port 587 (Dovecot 2.4 without systemd): STARTTLS, then a login; without one even the LAN is refused", async () => {
        assert.match(hostOk(name, "postconf -M submission/inet"), /^submission\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd .*-o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes /m);
        assert.match(hostOk(name, "dovecot --version"), /^2\.4\./);
        // Postfix 3.10 counts AUTH commands per IPv6 /64 here; the null sender is refused even after a login.
        assert.match(hostOk(name, "postconf -P submission/inet/smtpd_client_ipv6_prefix_length"), /^submission\/inet\/smtpd_client_ipv6_prefix_length = 64$/m);
        const bounce = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "<>", "--to", "fribeiro@e2e.test", "--quit-after", "RCPT",
            "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", ALICE_PASSWORD], 587);
        assert.ok(replies(bounce).some((l) => /^554 5\.7\.1 <>: Sender address rejected: Access denied/.test(l)), bounce.transcript);
        const plain = send(address, lanClient, "alice@e2e.test", "no tls", ["--quit-after", "RCPT"], 587);
        assert.ok(replies(plain).some((l) => /^530 5\.7\.0 Must issue a STARTTLS command first/.test(l)), plain.transcript);
        const subject = `submission ${randomUUID()}`;
        const auth = ["--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", ALICE_PASSWORD];
        const sent = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--header", `Subject: ${subject}`, ...auth], 587);
        assert.match(sent.transcript, /TLS started with cipher/);
        assert.ok(replies(sent).some((l) => /^235 2\.7\.0 Authentication successful/.test(l)), sent.transcript);
        assert.ok(queued(sent), sent.transcript);
        await delivered("fribeiro", subject);
        // The From: rule (a milter Postfix 3.10 spawns, Python 3.13): her envelope, fribeiro's From:.
        const forged = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--h-From", "<fribeiro@e2e.test>", ...auth], 587);
        assert.ok(replies(forged).some((l) => /^550 5\.7\.1 From: <fribeiro@e2e\.test> is not an address of alice/.test(l)), forged.transcript);
        for (const client of [lanClient, outsider]) {
            const anonymous = send(address, client, "alice@e2e.test", "no login", ["--tls", "--quit-after", "RCPT"], 587);
            assert.ok(replies(anonymous).some((l) => /^554 5\.7\.1 .*Client host rejected/.test(l)), anonymous.transcript);
        }
    });

    test("a refresh of a server with port 587 finds nothing: Dovecot seen running, its files as deployed", () => {
        const check = stack.run(["preview", "--refresh", "--expect-no-changes", "--diff"]);
        assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
    });

    test("drift on port 587: Dovecot stopped and the From: rule's file edited; a refresh names both, one up --refresh repairs both", () => {
        const rule = hostOk(name, `cat ${SENDER_CHECK}`);
        // The rule disarmed by hand (every message passes it), and the logins' server stopped.
        hostOk(name, `sed -i 's/^    if not login or not froms:$/    if True:/' ${SENDER_CHECK} && grep -q '^    if True:$' ${SENDER_CHECK}`);
        hostOk(name, "doveadm stop");
        assert.notEqual(hostSh(name, "kill -0 \"$(cat /run/dovecot/master.pid)\"").status, 0, "Dovecot's master is down");

        const check = stack.run(["preview", "--refresh", "--expect-no-changes", "--diff"]);
        const shown = check.stdout + check.stderr;
        assert.notEqual(check.status, 0, shown);
        assert.ok(check.stdout.includes(SENDER_CHECK), `the file named by its path:\n${shown}`);
        assert.match(check.stdout, /dovecot\s*:\s*"stopped"\s*=>\s*"running"/, `the service named, from what the host has to what it gets:\n${shown}`);

        const up = stack.run(["up", "--refresh", "--yes", "--skip-preview"]);
        assert.equal(up.status, 0, up.stdout + up.stderr);
        assert.match(up.stdout, /mx-sender-check/, "the file's step ran again");
        assert.match(up.stdout, /mx-service updated .*dovecot started/, "the service step started Dovecot");
        console.log(`# features: port 587 drift: preview --refresh ${check.seconds.toFixed(1)} s, up --refresh ${up.seconds.toFixed(1)} s`);
        assert.equal(hostOk(name, `cat ${SENDER_CHECK}`), rule, "the From: rule's file byte for byte as deployed");
        assert.equal(hostSh(name, "kill -0 \"$(cat /run/dovecot/master.pid)\"").status, 0, "Dovecot runs");
        const forged = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--h-From", "<fribeiro@e2e.test>", ...auth587], 587);
        assert.ok(replies(forged).some((l) => /^235 2\.7\.0 Authentication successful/.test(l)), forged.transcript);
        assert.ok(replies(forged).some((l) => /^550 5\.7\.1 From: <fribeiro@e2e\.test> is not an address of alice/.test(l)), forged.transcript);
        const again = stack.run(["preview", "--refresh", "--expect-no-changes"]);
        assert.equal(again.status, 0, again.stdout + again.stderr);
    });

    test("virtual aliases: addresses of other domains reach local users; unknown ones there are refused", async () => {
        const info = `virtual ${randomUUID()}`;
        assert.ok(queued(send(address, lanClient, "info@shop.test", info)));
        const file = (await delivered("alice", info)).trim();
        assert.match(hostOk(name, `cat '${file}'`), /^X-Original-To: info@shop\.test$/m);
        const ticket = `catch-all ${randomUUID()}`;
        assert.ok(queued(send(address, lanClient, "anything@tickets.test", ticket)));
        await delivered("fribeiro", ticket);
        const unknown = send(address, lanClient, "nobody@shop.test", "unknown", ["--quit-after", "RCPT"]);
        assert.ok(replies(unknown).some((l) => /^550 5\.1\.1 <nobody@shop\.test>/.test(l)), unknown.transcript);
    });

    test("the virtual map is rebuilt only when it changes", async () => {
        const built = mtime("/etc/postfix/virtual.db");
        stack.configure(config({ messageSizeLimit: 10485760 }));
        stack.up();
        assert.equal(mtime("/etc/postfix/virtual.db"), built, "another change leaves the map alone");
        const more = { ...VIRTUAL, "sales@shop.test": ["alice", "fribeiro"] };
        stack.configure(config({ messageSizeLimit: 10485760, virtualAliases: more }));
        const planned = stack.plannedChanges();
        assert.equal(planned["mx-virtual-aliases"], "update", JSON.stringify(planned));
        // With port 587, main.cf lists who may send as each address (smtpd_sender_login_maps): a
        // new virtual alias adds its owners there.
        assert.equal(planned["mx-main-cf"], "update", JSON.stringify(planned));
        stack.up();
        assert.notEqual(mtime("/etc/postfix/virtual.db"), built, "the map was rebuilt");
        const subject = `sales ${randomUUID()}`;
        assert.ok(queued(send(address, lanClient, "sales@shop.test", subject)));
        await delivered("alice", subject);
        await delivered("fribeiro", subject);
    });

    test("a certificate inside its renewal window is replaced on the next up, reloaded, and verify sees it", () => {
        const before = stack.outputs().mailServers.mx.certificateSha256;
        assert.equal(starttlsFingerprint(address), before);
        const pid = masterPid(name);
        // Time passing, as the provider sees it: the certificate's recorded end moves to an hour from now.
        ageCertificate(stack, CERTIFICATE, 1);
        const preview = JSON.parse(stack.ok(["preview", "--json"]).stdout) as { steps: Array<{ op: string; urn: string }> };
        const certificateStep = preview.steps.find((s) => s.urn.endsWith(CERTIFICATE));
        assert.equal(certificateStep?.op, "replace", JSON.stringify(preview.steps.map((s) => [s.op, s.urn.split("::").pop()])));
        stack.up();
        const after = stack.outputs().mailServers.mx.certificateSha256;
        assert.notEqual(after, before, "a new certificate");
        assert.equal(starttlsFingerprint(address), after, "postfix presents it");
        assert.equal(masterPid(name), pid, "a reload was enough");
        const report = stack.verify(lanClient);
        const check = report.servers[0].checks.find((c) => c.name === "tls certificate")!;
        assert.ok(check.ok, check.detail);
        assert.equal(check.detail, after);
        // The other endpoints: a banner on each, and 587 refusing mail before STARTTLS.
        const endpoints = report.servers[0].checks.filter((c) => c.name.startsWith("endpoint "));
        // The session was on the address SSH reaches; the server is on this machine, so its ::1 answers too.
        assert.equal(report.servers[0].smtpEndpoint, `${address}:25`);
        assert.deepEqual(endpoints.map((c) => [c.name, c.ok]), [["endpoint [::1]:25", true], ["endpoint [::1]:587", true], [`endpoint ${address}:587`, true]],
            JSON.stringify(endpoints));
        assert.match(endpoints[1].detail, /^530 /);
        console.log(`# features: certificate renewed ${before.slice(0, 11)}... -> ${after.slice(0, 11)}...; verify ${report.passed}/${report.passed + report.failed}`);
    });

    test("turning submission off removes the 587 listener and keeps port 25", () => {
        stack.configure(config({ submission: false, messageSizeLimit: 10485760 }));
        stack.removeSecret("postfix:mailPasswords");
        stack.up();
        assert.equal(hostSh(name, "postconf -M submission/inet pulumi-sender-check/unix").stdout.trim(), "");
        assert.notEqual(hostSh(name, "test -e /usr/local/lib/pulumi-postfix").status, 0, "the From: rule's file and folder are gone");
        assert.notEqual(hostSh(name, "test -e /etc/dovecot/pulumi-postfix.passwd").status, 0, "no password hashes are left");
        const refused = swaks(address, lanClient, ["--quit-after", "CONNECT"], 587);
        assert.notEqual(refused.status, 0, refused.transcript);
        assert.match(replies(swaks(address, lanClient, ["--quit-after", "CONNECT"]))[0], /^220 /);
        assert.deepEqual(stack.outputs().mailServers.mx.smtpEndpoints, ["[::1]:25", `${address}:25`]);
    });

    test("a failed deployment that turns 587 on again is rolled back, and the restored server is checked as it is: port 25 alone", () => {
        // Trusts everyone: the deploy check finds an open relay and rolls back.
        const open = { mynetworks: "0.0.0.0/0", smtpd_client_restrictions: "permit", smtpd_relay_restrictions: "permit" };
        stack.configure(config({ submission: true, messageSizeLimit: 10485760, unsafe: open }));
        stack.setSecret("postfix:mailPasswords.alice", ALICE_PASSWORD);
        const up = stack.run(["up", "--yes", "--skip-preview"]);
        const output = up.stdout + up.stderr;
        assert.notEqual(up.status, 0, output);
        assert.match(output, /OPEN RELAY: an outside client got '250 2\.1\.5 Ok'/);
        // The check after the rollback tests what was restored (no 587, no Dovecot, no From: rule), and passes.
        assert.match(output, /so it was rolled back to the last configuration that passed, which passes again/, output);
        assert.doesNotMatch(output, /fails too/);
        assert.equal(hostSh(name, "postconf -M submission/inet pulumi-sender-check/unix").stdout.trim(), "");
        assert.notEqual(hostSh(name, "test -e /usr/local/lib/pulumi-postfix/sender-check.py").status, 0, "the From: rule's file is rolled back too");
        assert.notEqual(swaks(address, lanClient, ["--quit-after", "CONNECT"], 587).status, 0, "587 is closed again");
        // The stack put back: the pending copies of the steps that left it are dropped, and the check passes.
        stack.configure(config({ submission: false, messageSizeLimit: 10485760 }));
        stack.removeSecret("postfix:mailPasswords");
        assert.match(stack.up().stdout, /mx-service updated .*checks passed/);
        assert.equal(hostSh(name, "postconf -M submission/inet").stdout.trim(), "");
    });
});

const CERTIFICATE = "tls:index/selfSignedCert:SelfSignedCert::mx-tls-cert";
