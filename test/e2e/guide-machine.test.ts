// The guide's whole machine: its reader runs, on the same Debian 12 server, the IMAP server of the
// guide's 5.1.1 (Dovecot from dovecot-imapd, system users and passwords, ~/Maildir) with the
// certificate of its 3.5.1. A stack with port 587 must leave that IMAP working, and pulumi destroy
// must leave the machine as it was: dovecot-imapd installed, the 3.5.1 key and certificate byte for
// byte. A Debian 12 chroot (Dovecot without systemd), and a Debian 13 host booted with systemd,
// both prepared the guide's way. Loopback only; outbound mail is held on the host.
// Runs alone: the Debian 13 host is booted with systemd: its packages start Dovecot and postfix on every address.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { mxConfig } from "./support/config";
import { describeChange } from "../../components/core/changes";
import { hostDown, hostOk, hostReboot, hostSh, HostInfo, hostUp, sshLogins } from "./support/host";
import { Stack } from "./support/pulumi";

const name = "imap-guide";
const subnet = "127.0.28";
const address = `${subnet}.2`;
const serverName = "mx.e2e.test";
// A laptop outside the trusted networks.
const outsider = "127.0.99.28";
const READER_PASSWORD = "fribeiro-system-password-5.1.1";
const ALICE_PASSWORD = "alice sends with the stack's password";
const FRIBEIRO_PASSWORD = "fribeiro's stack password";
const KEY = "/etc/ssl/private/server.key.insecure";
const CERT = "/etc/ssl/certs/server.crt";
const stack = new Stack(name);
const work = mkdtempSync(join(tmpdir(), "pulumi-postfix-guide-"));
const readerCa = join(work, "reader-server.crt");
const stackCa = join(work, "stack-server.crt");
let host: HostInfo;

/**
 * The guide's 3.5.1 and 5.1.1 by hand: a self-signed certificate at its paths, Dovecot's IMAP from
 * dovecot-imapd with ~/Maildir and that certificate, a system user with a password and a message
 * in their Maildir. The reader's Dovecot listens on the server's LAN address only.
 */
const GUIDE = `
set -eu
DEBIAN_FRONTEND=noninteractive apt-get install -q -y dovecot-imapd >/tmp/guide-apt.log 2>&1 || { cat /tmp/guide-apt.log >&2; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj '/CN=${serverName}' -addext 'subjectAltName=DNS:${serverName}' \\
    -keyout ${KEY} -out ${CERT} 2>/dev/null
chmod 600 ${KEY}
sed -i 's|^mail_location = .*|mail_location = maildir:~/Maildir|' /etc/dovecot/conf.d/10-mail.conf
sed -i 's|^ssl_cert = .*|ssl_cert = <${CERT}|; s|^ssl_key = .*|ssl_key = <${KEY}|' /etc/dovecot/conf.d/10-ssl.conf
echo 'listen = ${address}' >/etc/dovecot/local.conf
useradd --create-home --shell /bin/bash fribeiro
printf '%s\\n' 'fribeiro:${READER_PASSWORD}' | chpasswd
mkdir -p /home/fribeiro/Maildir/cur /home/fribeiro/Maildir/new /home/fribeiro/Maildir/tmp
printf 'From: root@e2e.test\\nSubject: from the guide\\n\\nread over IMAP\\n' >/home/fribeiro/Maildir/new/1.guide
chown -R fribeiro: /home/fribeiro/Maildir
# Not holding the caller's pipe: the daemon would keep it open.
dovecot </dev/null >/dev/null 2>&1
`;

const config = (options: Record<string, unknown> = {}) => mxConfig({
    host, subnet,
    options: { "postfix:trustedNetworks": [`${address}/32`], "postfix:submission": true, ...options },
});

interface ImapResult {
    stage: string; error?: string; tls?: string; capabilities?: string[]; capabilities_before_tls?: string[];
    login_seconds?: number; fetch_seconds?: number; found?: number; headers?: string;
}

/** Python's imaplib with ssl.create_default_context(cafile), from outside the trusted networks. */
function imap(mode: "imaps" | "starttls" | "plain", cafile: string, user: string, password: string, subject?: string): ImapResult {
    const port = mode === "imaps" ? 993 : 143;
    const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "imap-client.py"), address, String(port), serverName, outsider, cafile, mode,
        "--login", user, password, ...(subject ? ["--subject", subject] : [])], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as ImapResult;
}
/** Python's smtplib on 587 (test/e2e/support/mail-client.py), from outside the trusted networks. */
function submit(cafile: string, user: string, password: string, to?: string, subject?: string): { stage: string; error?: string } {
    const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), address, "587", serverName, outsider, cafile,
        "--login", user, password, ...(to ? ["--from", `${user}@e2e.test`, "--to", to, "--subject", subject ?? "guide machine"] : [])], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
}
/** `npm run verify -- --changes`, one line per change as it prints them. */
const plannedForUsers = () => (stack.changes().servers[0].changes ?? []).map((c) => `${c.file}: ${describeChange(c)}`);
const sha256 = (path: string) => hostOk(name, `sha256sum ${path}`).split(" ")[0];
const installed = (pkg: string) => hostSh(name, `dpkg-query -W -f '\${Status}' ${pkg} 2>/dev/null | grep -q '^install ok installed$'`).status === 0;

/** What sslscan sees on 993 (TLS from the first byte): protocols and accepted suites. */
function scan993(): { protocols: Record<string, boolean>; suites: Array<{ protocol: string; name: string }> } {
    const r = spawnSync("sslscan", ["--no-colour", "--no-heartbleed", "--no-compression", "--no-fallback", "--no-renegotiation", `${address}:993`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const protocols = Object.fromEntries([...r.stdout.matchAll(/^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)$/gm)].map((m) => [m[1], m[2] === "enabled"]));
    const suites = [...r.stdout.matchAll(/^(?:Preferred|Accepted)\s+(TLSv1\.[0-3])\s+\d+ bits\s+(\S+)/gm)].map((m) => ({ protocol: m[1], name: m[2] }));
    return { protocols, suites };
}

describe("the guide's whole machine (Debian 12): its IMAP server and certificate survive port 587 and pulumi destroy; with imap the stack serves IMAP", { timeout: 20 * 60_000 }, () => {
    let guideFiles: Record<string, string>;

    before(() => {
        host = hostUp(name, "bookworm", address);
        hostOk(name, GUIDE);
        writeFileSync(readerCa, hostOk(name, `cat ${CERT}`));
        guideFiles = Object.fromEntries([KEY, CERT, "/etc/dovecot/dovecot.conf", "/etc/dovecot/conf.d/10-auth.conf"].map((path) => [path, sha256(path)]));
        stack.init(config());
        stack.setSecret("postfix:mailPasswords.alice", ALICE_PASSWORD);
    });
    after(() => {
        stack.remove();
        hostDown(name);
        rmSync(work, { recursive: true, force: true });
    });

    test("before pulumi up: the reader reads their mail over IMAPS with their system password", () => {
        const read = imap("imaps", readerCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
    });

    test("pulumi up with submission: the reader's IMAP works as before, 587 takes the stack's passwords only", () => {
        // The adoption's preview: the component's Dovecot file comes, the reader's certificate is kept; nothing changes for IMAP's users.
        const listed = plannedForUsers();
        assert.ok(listed.some((c) => c.startsWith(`${CERT}: ~ CN=${serverName}, SHA-256 `) && c.endsWith("pulumi destroy puts it back)")), listed.join("\n"));
        assert.ok(!listed.some((c) => c.startsWith("dovecot: ")), listed.join("\n"));
        const up = stack.up();
        console.log(`# guide machine: pulumi up with submission onto the guide's machine took ${up.seconds.toFixed(1)} s`);
        writeFileSync(stackCa, stack.outputs().mailServers.mx.certificatePem);
        // Debian's files as the reader left them; the component's additions in a conf.d file of their own.
        assert.equal(sha256("/etc/dovecot/dovecot.conf"), guideFiles["/etc/dovecot/dovecot.conf"], "dovecot.conf untouched");
        assert.equal(sha256("/etc/dovecot/conf.d/10-auth.conf"), guideFiles["/etc/dovecot/conf.d/10-auth.conf"]);
        assert.match(hostOk(name, "cat /etc/dovecot/conf.d/99-pulumi-postfix.conf"), /^protocol smtp \{$/m);
        assert.equal(hostOk(name, "doveconf -h protocols").trim(), "imap", "no protocol added");
        // The 3.5.1 paths now hold the stack's certificate (Postfix and the reader's IMAP serve it); the reader's are kept.
        assert.notEqual(sha256(CERT), guideFiles[CERT]);
        const read = imap("imaps", stackCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
        const starttls = imap("starttls", stackCa, "fribeiro", READER_PASSWORD);
        assert.equal(starttls.stage, "done", JSON.stringify(starttls));
        // Port 587: the stack's password logs in; a system password does not (Debian's PAM is not asked for 587).
        const subject = `sent on 587 ${randomUUID()}`;
        assert.equal(submit(stackCa, "alice", ALICE_PASSWORD, "fribeiro@e2e.test", subject).stage, "done");
        assert.match(submit(stackCa, "fribeiro", READER_PASSWORD).error ?? "", /^535 /, "a system password is refused on 587");
        // The reader reads what alice sent, with their own IMAP.
        hostOk(name, `for i in $(seq 1 60); do grep -lq 'Subject: ${subject}' /home/fribeiro/Maildir/new/* 2>/dev/null && exit 0; sleep 0.5; done; exit 1`);
        const sent = imap("imaps", stackCa, "fribeiro", READER_PASSWORD, subject);
        assert.equal(sent.found, 1, JSON.stringify(sent));
    });

    test("pulumi destroy: dovecot-imapd stays, the 3.5.1 key and certificate are back byte for byte, the reader's IMAP serves them", () => {
        stack.ok(["destroy", "--yes", "--skip-preview"]);
        assert.ok(installed("dovecot-imapd"), "dovecot-imapd is still installed");
        assert.ok(installed("dovecot-core"), "and the Dovecot it needs");
        assert.ok(!installed("postfix"), "postfix, which the component installed, is removed");
        for (const path of [KEY, CERT, "/etc/dovecot/dovecot.conf"]) assert.equal(sha256(path), guideFiles[path], path);
        assert.equal(hostOk(name, "stat -c '%a %U' " + KEY).trim(), "600 root");
        assert.notEqual(hostSh(name, "test -e /etc/dovecot/conf.d/99-pulumi-postfix.conf").status, 0, "the component's conf.d file is gone");
        assert.notEqual(hostSh(name, "test -e /etc/dovecot/pulumi-postfix.passwd").status, 0, "and its password hashes");
        const read = imap("imaps", readerCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
    });

    test("pulumi up with imap on the same machine: the stack takes IMAP over (993 and 143 after STARTTLS), with port 587's passwords", async () => {
        stack.configure(config({ "postfix:imap": true }));
        stack.setSecret("postfix:mailPasswords.fribeiro", FRIBEIRO_PASSWORD);
        // The preview says, before anything happens, what changes for the people who read mail here.
        const listed = plannedForUsers();
        console.log(listed.filter((line) => !line.startsWith("/etc/postfix/") && !line.startsWith("/etc/dovecot/conf.d/"))
            .map((line) => `# guide machine, verify --changes before imap: ${line}`).join("\n"));
        assert.ok(listed.includes("dovecot: IMAP logins: ~ the host's accounts and passwords (passdb pam)  ->  the stack's mailPasswords only (alice, fribeiro); "
            + "other accounts can no longer read mail over IMAP"), listed.join("\n"));
        const up = stack.up();
        console.log(`# guide machine: pulumi up with imap took ${up.seconds.toFixed(1)} s`);
        writeFileSync(stackCa, stack.outputs().mailServers.mx.certificatePem);
        assert.equal(hostOk(name, "doveconf -h listen").trim(), address, "IMAP listens on the listen addresses only");
        // The deploy check read IMAP's greeting too.
        const resources = JSON.parse(stack.ok(["stack", "export"]).stdout).deployment.resources as Array<{ urn: string; outputs?: { stdout?: string } }>;
        const service = resources.find((r) => r.urn.endsWith("::mx-service"))?.outputs?.stdout ?? "";
        assert.ok(service.includes(`${address}:143`), service);
        // alice sends through 587 with smtplib; fribeiro reads it with imaplib on 993, then on 143 after STARTTLS.
        const subject = `read over imap ${randomUUID()}`;
        assert.equal(submit(stackCa, "alice", ALICE_PASSWORD, "fribeiro@e2e.test", subject).stage, "done");
        hostOk(name, `for i in $(seq 1 60); do grep -lq 'Subject: ${subject}' /home/fribeiro/Maildir/new/* 2>/dev/null && exit 0; sleep 0.5; done; exit 1`);
        const imaps = imap("imaps", stackCa, "fribeiro", FRIBEIRO_PASSWORD, subject);
        assert.deepEqual([imaps.stage, imaps.error, imaps.found, imaps.tls], ["done", undefined, 1, "TLSv1.3"], JSON.stringify(imaps));
        assert.match(imaps.headers ?? "", /^From: .*alice@e2e\.test/m);
        const starttls = imap("starttls", stackCa, "fribeiro", FRIBEIRO_PASSWORD, subject);
        assert.deepEqual([starttls.stage, starttls.found], ["done", 1], JSON.stringify(starttls));
        assert.ok(starttls.capabilities_before_tls?.includes("LOGINDISABLED"), JSON.stringify(starttls));
        assert.ok(starttls.capabilities_before_tls?.includes("STARTTLS"));
        console.log(`# guide machine: IMAP login ${imaps.login_seconds} s, search and fetch ${imaps.fetch_seconds} s (993); login ${starttls.login_seconds} s (143 after STARTTLS)`);
        // The reader's system password is no longer the IMAP password: the stack's is.
        assert.match(imap("imaps", stackCa, "fribeiro", READER_PASSWORD).error ?? "", /AUTHENTICATIONFAILED|Authentication failed/);
    });

    test("imap: LOGIN before STARTTLS refused; a wrong password refused, and slowed", () => {
        const plain = imap("plain", stackCa, "alice", ALICE_PASSWORD);
        assert.equal(plain.stage, "login", JSON.stringify(plain));
        assert.match(plain.error ?? "", /LOGINDISABLED|disabled|Plaintext authentication disallowed/i, JSON.stringify(plain));
        const wrong = imap("imaps", stackCa, "alice", "not alice's password at all");
        assert.equal(wrong.stage, "login");
        assert.match(wrong.error ?? "", /AUTHENTICATIONFAILED|Authentication failed/, JSON.stringify(wrong));
        assert.ok(wrong.login_seconds! >= 1.5, `slowed: ${wrong.login_seconds} s (Dovecot answers a failure after 2 s)`);
        console.log(`# guide machine: a wrong IMAP password answered after ${wrong.login_seconds} s`);
    });

    test("imap: other clients verify the certificate by name: curl imaps:// with --cacert, openssl s_client -starttls imap", () => {
        const subject = "from the guide";
        const curl = spawnSync("curl", ["-sS", "--cacert", stackCa, "--resolve", `${serverName}:993:${address}`, "--interface", outsider,
            "--user", `fribeiro:${FRIBEIRO_PASSWORD}`, `imaps://${serverName}/INBOX`, "-X", `SEARCH SUBJECT "${subject}"`], { encoding: "utf8", timeout: 60_000 });
        assert.equal(curl.status, 0, curl.stderr);
        assert.match(curl.stdout, /^\* SEARCH \d+/m, curl.stdout);
        const openssl = spawnSync("openssl", ["s_client", "-starttls", "imap", "-connect", `${address}:143`, "-CAfile", stackCa, "-verify_hostname", serverName,
            "-verify_return_error", "-brief"], { input: "a LOGOUT\r\n", encoding: "utf8", timeout: 60_000 });
        assert.match(openssl.stdout + openssl.stderr, /Verification: OK/, openssl.stdout + openssl.stderr);
    });

    test("imap: a TLS scan of 993: TLS 1.2 and 1.3 only, no anonymous suite, every TLS 1.2 suite ECDHE with AEAD", () => {
        const { protocols, suites } = scan993();
        assert.deepEqual(protocols, { SSLv2: false, SSLv3: false, "TLSv1.0": false, "TLSv1.1": false, "TLSv1.2": true, "TLSv1.3": true });
        assert.ok(suites.length > 0);
        for (const suite of suites) {
            assert.doesNotMatch(suite.name, /ADH|AECDH|NULL|EXP|RC4|DES|MD5|anon/, suite.name);
            if (suite.protocol === "TLSv1.2") assert.match(suite.name, /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM|CHACHA20-POLY1305)/, suite.name);
        }
        const tls12 = suites.filter((s) => s.protocol === "TLSv1.2").length;
        console.log(`# guide machine: sslscan ${address}:993: ${suites.length} suites accepted (${suites.length - tls12} TLS 1.3, ${tls12} TLS 1.2)`);
    });

    test("imap: a changed password takes effect on the next up, for reading and sending alike", () => {
        const changed = "alice's new password for both";
        stack.setSecret("postfix:mailPasswords.alice", changed);
        stack.up();
        assert.match(imap("imaps", stackCa, "alice", ALICE_PASSWORD).error ?? "", /AUTHENTICATIONFAILED|Authentication failed/, "the old one reads no more");
        assert.equal(imap("imaps", stackCa, "alice", changed).stage, "done");
        assert.match(submit(stackCa, "alice", ALICE_PASSWORD).error ?? "", /^535 /, "nor sends");
        assert.equal(submit(stackCa, "alice", changed).stage, "done");
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
        const logins = sshLogins(host);
        stack.up();
        assert.equal(sshLogins(host), logins, "a no-change pulumi up opens no SSH connection");
    });

    test("npm run verify checks IMAP: 993 with the stack's certificate, 143 with STARTTLS and LOGIN refused before it", () => {
        // From the server's own address, Dovecot takes a connection as secure (LOGIN allowed
        // before STARTTLS): verify says so and passes, without judging it.
        const own = stack.verify(address);
        assert.equal(own.failed, 0, JSON.stringify(own.servers[0].checks.filter((c) => !c.ok)));
        assert.match(own.servers[0].checks.find((c) => c.name === `imap ${address}:143`)!.detail, /the server's own address/);
        // From a laptop outside the trusted networks (the SMTP checks need a trusted address: only IMAP's are read).
        const report = stack.verify(outsider);
        const imapChecks = report.servers[0].checks.filter((c) => c.name.startsWith("imap "));
        assert.ok(imapChecks.every((c) => c.ok), JSON.stringify(imapChecks));
        assert.deepEqual(imapChecks.map((c) => c.name), [`imap ${address}:993`, `imap ${address}:143`]);
        assert.match(imapChecks[0].detail, /^TLSv1\.3, certificate [0-9A-F:]+$/);
        assert.match(imapChecks[1].detail, /^STARTTLS offered, LOGIN refused before it: (NO|BAD) /);
        // Broken on purpose: a LOGIN before STARTTLS allowed is a failed check.
        hostOk(name, "printf 'disable_plaintext_auth = no\\nssl = yes\\n' >/etc/dovecot/conf.d/99-zz-broken.conf && doveadm reload");
        try {
            const broken = stack.verify(outsider);
            const check = broken.servers[0].checks.find((c) => c.name === `imap ${address}:143`)!;
            assert.equal(check.ok, false, JSON.stringify(check));
        } finally {
            hostOk(name, "rm /etc/dovecot/conf.d/99-zz-broken.conf && doveadm reload");
        }
    });
});

// Debian 13 (Dovecot 2.4) booted with systemd, prepared the guide's way by hand as its reader would
// (dovecot-imapd, ~/Maildir, the 3.5.1 certificate), as a real server runs it: systemd is PID 1,
// so the component starts, reloads and restarts Dovecot and Postfix through systemctl, and the
// units Debian enabled bring them back after a reboot. The same checks as on Debian 12 for the
// reader (their IMAP, users and passwords; their key and certificate back after destroy), then the
// stack's IMAP on Dovecot 2.4.
describe("the guide's machine on Debian 13 (Dovecot 2.4) booted with systemd: submission, then imap, a reboot, then pulumi destroy", { timeout: 20 * 60_000 }, () => {
    const trixieName = "imap-trixie";
    const trixieAddress = `${subnet}.3`;
    const trixie = new Stack(trixieName);
    const trixieWork = mkdtempSync(join(tmpdir(), "pulumi-postfix-guide-13-"));
    const trixieCa = join(trixieWork, "server.crt");
    const trixieReaderCa = join(trixieWork, "reader-server.crt");
    let trixieHost: HostInfo;
    let readerFiles: Record<string, string>;
    const trixieImap = (mode: "imaps" | "starttls", cafile: string, user: string, password: string, subject?: string): ImapResult => {
        const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "imap-client.py"), trixieAddress, mode === "imaps" ? "993" : "143", serverName, outsider,
            cafile, mode, "--login", user, password, ...(subject ? ["--subject", subject] : [])], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout) as ImapResult;
    };
    const trixieSha = (path: string) => hostOk(trixieName, `sha256sum ${path}`).split(" ")[0];
    const trixieInstalled = (pkg: string) => hostSh(trixieName, `dpkg-query -W -f '\${Status}' ${pkg} 2>/dev/null | grep -q '^install ok installed$'`).status === 0;
    /** What systemd knows of dovecot.service: its main process, when it started, and how often systemctl reloaded it. */
    const dovecotUnit = () => {
        const show = Object.fromEntries(hostOk(trixieName, "systemctl show dovecot.service -p ActiveState -p MainPID -p ExecMainStartTimestampMonotonic")
            .trim().split("\n").map((line) => line.split("=", 2) as [string, string]));
        const reloads = Number(hostOk(trixieName, "journalctl --no-pager -o cat -u dovecot.service | grep -c '^Reloaded dovecot.service' || true").trim());
        const masterPid = hostSh(trixieName, "cat /run/dovecot/master.pid").stdout.trim();
        return { active: show.ActiveState, mainPid: show.MainPID, started: show.ExecMainStartTimestampMonotonic, reloads, masterPid };
    };

    // The guide's 5.1.1 and 3.5.1 on Dovecot 2.4: Debian 13 installs dovecot-imapd and starts it
    // (systemd runs the package's unit); the reader then points Debian's conf.d files at
    // ~/Maildir and the 3.5.1 certificate, with 2.4's names, and restarts it with systemctl.
    // The listen address comes first: test hosts share the machine's network, where Debian's
    // default (every address) finds 143 and 993 taken by other hosts and the package's start fails.
    const GUIDE_13 = `
set -eu
mkdir -p /etc/dovecot
echo 'listen = ${trixieAddress}' >/etc/dovecot/local.conf
DEBIAN_FRONTEND=noninteractive apt-get install -q -y dovecot-imapd >/tmp/guide-apt.log 2>&1 || { cat /tmp/guide-apt.log >&2; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj '/CN=${serverName}' -addext 'subjectAltName=DNS:${serverName}' \\
    -keyout ${KEY} -out ${CERT} 2>/dev/null
chmod 600 ${KEY}
sed -i 's|^mail_driver = .*|mail_driver = maildir|; s|^mail_path = .*|mail_path = %{home}/Maildir|; s|^mail_inbox_path = .*|mail_inbox_path = %{home}/Maildir|' /etc/dovecot/conf.d/10-mail.conf
sed -i 's|^ssl_server_cert_file = .*|ssl_server_cert_file = ${CERT}|; s|^ssl_server_key_file = .*|ssl_server_key_file = ${KEY}|' /etc/dovecot/conf.d/10-ssl.conf
useradd --create-home --shell /bin/bash fribeiro
printf '%s\\n' 'fribeiro:${READER_PASSWORD}' | chpasswd
mkdir -p /home/fribeiro/Maildir/cur /home/fribeiro/Maildir/new /home/fribeiro/Maildir/tmp
printf 'From: root@e2e.test\\nSubject: from the guide\\n\\nread over IMAP\\n' >/home/fribeiro/Maildir/new/1.guide
chown -R fribeiro: /home/fribeiro/Maildir
systemctl restart dovecot
`;

    const trixieConfig = (imap: boolean) => mxConfig({
        host: trixieHost, subnet, listenAddresses: [trixieAddress], ssh: { host: trixieAddress },
        options: { "postfix:trustedNetworks": [`${trixieAddress}/32`], "postfix:submission": true, "postfix:imap": imap },
    });
    const send = (subject: string) => {
        const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), trixieAddress, "587", serverName, outsider, trixieCa,
            "--login", "alice", ALICE_PASSWORD, "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--subject", subject], { encoding: "utf8" });
        assert.equal(JSON.parse(r.stdout).stage, "done", r.stdout + r.stderr);
        hostOk(trixieName, `for i in $(seq 1 60); do grep -lq 'Subject: ${subject}' /home/fribeiro/Maildir/new/* 2>/dev/null && exit 0; sleep 0.5; done; exit 1`);
    };
    const submitTrixie = (user: string, password: string) => {
        const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), trixieAddress, "587", serverName, outsider, trixieCa,
            "--login", user, password], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout) as { stage: string; error?: string };
    };

    before(() => {
        trixieHost = hostUp(trixieName, "trixie", trixieAddress, "boot");
        hostOk(trixieName, GUIDE_13);
        writeFileSync(trixieReaderCa, hostOk(trixieName, `cat ${CERT}`));
        readerFiles = Object.fromEntries([KEY, CERT, "/etc/dovecot/dovecot.conf", "/etc/dovecot/conf.d/10-auth.conf", "/etc/dovecot/conf.d/10-mail.conf"]
            .map((path) => [path, trixieSha(path)]));
        trixie.init(trixieConfig(false));
        trixie.setSecret("postfix:mailPasswords.alice", ALICE_PASSWORD);
        trixie.setSecret("postfix:mailPasswords.fribeiro", FRIBEIRO_PASSWORD);
    });
    after(() => {
        trixie.remove();
        hostDown(trixieName);
        rmSync(trixieWork, { recursive: true, force: true });
    });

    test("before pulumi up: systemd runs the reader's Dovecot 2.4, and they read their mail over IMAPS with their system password", () => {
        assert.equal(hostOk(trixieName, "cat /proc/1/comm").trim(), "systemd", "systemd is PID 1");
        assert.match(hostOk(trixieName, "dovecot --version"), /^2\.4\./);
        const unit = dovecotUnit();
        assert.deepEqual([unit.active, unit.mainPid], ["active", unit.masterPid], JSON.stringify(unit));
        const read = trixieImap("imaps", trixieReaderCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
    });

    test("submission on Dovecot 2.4: systemctl reloads the reader's Dovecot, their IMAP works as before, 587 takes the stack's passwords only", () => {
        const before = dovecotUnit();
        const up = trixie.up();
        console.log(`# guide machine: pulumi up with submission onto the guide's Debian 13 (systemd) took ${up.seconds.toFixed(1)} s`);
        writeFileSync(trixieCa, trixie.outputs().mailServers.mx.certificatePem);
        assert.match(up.stdout, /mx-service created .*\(dovecot reloaded\)/, up.stdout);
        // Reloaded by systemd (its ExecReload), not behind its back: the same main process, one more reload in the unit's journal.
        const after = dovecotUnit();
        assert.deepEqual([after.active, after.mainPid, after.started, after.reloads], ["active", before.mainPid, before.started, before.reloads + 1], JSON.stringify([before, after]));
        assert.equal(hostOk(trixieName, "systemctl is-active postfix.service").trim(), "active");
        assert.equal(trixieSha("/etc/dovecot/dovecot.conf"), readerFiles["/etc/dovecot/dovecot.conf"], "dovecot.conf untouched");
        assert.equal(trixieSha("/etc/dovecot/conf.d/10-auth.conf"), readerFiles["/etc/dovecot/conf.d/10-auth.conf"]);
        // Dovecot 2.4 prints protocols as a boolean list.
        assert.equal(hostOk(trixieName, "doveconf -h protocols").trim(), "imap = yes", "no protocol added");
        const read = trixieImap("imaps", trixieCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
        send(`587 on dovecot 2.4 ${randomUUID()}`);
        assert.match(submitTrixie("fribeiro", READER_PASSWORD).error ?? "", /^535 /, "a system password is refused on 587");
        // Postfix 3.10's spawn runs the From: rule too: alice's envelope with fribeiro's From: is refused.
        const r = spawnSync("python3", [join(REPO, "test", "e2e", "support", "mail-client.py"), trixieAddress, "587", serverName, outsider, trixieCa,
            "--login", "alice", ALICE_PASSWORD, "--from", "alice@e2e.test", "--to", "fribeiro@e2e.test", "--header-from", "fribeiro@e2e.test"], { encoding: "utf8" });
        assert.match(JSON.parse(r.stdout).error ?? "", /^550 5\.7\.1 From: <fribeiro@e2e\.test> is not an address of alice/, r.stdout + r.stderr);
    });

    test("then imap: systemctl restarts Dovecot on the stack's addresses; a message sent on 587 is read on 993 and on 143 after STARTTLS", () => {
        trixie.configure(trixieConfig(true));
        // The preview reads Dovecot 2.4's `doveconf -n` (protocols and passdb as blocks): the reader's PAM logins are named.
        const listed = (trixie.changes().servers[0].changes ?? []).map((c) => `${c.file}: ${describeChange(c)}`);
        assert.ok(listed.includes("dovecot: IMAP logins: ~ the host's accounts and passwords (passdb pam)  ->  the stack's mailPasswords only (alice, fribeiro); "
            + "other accounts can no longer read mail over IMAP"), listed.join("\n"));
        // As an earlier version of the component left it: dovecot.conf written whole, without conf.d.
        hostOk(trixieName, "printf '%s\\n' '# Managed by pulumi-postfix: local changes are overwritten on the next change.' "
            + "'dovecot_config_version = 2.4.0' 'dovecot_storage_version = 2.4.0' 'protocols =' >/etc/dovecot/dovecot.conf");
        const before = dovecotUnit();
        const up = trixie.up();
        hostOk(trixieName, "cmp /etc/dovecot/dovecot.conf /usr/share/dovecot/dovecot.conf");
        console.log(`# guide machine: pulumi up turning imap on (Debian 13, systemd) took ${up.seconds.toFixed(1)} s`);
        assert.match(up.stdout, /mx-service updated .*\(dovecot restarted\)/, up.stdout);
        // Restarted by systemd: a new main process, started later, which is Dovecot's master.
        const after = dovecotUnit();
        assert.equal(after.active, "active", JSON.stringify(after));
        assert.notEqual(after.mainPid, before.mainPid);
        assert.ok(Number(after.started) > Number(before.started), JSON.stringify([before, after]));
        assert.equal(after.mainPid, after.masterPid, "systemd's main process is Dovecot's master");
        const outputs = trixie.outputs().mailServers.mx;
        assert.equal(hostOk(trixieName, "doveconf -h listen").trim(), trixieAddress);
        const subject = `dovecot 2.4 ${randomUUID()}`;
        send(subject);
        const imaps = trixieImap("imaps", trixieCa, "fribeiro", FRIBEIRO_PASSWORD, subject);
        assert.deepEqual([imaps.stage, imaps.error, imaps.found], ["done", undefined, 1], JSON.stringify(imaps));
        const starttls = trixieImap("starttls", trixieCa, "fribeiro", FRIBEIRO_PASSWORD, subject);
        assert.deepEqual([starttls.stage, starttls.found], ["done", 1], JSON.stringify(starttls));
        assert.ok(starttls.capabilities_before_tls?.includes("LOGINDISABLED"), JSON.stringify(starttls));
        assert.match(trixieImap("imaps", trixieCa, "alice", "not alice's password at all").error ?? "", /AUTHENTICATIONFAILED|Authentication failed/);
        assert.match(trixieImap("imaps", trixieCa, "fribeiro", READER_PASSWORD).error ?? "", /AUTHENTICATIONFAILED|Authentication failed/, "the system password no longer reads");
        assert.match(outputs.thunderbirdAutoconfig, /<hostname>mx\.e2e\.test<\/hostname>\s*<port>993<\/port>\s*<socketType>SSL<\/socketType>/);
    });

    test("after a reboot: systemd starts postfix and Dovecot by itself; IMAP and 587 answer, nothing to plan", () => {
        const seconds = hostReboot(trixieName);
        console.log(`# guide machine: Debian 13 powered off and booted again: ${seconds.toFixed(1)} s until sshd answered`);
        // Until the boot has finished (running, or degraded when an unrelated unit failed): no clock involved.
        hostSh(trixieName, "systemctl is-system-running --wait");
        assert.equal(hostOk(trixieName, "systemctl is-enabled postfix.service dovecot.service").trim(), "enabled\nenabled");
        assert.equal(hostOk(trixieName, "systemctl is-active postfix.service dovecot.service").trim(), "active\nactive");
        hostOk(trixieName, "postfix status");
        const unit = dovecotUnit();
        assert.equal(unit.mainPid, unit.masterPid, JSON.stringify(unit));
        const subject = `after the reboot ${randomUUID()}`;
        send(subject);
        const imaps = trixieImap("imaps", trixieCa, "fribeiro", FRIBEIRO_PASSWORD, subject);
        assert.deepEqual([imaps.stage, imaps.error, imaps.found], ["done", undefined, 1], JSON.stringify(imaps));
        const preview = trixie.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
    });

    test("pulumi destroy: the reader's dovecot-imapd stays, the 3.5.1 key and certificate are back byte for byte, their IMAP serves them", () => {
        assert.doesNotMatch(hostOk(trixieName, "cat /var/lib/pulumi-postfix/installed-packages"), /^dovecot/m, "the reader's Dovecot is not the component's");
        const before = dovecotUnit();
        trixie.ok(["destroy", "--yes", "--skip-preview"]);
        assert.ok(trixieInstalled("dovecot-imapd"), "dovecot-imapd is still installed");
        assert.ok(trixieInstalled("dovecot-core"), "and the Dovecot it needs");
        assert.ok(!trixieInstalled("postfix"), "postfix, which the component installed, is removed");
        assert.notEqual(hostSh(trixieName, "test -e /usr/local/lib/pulumi-postfix").status, 0, "the From: rule's folder is gone");
        for (const path of [KEY, CERT, "/etc/dovecot/dovecot.conf", "/etc/dovecot/conf.d/10-mail.conf"]) assert.equal(trixieSha(path), readerFiles[path], path);
        assert.equal(hostOk(trixieName, "stat -c '%a %U' " + KEY).trim(), "600 root");
        assert.notEqual(hostSh(trixieName, "test -e /etc/dovecot/conf.d/99-pulumi-postfix.conf").status, 0, "the component's conf.d file is gone");
        assert.notEqual(hostSh(trixieName, "test -e /etc/dovecot/pulumi-postfix.passwd").status, 0, "and its password hashes");
        // Dovecot read its files again through systemd: the same unit runs.
        const after = dovecotUnit();
        assert.deepEqual([after.active, after.mainPid], ["active", after.masterPid], JSON.stringify([before, after]));
        const read = trixieImap("imaps", trixieReaderCa, "fribeiro", READER_PASSWORD, "from the guide");
        assert.deepEqual([read.stage, read.error, read.found], ["done", undefined, 1], JSON.stringify(read));
    });
});
