// Several hosts in one stack: a Debian 12 and a Debian 13 server, one component each, deployed
// in parallel by the engine, with outputs per host. Loopback only; outbound mail is held.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { eventually, hostDown, hostOk, HostInfo, hostUp, postfixInstallWindow, sshLogins } from "./support/host";
import { Stack } from "./support/pulumi";
import { replies, starttlsFingerprint, swaks } from "./support/smtp";

const subnet = "127.0.17";
const lanClient = `${subnet}.50`;
const SERVERS = [
    { server: "alpha", host: "e2e-fleet-alpha", suite: "bookworm", address: `${subnet}.2` },
    { server: "beta", host: "e2e-fleet-beta", suite: "trixie", address: `${subnet}.3` },
] as const;
const stack = new Stack("e2e-fleet");
const hosts = new Map<string, HostInfo>();

const config = (betaSizeLimit?: number) => ({
    "postfix:domain": "e2e.test",
    "postfix:trustedNetworks": [`${subnet}.0/24`],
    "postfix:mailUsers": ["alice"],
    // Hold outbound mail: a test host never delivers outside. Log to a file: no syslog here.
    "postfix:extraParameters": { defer_transports: "smtp", maillog_file: "/var/log/postfix.log" },
    "postfix:servers": SERVERS.map(({ server, host, address }) => {
        const info = hosts.get(host)!;
        return {
            name: server,
            hostname: `${server}.e2e.test`,
            listenAddresses: [address],
            ...(server === "beta" && betaSizeLimit ? { messageSizeLimit: betaSizeLimit } : {}),
            ssh: { host: address, user: "root", privateKeyPath: info.privateKeyPath, hostKey: info.hostPublicKey, dialErrorLimit: 3, perDialTimeout: 10 },
        };
    }),
});

describe("one stack, two hosts: deployed in parallel, outputs per host", { timeout: 15 * 60_000 }, () => {
    before(() => {
        for (const { host, suite, address } of SERVERS) hosts.set(host, hostUp(host, suite, address));
        stack.init(config());
    });
    after(() => {
        stack.remove();
        for (const { host } of SERVERS) hostDown(host);
    });

    test("one pulumi up deploys both, their installs overlapping in time", () => {
        const up = stack.up();
        const [a, b] = SERVERS.map(({ host }) => postfixInstallWindow(host));
        const overlap = Math.min(a[1], b[1]) - Math.max(a[0], b[0]);
        console.log(`# fleet: pulumi up for 2 hosts took ${up.seconds.toFixed(1)} s; installs ${a[1] - a[0]} s and ${b[1] - b[0]} s, overlapping ${overlap} s`);
        // Whole seconds: 0 would also be one install ending in the second the other began.
        assert.ok(overlap >= 1, `the installs ran one after the other: ${JSON.stringify({ a, b })}`);
    });

    test("outputs per host: endpoints, its own certificate, its own postfix version", () => {
        const servers = stack.outputs().mailServers;
        assert.deepEqual(Object.keys(servers).sort(), ["alpha", "beta"]);
        for (const { server, address } of SERVERS) {
            assert.deepEqual(servers[server].smtpEndpoints, [`${address}:25`]);
            assert.equal(starttlsFingerprint(address), servers[server].certificateSha256, `${server} presents its own certificate`);
        }
        assert.notEqual(servers.alpha.certificateSha256, servers.beta.certificateSha256);
        assert.match(servers.alpha.postfixVersion, /^3\.7\./, "Debian 12");
        assert.match(servers.beta.postfixVersion, /^3\.(9|1\d)\./, "Debian 13");
    });

    test("each host delivers mail for itself", async () => {
        for (const { server, host, address } of SERVERS) {
            const subject = `${server} ${randomUUID()}`;
            const dialogue = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", "alice@e2e.test", "--header", `Subject: ${subject}`]);
            assert.match(replies(dialogue)[0], new RegExp(`^220 ${server}\\.e2e\\.test ESMTP$`));
            await eventually(host, `grep -l 'Subject: ${subject}' /home/alice/Maildir/new/*`);
        }
    });

    test("a change to one server's option touches only that server", () => {
        stack.configure(config(10485760));
        const planned = Object.keys(stack.plannedChanges()).sort();
        assert.deepEqual(planned, ["beta-main-cf", "beta-server-state", "beta-service", "beta-ssh-reachable"]);
        stack.up();
        assert.equal(hostOk("e2e-fleet-beta", "postconf -h message_size_limit").trim(), "10485760");
        assert.equal(hostOk("e2e-fleet-alpha", "postconf -h message_size_limit").trim(), "52428800");
    });

    test("a refresh reads each server (Debian 12 and 13) over one SSH connection and finds nothing; the next up opens none", () => {
        const logins = () => SERVERS.map(({ host }) => sshLogins(hosts.get(host)!));
        const before = logins();
        const refresh = stack.ok(["refresh", "--yes", "--skip-preview"]);
        assert.deepEqual(logins().map((n, i) => n - before[i]), [1, 1], "one connection per server");
        console.log(`# refresh of two servers, nothing drifted: ${refresh.seconds.toFixed(1)} s (${new Date().toISOString().slice(0, 10)})`);
        const check = stack.run(["preview", "--refresh", "--expect-no-changes"]);
        assert.equal(check.status, 0, check.stdout + check.stderr);
        const read = logins();
        stack.up();
        assert.deepEqual(logins(), read, "the next up opens no SSH connection");
    });
});
