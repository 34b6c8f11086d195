// A fleet of four servers in one stack with one of them down: `pulumi up --continue-on-error`
// converges the other three (their deploy checks pass), exits non-zero and names the server that
// is down and why; once it is back, the next `up` converges it alone. Loopback only; mail held.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hostDown, hostOk, HostInfo, hostUp, masterPid } from "./support/host";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const subnet = "127.0.65";
const lanClient = `${subnet}.50`;
const SERVERS = ["m1", "m2", "m3", "m4"].map((server, i) => ({ server, host: `e2e-down-${server}`, address: `${subnet}.${i + 2}` }));
const down = SERVERS[3];
const stack = new Stack("e2e-fleet-down");
const hosts = new Map<string, HostInfo>();

const config = () => ({
    "postfix:domain": "e2e.test",
    "postfix:trustedNetworks": [`${subnet}.0/24`],
    "postfix:mailUsers": ["alice"],
    "postfix:extraParameters": { defer_transports: "smtp", maillog_file: "/var/log/postfix.log" },
    "postfix:servers": SERVERS.map(({ server, host, address }) => ({
        name: server,
        hostname: `${server}.e2e.test`,
        listenAddresses: [address],
        ssh: { host: address, privateKeyPath: hosts.get(host)!.privateKeyPath, hostKey: hosts.get(host)!.hostPublicKey, dialErrorLimit: 3, perDialTimeout: 10 },
    })),
});

const banner = (address: string) => replies(swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "CONNECT"]))[0];
/** The remote steps in the state, by name. */
const remoteSteps = (): string[] => (JSON.parse(stack.ok(["stack", "export"]).stdout).deployment.resources ?? [])
    .filter((r: { type: string }) => r.type === "command:remote:Command")
    .map((r: { urn: string }) => r.urn.split("::").pop() as string);

/** A server's ServerState outputs in the state. */
const serverState = (server: string): { mainCf?: Record<string, string> } | undefined => (JSON.parse(stack.ok(["stack", "export"]).stdout).deployment.resources ?? [])
    .find((r: { urn: string }) => r.urn.endsWith(`::${server}-server-state`))?.outputs;

describe("a fleet of four with one server down", { timeout: 20 * 60_000 }, () => {
    before(() => {
        for (const { host, address } of SERVERS) hosts.set(host, hostUp(host, "bookworm", address));
        stack.init(config());
        // The fourth server is down: its sshd stopped (the address answers "connection refused").
        hostOk(down.host, "kill \"$(cat /run/sshd.pid)\"");
    });
    after(() => {
        stack.remove();
        for (const { host } of SERVERS) hostDown(host);
    });

    test("pulumi up --continue-on-error converges the other three, fails, and names the server that is down", () => {
        const up = stack.run(["up", "--yes", "--skip-preview", "--continue-on-error"]);
        const output = up.stdout + up.stderr;
        console.log(`# one of four down: pulumi up exited ${up.status} after ${up.seconds.toFixed(1)} s`);
        console.log(output.split("\n").filter((l) => /error|failed/i.test(l)).map((l) => `# ${l.trim().slice(0, 200)}`).join("\n"));
        assert.notEqual(up.status, 0, "the run fails");
        assert.match(output, /m4-ssh-reachable \*\*creating failed\*\*/);
        assert.match(output, new RegExp(`pulumi-postfix: ${down.address.replace(/\./g, "\\.")} port 22: no SSH server answered \\(3 attempts; the last one refused the connection`));
        const names = remoteSteps();
        for (const { server, host, address } of SERVERS.slice(0, 3)) {
            assert.ok(names.includes(`${server}-service`), `${server}: its service step and deploy check ran and passed`);
            assert.ok(masterPid(host), `${server}: postfix runs`);
            assert.match(banner(address), new RegExp(`^220 ${server}\\.e2e\\.test ESMTP$`));
        }
        assert.deepEqual(names.filter((n) => n.startsWith("m4-")), [], "no step ran against the server that is down");
    });

    test("once it is back, the next up converges it alone", () => {
        hostOk(down.host, "/usr/sbin/sshd -E /var/log/sshd.log");
        const planned = Object.keys(stack.plannedChanges());
        assert.ok(planned.length > 0 && planned.every((name) => name.startsWith("m4-")), JSON.stringify(planned));
        stack.up();
        assert.ok(masterPid(down.host), "m4: postfix runs");
        assert.match(banner(down.address), /^220 m4\.e2e\.test ESMTP$/);
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
    });

    test("a refresh with one server down: one line names it, the others are still read; up --refresh stops; refresh --exclude, then up, repairs the others", () => {
        // m1 changed by hand (main.cf only, not reloaded), m4 down again.
        hostOk("e2e-down-m1", "postconf -e mynetworks=0.0.0.0/0");
        hostOk(down.host, "kill \"$(cat /run/sshd.pid)\"");
        const refresh = stack.run(["refresh", "--yes", "--skip-preview"]);
        const output = refresh.stdout + refresh.stderr;
        console.log(`# one of four down: pulumi refresh exited ${refresh.status} after ${refresh.seconds.toFixed(1)} s`);
        console.log(output.slice(output.indexOf("Diagnostics:"), output.indexOf("Outputs:")).split("\n").map((l) => `#   ${l}`).join("\n"));
        assert.notEqual(refresh.status, 0, "the refresh fails");
        const diagnostics = output.slice(output.indexOf("Diagnostics:"));
        assert.match(diagnostics, new RegExp(`\\(m4-server-state\\):\\n\\s+error: ${down.address.replace(/\./g, "\\.")} port 22: no SSH connection after 3 attempts: connect ECONNREFUSED`), output);
        assert.equal(serverState("m1")?.mainCf?.mynetworks, "0.0.0.0/0", "m1 was read, and its drift recorded");
        assert.equal(serverState("m2")?.mainCf?.mynetworks, `${subnet}.0/24`);

        // up --refresh stops at the refresh: nothing is changed anywhere.
        const both = stack.run(["up", "--refresh", "--yes", "--skip-preview"]);
        console.log(`# one of four down: pulumi up --refresh exited ${both.status} after ${both.seconds.toFixed(1)} s`);
        assert.notEqual(both.status, 0);
        assert.match(both.stdout + both.stderr, /\(m4-server-state\):\n\s+error: .* no SSH connection after 3 attempts/);
        assert.equal(hostOk("e2e-down-m1", "postconf -h mynetworks").trim(), "0.0.0.0/0", "up --refresh changed nothing");
        // The documented way on: the refresh that left the server out, then a plain up.
        const skipped = stack.run(["refresh", "--yes", "--skip-preview", "--exclude", "**m4-server-state"]);
        assert.equal(skipped.status, 0, skipped.stdout + skipped.stderr);
        assert.deepEqual(Object.keys(stack.plannedChanges()).sort(), ["m1-main-cf", "m1-server-state", "m1-service"], "m1's repair, nothing on m4");
        const up = stack.run(["up", "--yes", "--skip-preview"]);
        assert.equal(up.status, 0, up.stdout + up.stderr);
        console.log(`# one of four down: refresh --exclude ${skipped.seconds.toFixed(1)} s, then pulumi up (m1 repaired) ${up.seconds.toFixed(1)} s`);
        assert.equal(hostOk("e2e-down-m1", "postconf -h mynetworks").trim(), `${subnet}.0/24`, "m1 put back");
    });
});
