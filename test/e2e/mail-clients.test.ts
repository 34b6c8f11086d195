// Mail programs trust the server: a stack with a private certificate authority, the TLS policy
// on ports 25 and 587 as a scanner sees it, and logins on port 587 (Dovecot 2.3's auth service on
// a Debian 12 host booted with systemd). The stack trusts only the server itself: every client
// here is outside the trusted networks, as a laptop on a guest network is. Loopback only;
// outbound mail is held on the host.
// Runs alone: a host booted with systemd, where installing postfix starts it on every address.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { ageCertificate } from "./support/certificates";
import { eventually, hostDown, hostOk, HostInfo, hostUp, masterPid } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const name = "e2e-mail-clients";
const subnet = "127.0.22";
const address = `${subnet}.2`;
const serverName = "mx.e2e.test";
// Clients, each from its own address (port 587 counts AUTH commands per client address).
const laptop = "127.0.98.22";
const guest = "127.0.98.23";
const guesser = "127.0.98.24";
// The From: header checks log in 4 more times: from their own address, under the AUTH limit.
const desk = "127.0.98.25";
const PASSWORDS = { alice: "alice's long mail password", fribeiro: "fribeiro-mail-password-1" };
const stack = new Stack(name);
const work = mkdtempSync(join(tmpdir(), "pulumi-postfix-clients-"));
const caFile = join(work, "ca.pem");
let host: HostInfo;

const config = (options: { authority?: boolean } = {}) => mxConfig({
    host, subnet,
    options: {
        // Only the server itself: port 25 serves it alone, port 587 everyone who logs in.
        "postfix:trustedNetworks": [`${address}/32`],
        "postfix:submission": true,
        ...(options.authority ?? true ? { "postfix:certificateAuthority": { commonName: "E2E mail CA" } } : {}),
    },
});

interface ClientResult { stage: string; error?: string; tls?: string; cipher?: string; auth_before_starttls?: boolean; login_seconds?: number }

/** Python's smtplib with ssl.create_default_context(cafile): chain and name checked, as mail programs do. */
function python(port: number, source: string, extra: string[] = []): ClientResult {
    const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), address, String(port), serverName, source, caFile, ...extra], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as ClientResult;
}
const login = (user: keyof typeof PASSWORDS | string, password: string) => ["--login", user, password];
const loginOnce = (user: keyof typeof PASSWORDS | string, password: string) => ["--login-once", user, password];
const mail = (from: string, to: string, subject: string) => ["--from", from, "--to", to, "--subject", subject];
/** How many times postfix's master has logged a reload or a start (maillog_file), to tell that neither happened. */
const postfixLifeEvents = () => hostOk(name, "grep -cE 'postfix/master\\[[0-9]+\\]: (reload|daemon started)' /var/log/postfix.log || true").trim();
const delivered = (user: string, subject: string) => eventually(name, `grep -l 'Subject: ${subject}' /home/${user}/Maildir/new/*`);

/** What sslscan (Debian's) sees on a port after STARTTLS: protocols and accepted suites. */
function scan(port: number): { protocols: Record<string, boolean>; suites: Array<{ protocol: string; name: string; kex: string }> } {
    const r = spawnSync("sslscan", ["--no-colour", "--no-heartbleed", "--no-compression", "--no-fallback", "--no-renegotiation", "--starttls-smtp", `${address}:${port}`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const protocols = Object.fromEntries([...r.stdout.matchAll(/^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)$/gm)].map((m) => [m[1], m[2] === "enabled"]));
    const suites = [...r.stdout.matchAll(/^(?:Preferred|Accepted)\s+(TLSv1\.[0-3])\s+\d+ bits\s+(\S+)\s*(.*)$/gm)].map((m) => ({ protocol: m[1], name: m[2], kex: m[3].trim() }));
    return { protocols, suites };
}

describe("mail programs trust the server: a private CA, the TLS policy, logins on port 587 (Debian 12, systemd)", { timeout: 15 * 60_000 }, () => {
    before(() => {
        host = hostUp(name, "bookworm", address, "boot");
        stack.init(config());
        for (const [user, password] of Object.entries(PASSWORDS)) stack.setSecret(`postfix:mailPasswords.${user}`, password);
        const up = stack.up();
        console.log(`# mail clients: cold pulumi up took ${up.seconds.toFixed(1)} s`);
        // The deploy check asked the From: rule, through the socket smtpd uses, about a From: no login owns.
        assert.match(up.stdout, /mx-service created .*checks passed: postfix running, dovecot auth listening, From: rule answering, 220 on /);
        writeFileSync(caFile, stack.outputs().certificateAuthorityPem);
    });
    after(() => {
        stack.remove();
        hostDown(name);
        rmSync(work, { recursive: true, force: true });
    });

    test("the server's certificate is signed by the stack's authority, for its name; the key and passwords never show", () => {
        const outputs = stack.outputs();
        const ca = new X509Certificate(outputs.certificateAuthorityPem);
        const served = new X509Certificate(hostOk(name, "cat /etc/ssl/certs/server.crt"));
        assert.ok(ca.ca, "the authority's certificate is a CA");
        // What docs/security.md says: @pulumi/tls 5.5.1 cannot write a path length of 0, so the
        // authority's certificate carries none.
        const text = spawnSync("openssl", ["x509", "-noout", "-text"], { input: outputs.certificateAuthorityPem, encoding: "utf8" }).stdout;
        assert.match(text, /X509v3 Basic Constraints: critical\n\s*CA:TRUE\n/, text);
        assert.doesNotMatch(text, /pathlen/, "no path length, as the docs say");
        assert.ok(served.verify(ca.publicKey), "the served certificate is signed by the authority");
        assert.equal(served.checkHost(serverName), serverName);
        assert.equal(outputs.certificateAuthoritySha256, ca.fingerprint256);
        const days = (Date.parse(served.validTo) - Date.parse(served.validFrom)) / 86_400_000;
        assert.ok(days > 396 && days < 398, `397 days with an authority (${days})`);
        const state = stack.ok(["stack", "export"]).stdout;
        for (const password of Object.values(PASSWORDS)) assert.ok(!state.includes(password), "no password in clear in the state");
        assert.ok(!state.includes("PRIVATE KEY"), "no private key in clear in the state");
        const hashes = hostOk(name, "stat -c '%a %U:%G' /etc/dovecot/pulumi-postfix.passwd && cat /etc/dovecot/pulumi-postfix.passwd");
        assert.match(hashes, /^640 root:dovecot$/m);
        assert.match(hashes, /^alice:\{SHA512-CRYPT\}\$6\$[^:\s]+$/m);
        for (const password of Object.values(PASSWORDS)) {
            assert.equal(hostOk(name, `grep -rlF ${JSON.stringify(password)} /etc /var/log /var/lib/pulumi-postfix || true`).trim(), "", "no password in clear on the host");
        }
    });

    test("a mail program that checks chain and name logs in on 587 from outside the trusted networks and sends; mail arrives", async () => {
        const subject = `python ${randomUUID()}`;
        const sent = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("alice@e2e.test", "fribeiro@e2e.test", subject)]);
        assert.deepEqual([sent.stage, sent.error], ["done", undefined], JSON.stringify(sent));
        assert.equal(sent.auth_before_starttls, false, "no AUTH before STARTTLS");
        assert.equal(sent.tls, "TLSv1.3");
        await delivered("fribeiro", subject);
        // And to an outside address: relayed for a logged-in user (held on the host, never delivered).
        const outside = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("alice@e2e.test", "someone@example.invalid", `out ${randomUUID()}`)]);
        assert.equal(outside.stage, "done", JSON.stringify(outside));
    });

    test("587: AUTH is offered only after STARTTLS, and mail is refused before it", () => {
        const plain = swaks(address, guest, ["--ehlo", "laptop.e2e.test", "--quit-after", "EHLO"], 587);
        const features = replies(plain).join("\n");
        assert.match(features, /^250-STARTTLS$/m, plain.transcript);
        assert.doesNotMatch(features, /AUTH/, plain.transcript);
        const mailBeforeTls = swaks(address, guest, ["--ehlo", "laptop.e2e.test", "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--quit-after", "MAIL"], 587);
        assert.ok(replies(mailBeforeTls).some((l) => /^530 5\.7\.0 Must issue a STARTTLS command first/.test(l)), mailBeforeTls.transcript);
        const afterTls = swaks(address, guest, ["--ehlo", "laptop.e2e.test", "--tls", "--quit-after", "EHLO"], 587);
        assert.ok(replies(afterTls).some((l) => /^250-AUTH PLAIN LOGIN$/.test(l)), afterTls.transcript);
    });

    test("a wrong password is refused, and only after a delay; the right one is quick", () => {
        // Each timed from the AUTH command to the server's answer, by the same client, so that
        // the machine's speed (start-up, TLS) is in neither figure.
        const right = python(587, laptop, loginOnce("fribeiro", PASSWORDS.fribeiro));
        assert.equal(right.stage, "done", JSON.stringify(right));
        const once = python(587, guest, loginOnce("alice", "not alice's password"));
        assert.equal(once.stage, "login");
        assert.match(once.error ?? "", /^535 5\.7\.8 Error: authentication failed/);
        // Dovecot answers a failure after auth_failure_delay (2 s), from a timer that fires every
        // half of it: 1.5 s measured; at least a second later than a success is the claim.
        assert.ok(once.login_seconds! - right.login_seconds! >= 1, `a failure is answered later than a success (${once.login_seconds} s, ${right.login_seconds} s)`);
        // Python's smtplib tries PLAIN, then LOGIN: two failures, each slowed, the second one more
        // (Dovecot slows every login from an address that just failed).
        const wrong = python(587, guest, login("alice", "not alice's password at all"));
        assert.equal(wrong.stage, "login");
        assert.match(wrong.error ?? "", /^535 5\.7\.8 Error: authentication failed/);
        assert.ok(wrong.login_seconds! >= 2 * once.login_seconds!, `two slowed failures: ${wrong.login_seconds} s`);
        console.log(`# mail clients: a wrong password answered after ${once.login_seconds} s (one AUTH PLAIN), Python's two tries after ${wrong.login_seconds} s, the right one after ${right.login_seconds} s`);
    });

    test("a user sends only as their own addresses (their aliases included), never as another user", () => {
        const other = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("fribeiro@e2e.test", "alice@e2e.test", "impostor")]);
        assert.match(other.error ?? "", /^553 5\.7\.1 <fribeiro@e2e\.test>: Sender address rejected: not owned by user alice/, JSON.stringify(other));
        const foreign = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("alice@example.invalid", "fribeiro@e2e.test", "foreign")]);
        assert.match(foreign.error ?? "", /^553 5\.7\.1 <alice@example\.invalid>: Sender address rejected: not owned by user alice/, JSON.stringify(foreign));
        // The null sender, which reject_sender_login_mismatch skips: refused whatever the From: says.
        const bounce = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("", "fribeiro@e2e.test", "null sender"), "--header-from", "boss@e2e.test"]);
        assert.match(bounce.error ?? "", /^554 5\.7\.1 <>: Sender address rejected: Access denied/, JSON.stringify(bounce));
        // The From: header too (sender-check.py): her own envelope with another user's From: is
        // refused at the end of the headers, and a user is never the other, whatever the envelope.
        const header = python(587, desk, [...login("alice", PASSWORDS.alice), ...mail("alice@e2e.test", "fribeiro@e2e.test", "header"), "--header-from", "fribeiro@e2e.test"]);
        assert.match(header.error ?? "", /^550 5\.7\.1 From: <fribeiro@e2e\.test> is not an address of alice: a login sends only as its own addresses/, JSON.stringify(header));
        const boss = python(587, desk, [...login("alice", PASSWORDS.alice), ...mail("alice@e2e.test", "fribeiro@e2e.test", "boss"), "--header-from", "boss@e2e.test"]);
        assert.match(boss.error ?? "", /^550 5\.7\.1 From: <boss@e2e\.test> is not an address of alice/, JSON.stringify(boss));
        const asAlice = python(587, desk, [...login("fribeiro", PASSWORDS.fribeiro), ...mail("fribeiro@e2e.test", "alice@e2e.test", "as alice"), "--header-from", "alice@e2e.test"]);
        assert.match(asAlice.error ?? "", /^550 5\.7\.1 From: <alice@e2e\.test> is not an address of fribeiro/, JSON.stringify(asAlice));
        const envelopeAsAlice = python(587, desk, [...login("fribeiro", PASSWORDS.fribeiro), ...mail("alice@e2e.test", "alice@e2e.test", "as alice")]);
        assert.match(envelopeAsAlice.error ?? "", /^553 5\.7\.1 <alice@e2e\.test>: Sender address rejected: not owned by user fribeiro/, JSON.stringify(envelopeAsAlice));
        // postmaster -> root -> fribeiro: mail to postmaster reaches fribeiro, who may send as it.
        const alias = python(587, laptop, [...login("fribeiro", PASSWORDS.fribeiro), ...mail("postmaster@e2e.test", "alice@e2e.test", `alias ${randomUUID()}`)]);
        assert.equal(alias.stage, "done", JSON.stringify(alias));
    });

    test("without a login nobody sends on 587 (not even to a local user), and port 25 serves only the trusted networks", () => {
        const anonymous = python(587, guest, mail("alice@e2e.test", "fribeiro@e2e.test", "anonymous"));
        assert.match(anonymous.error ?? "", /^554 5\.7\.1 .*Client host rejected: Access denied/, JSON.stringify(anonymous));
        const relay = swaks(address, guest, ["--ehlo", "laptop.e2e.test", "--from", "x@example.invalid", "--to", "y@example.invalid", "--quit-after", "RCPT"]);
        assert.ok(replies(relay).some((l) => /^554 5\.7\.1 .*Client host rejected/.test(l)), relay.transcript);
    });

    test("password guessing is limited: after 10 AUTH commands a minute, a client address is turned away", () => {
        const attempts = Array.from({ length: 11 }, () => swaks(address, guesser, [
            "--ehlo", "laptop.e2e.test", "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORDS.alice, "--quit-after", "AUTH",
        ], 587));
        const lines = attempts.map((a) => replies(a).find((l) => /^(235|4\d\d) /.test(l)) ?? replies(a).join(" | "));
        assert.deepEqual(lines.slice(0, 10).map((l) => l.slice(0, 3)), Array(10).fill("235"), lines.join("\n"));
        assert.match(lines[10], /^4\d\d .*too many AUTH commands/i, lines[10]);
        // Another address is not affected.
        assert.equal(python(587, guest, login("alice", PASSWORDS.alice)).stage, "done");
    });

    test("a TLS scan of 25 and 587: TLS 1.2 and 1.3 only, forward secrecy only, no anonymous, NULL, export, RC4 or 3DES suite", () => {
        for (const port of [25, 587]) {
            const { protocols, suites } = scan(port);
            assert.deepEqual(protocols, { SSLv2: false, SSLv3: false, "TLSv1.0": false, "TLSv1.1": false, "TLSv1.2": true, "TLSv1.3": true }, `port ${port}`);
            assert.ok(suites.length > 0, `port ${port}: suites were scanned`);
            for (const suite of suites) {
                assert.doesNotMatch(suite.name, /ADH|AECDH|NULL|EXP|RC4|DES|MD5|anon/, `port ${port}: ${suite.name}`);
                if (suite.protocol === "TLSv1.2") assert.match(suite.name, /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM|CHACHA20-POLY1305)/, `port ${port}: ${suite.name} (forward secret AEAD)`);
                // Curves of 253 bits (X25519) and more; no finite-field group below 2048 bits.
                const bits = /(?:Curve \S+|DHE) (\d+)/.exec(suite.kex)?.[1];
                if (/DHE \d+/.test(suite.kex) && !/Curve/.test(suite.kex)) assert.ok(Number(bits) >= 2048, `port ${port}: ${suite.name} ${suite.kex}`);
            }
            const tls12 = suites.filter((s) => s.protocol === "TLSv1.2").length;
            console.log(`# mail clients: sslscan ${address}:${port}: ${suites.length} suites accepted (${suites.length - tls12} TLS 1.3, ${tls12} TLS 1.2), 0 anonymous, 0 without forward secrecy`);
        }
    });

    test("other TLS stacks connect and verify: OpenSSL (s_client), GnuTLS (gnutls-cli), Node (npm run verify)", () => {
        const openssl = spawnSync("openssl", ["s_client", "-starttls", "smtp", "-connect", `${address}:587`, "-CAfile", caFile, "-verify_hostname", serverName, "-verify_return_error", "-brief"], { input: "", encoding: "utf8" });
        assert.match(openssl.stdout + openssl.stderr, /Verification: OK/, openssl.stdout + openssl.stderr);
        const gnutls = spawnSync("gnutls-cli", ["--starttls-proto=smtp", "--port=587", `--x509cafile=${caFile}`, `--verify-hostname=${serverName}`, address], { input: "", encoding: "utf8", timeout: 30_000 });
        assert.match(gnutls.stdout + gnutls.stderr, /The certificate is trusted/, gnutls.stdout + gnutls.stderr);
        const report = stack.verify(address);
        assert.equal(report.failed, 0, JSON.stringify(report.servers[0].checks.filter((c) => !c.ok)));
        const check = report.servers[0].checks.find((c) => c.name === "tls certificate")!;
        assert.match(check.detail, /^from the stack's certificate authority \(E2E mail CA\), for mx\.e2e\.test, valid until /);
    });

    test("a forced renewal: a new certificate, the same mail program keeps sending with nothing changed on it", async () => {
        const before = stack.outputs().mailServers.mx.certificateSha256;
        const pid = masterPid(name);
        ageCertificate(stack, "tls:index/locallySignedCert:LocallySignedCert::mx-tls-cert", 1);
        stack.up();
        const after = stack.outputs().mailServers.mx.certificateSha256;
        assert.notEqual(after, before, "a new certificate");
        assert.equal(new X509Certificate(hostOk(name, "cat /etc/ssl/certs/server.crt")).fingerprint256, after);
        assert.equal(masterPid(name), pid, "a reload was enough");
        const subject = `renewed ${randomUUID()}`;
        const sent = python(587, laptop, [...login("alice", PASSWORDS.alice), ...mail("alice@e2e.test", "fribeiro@e2e.test", subject)]);
        assert.equal(sent.stage, "done", JSON.stringify(sent));
        await delivered("fribeiro", subject);
        assert.equal(readFileSync(caFile, "utf8"), stack.outputs().certificateAuthorityPem, "the authority did not change");
    });

    test("a changed password works on the next up and nothing else moves; a removed one logs in no more", () => {
        const pid = masterPid(name);
        const lifeEvents = postfixLifeEvents();
        assert.ok(Number(lifeEvents) > 0, "the master's start and the renewal's reload are in the log: the count below can move");
        const mainCf = hostOk(name, "stat -c %Y /etc/postfix/main.cf");
        const changed = "alice's new mail password";
        stack.setSecret("postfix:mailPasswords.alice", changed);
        const planned = stack.plannedChanges();
        assert.deepEqual(Object.keys(planned).filter((step) => step !== "mx-ssh-reachable").sort(), ["mx-mail-passwords"], JSON.stringify(planned));
        stack.up();
        assert.match(python(587, laptop, login("alice", PASSWORDS.alice)).error ?? "", /^535 /, "the old password is refused");
        assert.equal(python(587, laptop, login("alice", changed)).stage, "done", "the new one works");
        stack.removeSecret("postfix:mailPasswords.fribeiro");
        stack.up();
        assert.match(python(587, laptop, login("fribeiro", PASSWORDS.fribeiro)).error ?? "", /^535 /, "fribeiro logs in no more");
        assert.doesNotMatch(hostOk(name, "cat /etc/dovecot/pulumi-postfix.passwd"), /^fribeiro:/m);
        assert.equal(masterPid(name), pid, "postfix was not restarted");
        assert.equal(postfixLifeEvents(), lifeEvents, "postfix was neither reloaded nor restarted (its master logged no reload or start)");
        assert.equal(hostOk(name, "stat -c %Y /etc/postfix/main.cf"), mainCf, "main.cf unchanged");
    });

    test("the same mail program refuses a server whose certificate is not from the authority: the password is never sent", () => {
        stack.configure(config({ authority: false }));
        stack.up();
        const refused = python(587, laptop, [...login("alice", "alice's new mail password"), ...mail("alice@e2e.test", "fribeiro@e2e.test", "self-signed")]);
        assert.equal(refused.stage, "starttls", JSON.stringify(refused));
        assert.match(refused.error ?? "", /CERTIFICATE_VERIFY_FAILED/);
        assert.equal(stack.outputs().certificateAuthorityPem, undefined);
    });
});
