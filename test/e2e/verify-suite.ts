// `npm run verify` against a real deployment: all green after `pulumi up`, then the host is broken
// outside Pulumi, one way at a time, and the right check must fail with the right detail.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Check } from "../../components/core/checks";
import { hostDown, hostOk, HostInfo, hostUp } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";

export function verifySuite(suite: "bookworm" | "trixie", subnet: string): void {
    const name = `verify-${suite}`;
    const address = `${subnet}.2`;
    const stack = new Stack(name);
    let host: HostInfo;

    const config = () => mxConfig({ host, subnet });

    /** Runs the verify command as a user would, from a LAN address; returns its JSON report and the failed checks by name. */
    const verify = () => {
        const started = Date.now();
        const result = stack.verify(`${subnet}.50`, ["--send", "alice"]);
        const checks = result.servers[0].checks;
        const failures = Object.fromEntries(checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]));
        for (const c of checks.filter((c) => !c.ok)) console.log(`# ${suite}: ✗ ${c.name}  ${c.detail}`);
        return { result, checks, failures, seconds: (Date.now() - started) / 1000 };
    };
    /** Keeps main.cf, runs the breakage, reloads; `restore()` puts main.cf back and reloads. */
    const mainCfBackup = "/root/main.cf.verify-e2e";
    const breakMainCf = (...settings: string[]) => {
        hostOk(name, `cp -p /etc/postfix/main.cf ${mainCfBackup} && postconf -e ${settings.map((s) => `'${s}'`).join(" ")} && postfix reload`);
    };
    const restoreMainCf = () => hostOk(name, `cp -p ${mainCfBackup} /etc/postfix/main.cf && postfix reload`);

    describe(`npm run verify on a deployed Debian ${suite} host`, { timeout: 15 * 60_000 }, () => {
        before(() => {
            host = hostUp(name, suite, address);
            stack.init(config());
            stack.up();
        });
        after(() => {
            stack.remove();
            hostDown(name);
        });

        test("a fresh deployment passes every check, the test message is delivered", () => {
            const { result, checks, failures, seconds } = verify();
            console.log(`# ${suite}: verify took ${seconds.toFixed(1)} s: ${result.passed} passed, ${result.failed} failed`);
            assert.deepEqual(failures, {});
            const names = checks.map((c: Check) => c.name);
            for (const wanted of ["ssh", "postfix running", "postfix check", "main.cf drift", "aliases", "mailname", "virtual aliases", "tls key file", "tls cert file",
                "certificate expiry", "mail queue", "smtp banner", "starttls offered", "size limit", "no vrfy", "tls certificate", "rcpt postmaster",
                "rcpt unknown user", "send", "relay refused", "main.cf restored", "xclient removed", "delivery"]) {
                assert.ok(names.includes(wanted), `check ${wanted} in ${names.join(", ")}`);
            }
            const detail = (n: string) => checks.find((c) => c.name === n)!.detail;
            assert.match(detail("relay refused"), /^554 5\.7\.1 .*Client host rejected: Access denied/);
            assert.match(detail("rcpt unknown user"), /^550 5\.1\.1 </);
            assert.equal(detail("tls certificate"), stack.outputs().mailServers.mx.certificateSha256);
            assert.equal(hostOk(name, "postconf -n | grep -c smtpd_authorized_xclient_hosts || true").trim(), "0");
        });

        test("a certificate replaced outside Pulumi fails the certificate check", () => {
            const { tlsCert, tlsKey } = { tlsCert: "/etc/ssl/certs/server.crt", tlsKey: "/etc/ssl/private/server.key.insecure" };
            hostOk(name, `cp -p ${tlsCert} /root/crt.verify-e2e && cp -p ${tlsKey} /root/key.verify-e2e`);
            hostOk(name, `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=impostor -days 400 -keyout ${tlsKey} -out ${tlsCert} 2>/dev/null && chmod 600 ${tlsKey} && postfix reload`);
            try {
                const { failures } = verify();
                assert.deepEqual(Object.keys(failures), ["tls certificate"]);
                assert.match(failures["tls certificate"], /^expected ([0-9A-F]{2}:){31}[0-9A-F]{2}, seen ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
            } finally {
                hostOk(name, `cp -p /root/crt.verify-e2e ${tlsCert} && cp -p /root/key.verify-e2e ${tlsKey} && postfix reload`);
            }
        });

        test("a parameter changed outside Pulumi shows as drift and in EHLO SIZE", () => {
            breakMainCf("message_size_limit=1234");
            try {
                const { failures } = verify();
                assert.deepEqual(Object.keys(failures).sort(), ["main.cf drift", "size limit"]);
                assert.equal(failures["main.cf drift"], 'message_size_limit: expected "52428800", seen "1234"');
                assert.equal(failures["size limit"], "expected SIZE 52428800, seen SIZE 1234");
            } finally {
                restoreMainCf();
            }
        });

        test("a stopped postfix fails the running check, and the SMTP checks say why", () => {
            hostOk(name, "postfix stop 2>/dev/null");
            try {
                const { failures } = verify();
                assert.match(failures["postfix running"], /^expected running, seen .*not running/);
                for (const smtp of ["smtp banner", "starttls offered", "size limit", "tls certificate", "rcpt postmaster", "send"]) {
                    assert.match(failures[smtp] ?? "", new RegExp(`^cannot connect to ${address.replace(/\./g, "\\.")}:25: .*ECONNREFUSED`), smtp);
                }
                assert.match(failures["relay refused"], /postfix is not running/);
                assert.equal(failures["delivery"], "nothing was sent");
            } finally {
                hostOk(name, "postfix start 2>/dev/null");
            }
        });

        test("an open relay fails the relay check, and drift names the parameters", () => {
            // Not smtpd_recipient_restrictions=permit as well: with both relay lists only "permit",
            // smtpd refuses to start (fatal: ... specify at least one working instance of: reject_unauth_destination...).
            const open = ["smtpd_client_restrictions=permit", "smtpd_relay_restrictions=permit", "mynetworks=0.0.0.0/0"];
            breakMainCf(...open);
            try {
                const { failures } = verify();
                assert.match(failures["relay refused"], /^expected 5xx to an outside client relaying, seen 250 /);
                for (const parameter of ["smtpd_client_restrictions", "smtpd_relay_restrictions", "mynetworks"]) {
                    assert.match(failures["main.cf drift"], new RegExp(`${parameter}: expected "[^"]+", seen "(permit|0\\.0\\.0\\.0/0)"`));
                }
                assert.deepEqual(Object.keys(failures).sort(), ["main.cf drift", "relay refused"]);
            } finally {
                restoreMainCf();
            }
        });

        test("after the repairs every check passes again; an unreachable host fails with the reason", () => {
            assert.deepEqual(verify().failures, {});
            // Unreachable: nothing listens any more (the host folder, with the SSH key, stays).
            hostOk(name, 'postfix stop 2>/dev/null; kill "$(cat /run/sshd.pid)"');
            const { failures, seconds } = verify();
            console.log(`# ${suite}: verify of an unreachable host took ${seconds.toFixed(1)} s`);
            assert.match(failures.ssh, /ECONNREFUSED/);
            assert.match(failures["smtp banner"], /cannot connect/);
        });
    });
}
