// The end-to-end proof, per Debian release: the real `pulumi up` onto a fresh host, then the
// guide's manual checks done by real SMTP clients. Only loopback addresses are used; outbound
// mail is held (defer_transports = smtp) and outside domains are reserved `.invalid` names.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { eventually, hostDown, HostKind, hostOk, hostReboot, hostSh, HostInfo, hostUp, masterPid, sshLogins } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";
import { replies, starttlsFingerprint, swaks } from "./support/smtp";

/**
 * `user`: root, or the test host's `deploy` user, who has passwordless sudo. `kind`: a chroot, or
 * a booted host where systemd (PID 1) manages postfix, as on a real server; there the suite also
 * checks the units, what the journal says of reloads and restarts, and a reboot.
 */
export function deploySuite(suite: "bookworm" | "trixie", subnet: string, user: "root" | "deploy", kind: HostKind = "chroot"): void {
    const name = kind === "boot" ? `e2e-${suite}-systemd` : `e2e-${suite}`;
    const booted = kind === "boot";
    // The unit that runs the master: Debian 12 runs it as the instance postfix@- of the wrapper
    // postfix.service; Debian 13 (postfix 3.10) runs it as postfix.service itself.
    const masterUnit = suite === "bookworm" ? "postfix@-.service" : "postfix.service";
    const unitPattern = masterUnit.replace(/[.@-]/g, "\\$&");
    const address = `${subnet}.2`;
    const secondAddress = `${subnet}.3`;
    const lanClient = `${subnet}.50`;
    // Outside the stack's trusted network (127.x.y.0/24), still on this machine's loopback.
    const outsider = `127.0.99.${subnet.split(".")[2]}`;
    const stack = new Stack(name);
    let host: HostInfo;
    let firstUp = "";

    const config = (changes: { messageSizeLimit?: number; listenAddresses?: string[]; unsafe?: Record<string, string>; extra?: Record<string, string> } = {}) => mxConfig({
        host, subnet, user, listenAddresses: changes.listenAddresses, extraParameters: { ...changes.extra, ...changes.unsafe },
        options: { "postfix:messageSizeLimit": changes.messageSizeLimit ?? 52428800, "postfix:allowUnsafeOverrides": changes.unsafe !== undefined },
    });
    const ehlo = () => replies(swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]));
    const send = (to: string, subject: string) => swaks(address, lanClient, [
        "--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", to, "--header", `Subject: ${subject}`, "--body", "sent by the e2e suite",
    ]);

    /** systemd's own lines about postfix since `since` (a `journalctl --since` time). */
    const journal = (since: string) => hostOk(name, `journalctl --no-pager -o cat --since '${since}' -u postfix.service -u postfix@-.service`);
    const hostNow = () => hostOk(name, "date '+%Y-%m-%d %H:%M:%S'").trim();

    describe(`pulumi up onto a fresh Debian ${suite} host${booted ? " booted with systemd" : ""}, as ${user}`, { timeout: 15 * 60_000 }, () => {
        before(() => {
            host = hostUp(name, suite, address, kind);
            stack.init(config());
        });
        after(() => {
            stack.remove();
            hostSh(name, `ip addr del ${secondAddress}/32 dev lo`);
            hostDown(name);
        });

        test("the first pulumi up installs and configures postfix", () => {
            assert.notEqual(hostSh(name, "test -x /usr/sbin/postfix").status, 0, "no postfix before the deployment");
            const up = stack.up();
            firstUp = up.stdout + up.stderr;
            console.log(`# ${suite}: cold pulumi up took ${up.seconds.toFixed(1)} s, ${up.stdout.split("\n").length} lines of display`);
            assert.ok(masterPid(name), "postfix runs");
            // Each step says in a line what it did; apt's own output appears only when it fails.
            assert.match(up.stdout, /mx-install created .*postfix \S+ installed \(\d+ packages\), compatibility_level /);
            // Under systemd, Debian's install starts postfix, and the new listen addresses restart it.
            assert.match(up.stdout, new RegExp(`mx-service created .*postfix ${booted ? "restarted" : "started"}; checks passed: postfix running, 220 on `));
            assert.doesNotMatch(up.stdout, /Reading database|Unpacking |Setting up /, "apt's progress stays out of the display");
            if (booted) {
                assert.equal(hostOk(name, "cat /proc/1/comm").trim(), "systemd", "systemd is PID 1");
                assert.equal(hostOk(name, `systemctl is-active postfix.service ${masterUnit}`).trim(), "active\nactive");
                assert.equal(hostOk(name, "systemctl is-enabled postfix.service").trim(), "enabled", "postfix starts at boot");
                assert.equal(hostSh(name, `grep -qF '${masterUnit}' /proc/${masterPid(name)}/cgroup`).status, 0, "the master runs in the unit's cgroup");
            }
        });

        test("220 banner, EHLO with STARTTLS and the configured SIZE, no VRFY", () => {
            const lines = ehlo();
            assert.match(lines[0], /^220 mx\.e2e\.test ESMTP$/);
            assert.ok(lines.includes("250-STARTTLS"), lines.join("\n"));
            assert.ok(lines.some((l) => /^250[- ]SIZE 52428800$/.test(l)), lines.join("\n"));
            assert.ok(!lines.some((l) => /VRFY/.test(l)), "VRFY is not offered");
            assert.equal(hostSh(name, "postconf -h smtpd_use_tls").stdout.trim(), "no", "the deprecated switch is not written");
        });

        test("STARTTLS presents the certificate the stack exported", () => {
            const exported = stack.outputs().mailServers.mx.certificateSha256;
            assert.match(exported, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
            assert.equal(starttlsFingerprint(address), exported);
            const handshake = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--tls", "--quit-after", "TLS"]);
            assert.match(handshake.transcript, /TLS started with cipher TLSv1\.[23]/);
        });

        test("mail to a local user is queued and lands in ~/Maildir/new", async () => {
            const subject = `local ${randomUUID()}`;
            const dialogue = send("alice@e2e.test", subject);
            assert.ok(replies(dialogue).some((l) => /^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$/.test(l)), dialogue.transcript);
            await eventually(name, `grep -l 'Subject: ${subject}' /home/alice/Maildir/new/*`);
        });

        test("mail to root reaches the aliased human user", async () => {
            const subject = `root ${randomUUID()}`;
            assert.equal(send("root@e2e.test", subject).status, 0);
            const file = (await eventually(name, `grep -l 'Subject: ${subject}' /home/fribeiro/Maildir/new/*`)).trim();
            assert.match(hostOk(name, `cat '${file}'`), /^X-Original-To: root@e2e\.test$/m);
        });

        test("an unknown local user is refused at once with 550 5.1.1", () => {
            const dialogue = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", "nosuchuser@e2e.test", "--quit-after", "RCPT"]);
            assert.ok(replies(dialogue).some((l) => l.startsWith("550 5.1.1 <nosuchuser@e2e.test>")), dialogue.transcript);
        });

        test("a LAN client may relay out (accepted at RCPT, then we quit)", () => {
            const dialogue = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", "someone@example.invalid", "--quit-after", "RCPT"]);
            assert.ok(replies(dialogue).some((l) => l.startsWith("250 2.1.5")), dialogue.transcript);
        });

        test("a client outside the trusted network is refused: no relay, no mail", () => {
            for (const to of ["someone@example.invalid", "alice@e2e.test"]) {
                const dialogue = swaks(address, outsider, ["--ehlo", "mail.example.invalid", "--from", "x@example.invalid", "--to", to, "--quit-after", "RCPT"]);
                assert.ok(replies(dialogue).some((l) => /^554 5\.7\.1 .*Client host rejected: Access denied/.test(l)), dialogue.transcript);
            }
        });

        test("files on the host: key 0600 root, mailname and aliases as configured", () => {
            assert.equal(hostOk(name, "stat -c '%a %U %G' /etc/ssl/private/server.key.insecure").trim(), "600 root root");
            assert.equal(hostOk(name, "stat -c '%a %U' /etc/ssl/certs/server.crt").trim(), "644 root");
            assert.equal(hostOk(name, "cat /etc/mailname"), "e2e.test\n");
            assert.match(hostOk(name, "cat /etc/aliases"), /^postmaster: root\nroot: fribeiro$/m);
            assert.equal(hostOk(name, "postconf -h message_size_limit mailbox_size_limit").trim(), "52428800\n0");
        });

        test("secrets: the TLS key never shows in pulumi's output or in the state file", () => {
            const key = hostOk(name, "cat /etc/ssl/private/server.key.insecure");
            const body = key.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
            assert.ok(body.length > 100, "a real key was read");
            const state = stack.ok(["stack", "export"]).stdout;
            for (const [where, text] of [["pulumi up output", firstUp], ["state file", state]] as const) {
                for (const line of key.split("\n").filter((l) => l.length > 40)) assert.ok(!text.includes(line), `a key line is in the ${where}`);
            }
            assert.doesNotMatch(state, /PRIVATE KEY/, "neither the TLS key nor the SSH key is in the state in plain text");
        });

        test("a second run changes nothing, opens no SSH connection and does not restart postfix", () => {
            const pid = masterPid(name);
            const logins = sshLogins(host);
            const preview = stack.run(["preview", "--expect-no-changes"]);
            assert.equal(preview.status, 0, preview.stdout + preview.stderr);
            stack.up();
            assert.equal(masterPid(name), pid);
            assert.equal(sshLogins(host), logins, "no SSH connection on a run without change");
        });

        test("a new message size limit re-runs only main.cf and the service step, and reloads", () => {
            const pid = masterPid(name);
            stack.configure(config({ messageSizeLimit: 10485760 }));
            assert.deepEqual(stack.plannedChanges(), { "mx-ssh-reachable": "replace", "mx-server-state": "update", "mx-main-cf": "update", "mx-service": "update" },
                "SSH checked first, the expected main.cf recorded (no SSH), then the two steps");
            const diff = stack.ok(["preview", "--diff"]).stdout;
            console.log(diff.split("\n").filter((l) => /message_size_limit|[~±] .*Command/.test(l)).map((l) => `# ${l}`).join("\n"));
            assert.match(diff, /-\s*message_size_limit = 52428800/, "the diff shows the old value");
            assert.match(diff, /\+\s*message_size_limit = 10485760/, "and the new one");
            const since = booted ? hostNow() : "";
            stack.up();
            assert.ok(ehlo().includes("250-SIZE 10485760"));
            assert.equal(masterPid(name), pid, "a reload keeps the master process");
            if (booted) {
                const lines = journal(since);
                console.log(lines.split("\n").filter(Boolean).map((l) => `# journal: ${l}`).join("\n"));
                assert.match(lines, new RegExp(`^Reloading ${unitPattern}`, "m"), "systemctl reload postfix, seen by systemd");
                assert.match(lines, new RegExp(`^Reloaded ${unitPattern}`, "m"));
                assert.doesNotMatch(lines, /^Stopping postfix/m, "no restart");
            }
        });

        test("new listen addresses restart postfix and the new address answers", () => {
            hostOk(name, `ip addr add ${secondAddress}/32 dev lo`);
            const pid = masterPid(name);
            stack.configure(config({ messageSizeLimit: 10485760, listenAddresses: [address, secondAddress] }));
            const since = booted ? hostNow() : "";
            stack.up();
            assert.notEqual(masterPid(name), pid, "listeners need a stop and start");
            if (booted) {
                const lines = journal(since);
                console.log(lines.split("\n").filter(Boolean).map((l) => `# journal: ${l}`).join("\n"));
                assert.match(lines, new RegExp(`^Stopping ${unitPattern}`, "m"), "systemctl restart postfix, seen by systemd");
                assert.match(lines, new RegExp(`^Started ${unitPattern}`, "m"));
                assert.equal(hostSh(name, `grep -qF '${masterUnit}' /proc/${masterPid(name)}/cgroup`).status, 0, "the new master runs in the unit's cgroup");
            }
            const banner = replies(swaks(secondAddress, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]))[0];
            assert.match(banner, /^220 mx\.e2e\.test ESMTP$/);
        });

        test("a deployment that opens the relay fails, is rolled back within the same run (twice), and the next good one deploys", () => {
            const good = { messageSizeLimit: 10485760, listenAddresses: [address, secondAddress] };
            const goodMainCf = hostOk(name, "cat /etc/postfix/main.cf");
            // Trusts everyone: without the rollback, an outsider could relay right after the failed run.
            // (Relay and recipient restrictions both "permit" would not relay: smtpd refuses to start.)
            const open = { mynetworks: "0.0.0.0/0", smtpd_client_restrictions: "permit", smtpd_relay_restrictions: "permit" };
            stack.configure(config({ ...good, unsafe: open }));
            const outsiderRelays = () => swaks(address, outsider, ["--ehlo", "mail.example.invalid", "--from", "x@example.invalid", "--to", "someone@example.invalid", "--quit-after", "RCPT"]);
            for (const run of ["first", "second"]) {
                const up = stack.run(["up", "--yes", "--skip-preview"]);
                const output = up.stdout + up.stderr;
                if (run === "first") console.log(output.trim().split("\n").map((l) => `#   | ${l}`).join("\n"));
                assert.notEqual(up.status, 0, `${run} pulumi up must fail`);
                assert.match(output, /OPEN RELAY: an outside client got '250 2\.1\.5 Ok'/);
                assert.match(output, /so it was rolled back to the last configuration that passed, which passes again/);
                const refused = outsiderRelays();
                assert.ok(replies(refused).some((l) => /^554 5\.7\.1 .*Client host rejected/.test(l)), `${run}: an outsider is refused right after:\n${refused.transcript}`);
                assert.equal(hostOk(name, "cat /etc/postfix/main.cf"), goodMainCf, `${run}: main.cf is the last good one, byte for byte`);
                // How long the open configuration was live: from main.cf's write to the rollback.
                const written = /mx-main-cf .*changed: \/etc\/postfix\/main\.cf .* at \d{4}-\d\d-\d\d (\d\d:\d\d:\d\d) UTC/.exec(output)?.[1];
                const rolledBack = /rolled back at (\d\d:\d\d:\d\d) UTC, (\d+) ms after the service step started/.exec(output);
                assert.ok(rolledBack, `${run}: the service step itself says when it rolled back`);
                const at = (t: string) => t.split(":").reduce((sum, part) => sum * 60 + Number(part), 0);
                console.log(`# ${suite}: ${run} failed up, ${output.trim().split("\n").length} lines, ${(output.length / 1024).toFixed(1)} KB; rolled back ${rolledBack[2]} ms into the service step`
                    + (written ? `, ${at(rolledBack[1]) - at(written)} s after main.cf was written` : " (main.cf written by an earlier run)"));
                assert.equal(hostSh(name, "postconf -n | grep -c smtpd_authorized_xclient_hosts").stdout.trim(), "0", "the probe leaves no XCLIENT behind");
            }
            // What the stack wants and the server does not run, shown before the fix.
            const pending = stack.changes().servers[0].changes ?? [];
            assert.ok(pending.some((c) => c.file === "/etc/postfix/main.cf"), JSON.stringify(pending));
            stack.configure(config(good));
            // The failed check kept its old state; the fixing run must check the server again all the same.
            assert.equal(stack.plannedChanges()["mx-service"], "update");
            const fixed = stack.up();
            assert.match(fixed.stdout, /mx-service updated .*checks passed/);
            assert.equal(hostOk(name, "cat /etc/postfix/main.cf"), goodMainCf);
            const outside = outsiderRelays();
            assert.ok(replies(outside).some((l) => /^554 5\.7\.1 .*Client host rejected/.test(l)), outside.transcript);
        });

        if (booted) test("a deployment that leaves port 25 deaf (postfix check passes it) is rolled back; every address answers again", () => {
            const good = { messageSizeLimit: 10485760, listenAddresses: [address, secondAddress] };
            const goodMainCf = hostOk(name, "cat /etc/postfix/main.cf");
            // A valid main.cf whose postfix runs without its SMTP listener.
            stack.configure(config({ ...good, extra: { master_service_disable: "smtp/inet" } }));
            try {
                const up = stack.run(["up", "--yes", "--skip-preview"]);
                const output = up.stdout + up.stderr;
                assert.notEqual(up.status, 0);
                assert.match(output, new RegExp(`FAIL ${address.replace(/\./g, "\\.")}:25 does not answer`));
                assert.match(output, /rolled back to the last configuration that passed, which passes again/);
                console.log(`# ${suite}: deaf port: ${output.split("\n").filter((l) => /^\s*(FAIL|rolled back)/.test(l.trim())).map((l) => l.trim()).join(" | ")}`);
                assert.equal(hostOk(name, "cat /etc/postfix/main.cf"), goodMainCf);
                for (const a of [address, secondAddress]) {
                    assert.match(replies(swaks(a, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]))[0], /^220 mx\.e2e\.test ESMTP$/, a);
                }
            } finally {
                stack.configure(config(good));
                stack.up();
            }
        });

        if (booted) test("after a reboot postfix runs without pulumi up, held mail is delivered, verify passes, nothing to plan", async () => {
            // Accepted, then held: with the queue manager off, nothing leaves the incoming queue.
            const subject = `across the reboot ${randomUUID()}`;
            hostOk(name, "postconf -e master_service_disable=qmgr.unix && postfix reload");
            // A reload is asynchronous: wait until the master has stopped the queue manager (the host has its own /proc).
            await eventually(name, "! grep -qs '[q]mgr' /proc/[0-9]*/cmdline");
            const dialogue = send("alice@e2e.test", subject);
            assert.ok(replies(dialogue).some((l) => /^250 2\.0\.0 Ok: queued as /.test(l)), dialogue.transcript);
            assert.match(hostOk(name, "postqueue -p"), /alice@e2e\.test/, "held in the queue");
            assert.notEqual(hostSh(name, `grep -l 'Subject: ${subject}' /home/alice/Maildir/new/* 2>/dev/null`).status, 0, "not delivered yet");
            // main.cf back as deployed; only the next boot reads it.
            hostOk(name, "postconf -X master_service_disable");
            const seconds = hostReboot(name);
            console.log(`# ${suite}: power off and boot again: ${seconds.toFixed(1)} s until sshd answered`);
            await eventually(name, `systemctl is-active ${masterUnit}`, 60);
            assert.ok(masterPid(name), "postfix started at boot");
            await eventually(name, `grep -l 'Subject: ${subject}' /home/alice/Maildir/new/*`, 60);
            const verify = stack.verify(lanClient);
            assert.equal(verify.failed, 0, JSON.stringify(verify.servers[0].checks.filter((c) => !c.ok)));
            const preview = stack.run(["preview", "--expect-no-changes"]);
            assert.equal(preview.status, 0, preview.stdout + preview.stderr);
        });

        test("pulumi destroy stops and removes postfix, keeps mail, users and the system files", () => {
            stack.ok(["destroy", "--yes", "--skip-preview"]);
            assert.notEqual(hostSh(name, "test -x /usr/sbin/postfix").status, 0, "postfix is removed");
            assert.equal(hostSh(name, "test -e /etc/ssl/private/server.key.insecure").status, 1, "the key is gone");
            assert.ok(hostOk(name, "ls /home/fribeiro/Maildir/new | wc -l").trim() !== "0", "delivered mail stays");
            assert.equal(hostOk(name, "cat /etc/mailname"), "e2e.test\n");
            hostOk(name, "id alice && test -f /etc/postfix/main.cf");
        });
    });
}
