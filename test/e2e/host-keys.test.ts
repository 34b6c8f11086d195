// Secrets go only to the right server. A real Debian 12 host, the real engine and `npm run verify`:
// an unknown server is refused with the fingerprint it offers and nothing installed; accept-new
// records the key on first use (in a hashed known_hosts line that OpenSSH reads); the SSH agent
// keeps the client key out of the state, and a passphrase-protected key works with its secret
// passphrase; then the host gets new host keys (what a machine in the middle or a re-imaged box
// shows) and every way of trusting a key refuses it: nothing is sent, no step runs there.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Report } from "../../components/core/checks";
import { eventually, hostDown, hostOk, hostSh, HostInfo, hostUp, sshLogins } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";

const name = "e2e-host-keys";
const subnet = "127.0.21";
const address = `${subnet}.2`;
const lanClient = `${subnet}.50`;
const work = mkdtempSync(join(tmpdir(), "pulumi-postfix-host-keys-"));
const knownHosts = join(work, "known_hosts");
const agentSocket = join(work, "agent.sock");
let host: HostInfo;
let stack: Stack;
let agentPid: string | undefined;

type Trust = { knownHostsFile: string; strictHostKeyChecking?: "yes" | "accept-new" } | "pinned";
const config = (trust: Trust, options: { messageSizeLimit?: number; privateKeyPath?: string | null } = {}) => mxConfig({
    host, subnet,
    trust: trust === "pinned" ? undefined : trust,
    privateKeyPath: options.privateKeyPath,
    options: options.messageSizeLimit === undefined ? {} : { "postfix:messageSizeLimit": options.messageSizeLimit },
});

/** `256 SHA256:... comment (ED25519)` -> `SHA256:...`, of the host's current ed25519 key. */
const hostFingerprint = () => hostOk(name, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split(" ")[1];
const mainCfSha = () => hostOk(name, "sha256sum /etc/postfix/main.cf").split(" ")[0];

function verifyReport(): Report {
    return stack.verify(lanClient);
}

describe("SSH host keys: an unknown, a first-used and a changed server key", { timeout: 10 * 60_000 }, () => {
    before(() => {
        host = hostUp(name, "bookworm", address);
        writeFileSync(knownHosts, "");
        // The workstation's SSH agent, holding the host's client key.
        const agent = execFileSync("ssh-agent", ["-a", agentSocket, "-s"], { encoding: "utf8" });
        agentPid = /SSH_AGENT_PID=(\d+)/.exec(agent)?.[1];
        execFileSync("ssh-add", ["-q", host.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket } });
        stack = new Stack(name, { env: { SSH_AUTH_SOCK: agentSocket } });
    });
    after(() => {
        stack.remove();
        hostDown(name);
        if (agentPid) spawnSync("kill", [agentPid]);
        rmSync(work, { recursive: true, force: true });
    });

    test("an unknown server: preview and up refuse, naming it and showing the fingerprint it offers; nothing is installed", () => {
        const logins = sshLogins(host);
        stack.init(config({ knownHostsFile: knownHosts }, { privateKeyPath: null }));
        for (const command of [["preview"], ["up", "--yes", "--skip-preview"]]) {
            const run = stack.run(command);
            assert.notEqual(run.status, 0, `${command[0]} must fail`);
            const output = run.stdout + run.stderr;
            assert.match(output, new RegExp(`server mx \\(${address.replace(/\./g, "\\.")} port 22\\) is not a known host: no key for ${address.replace(/\./g, "\\.")} in ${knownHosts}`));
            assert.ok(output.includes(`It offers the host key ${hostFingerprint()} (ED25519).`), output);
            assert.match(output, /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub/);
            assert.match(output, new RegExp(`log in once with ssh root@${address.replace(/\./g, "\\.")} and answer yes`));
            if (command[0] === "up") console.log(`# unknown host, pulumi up says:\n${output.split("\n").filter((l) => /known host|offers|console|trust it|hostKey|accept-new/.test(l)).join("\n")}`);
        }
        assert.equal(hostSh(name, "dpkg -s postfix >/dev/null 2>&1").status, 1, "postfix is not installed");
        assert.equal(sshLogins(host), logins, "no SSH login reached the server");
        assert.equal(readFileSync(knownHosts, "utf8"), "", "nothing recorded without accept-new");
    });

    test("accept-new: the first up records the key (hashed, found by ssh-keygen -F) and deploys with the SSH agent; no key in the state", () => {
        stack.configure(config({ knownHostsFile: knownHosts, strictHostKeyChecking: "accept-new" }, { privateKeyPath: null }));
        // A check never trusts a first-seen key: only pulumi up records it.
        const early = stack.changes(1).servers[0];
        assert.match(early.error ?? "", /not a known host yet: no key for it in .*known_hosts \(with strictHostKeyChecking: accept-new, the next pulumi up records it\)/);
        assert.equal(readFileSync(knownHosts, "utf8"), "", "verify recorded nothing");
        const up = stack.up();
        assert.match(up.stdout + up.stderr, new RegExp(`host key ${hostFingerprint().replace(/[+/]/g, "\\$&")} seen for the first time \\(strictHostKeyChecking: accept-new\\); recorded in ${knownHosts}`));
        const recorded = readFileSync(knownHosts, "utf8");
        assert.match(recorded, /^\|1\|\S+\|\S+ ssh-ed25519 \S+\n$/, "one hashed line");
        assert.equal(execFileSync("ssh-keygen", ["-F", address, "-f", knownHosts], { encoding: "utf8" }).split("\n")[1].split(" ").slice(1).join(" "),
            host.hostPublicKey, "OpenSSH finds the genuine key under the host's address");
        const state = stack.ok(["stack", "export", "--show-secrets"]).stdout;
        // The TLS key is in it, in PEM and OpenSSH form (the tls provider keeps both); the SSH client key must not be.
        const clientKey = readFileSync(host.privateKeyPath, "utf8").split("\n").slice(1, -2).join("");
        assert.ok(clientKey.length > 100 && !state.replace(/\\+n/g, "").includes(clientKey), "with the agent, the SSH key is not in the state, even with secrets shown");
        // The next run reads the recorded key like any known one: nothing to do, no SSH.
        const logins = sshLogins(host);
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, `nothing to do: ${preview.stdout}${preview.stderr}`);
        stack.up();
        assert.equal(sshLogins(host), logins, "a no-change up opens no SSH connection");
        const report = verifyReport();
        assert.equal(report.failed, 0, JSON.stringify(report.servers[0].checks.filter((c) => !c.ok)));
        assert.match(report.servers[0].checks.find((c) => c.name === "ssh")!.detail, new RegExp(`host key as in ${knownHosts}`));
    });

    test("a passphrase-protected key file works with its passphrase as a secret", () => {
        const key = join(work, "id_with_passphrase");
        const passphrase = `passphrase ${Date.now()}`;
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", key]);
        hostOk(name, `cat >>/root/.ssh/authorized_keys <<'EOF'\n${readFileSync(`${key}.pub`, "utf8").trim()}\nEOF`);
        stack.configure(config({ knownHostsFile: knownHosts }, { privateKeyPath: key, messageSizeLimit: 20_000_000 }));
        stack.ok(["config", "set", "--secret", "postfix:sshPrivateKeyPassword"], { stdin: passphrase });
        const logins = sshLogins(host);
        stack.up();
        assert.equal(hostOk(name, "postconf -h message_size_limit").trim(), "20000000");
        const keyFingerprint = execFileSync("ssh-keygen", ["-lf", `${key}.pub`], { encoding: "utf8" }).split(" ")[1];
        const log = readFileSync(join(host.rootDir, "var/log/sshd.log"), "utf8").split("\n").filter((l) => /Accepted publickey/.test(l)).slice(logins);
        assert.ok(log.length > 0 && log.every((l) => l.includes(keyFingerprint)), `every step logged in with the passphrase-protected key:\n${log.join("\n")}`);
        assert.equal(verifyReport().failed, 0);
        // As the README says: a key file is stored in the state, encrypted; --show-secrets prints it.
        const keyText = readFileSync(key, "utf8").split("\n").slice(1, -2).join("");
        assert.ok(stack.ok(["stack", "export", "--show-secrets"]).stdout.replace(/\\+n/g, "").includes(keyText), "a key file lands in the state");
        assert.ok(!(stack.up().stdout + stack.ok(["stack", "export"]).stdout).includes(passphrase), "the passphrase shows nowhere");
    });

    test("new host keys on the server: up and verify refuse with every way of trusting a key; nothing reaches it", async () => {
        const genuine = hostFingerprint();
        const before = mainCfSha();
        hostOk(name, "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP \"$(cat /run/sshd.pid)\"");
        await eventually(name, `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | grep -v '${genuine}'`);
        await new Promise((resolve) => setTimeout(resolve, 1000)); // sshd re-executes on HUP
        const impostor = hostFingerprint();
        assert.notEqual(impostor, genuine);
        const logins = sshLogins(host);
        const trusts: Array<[string, Trust]> = [
            ["accept-new with the key in known_hosts", { knownHostsFile: knownHosts, strictHostKeyChecking: "accept-new" }],
            ["the key only in known_hosts", { knownHostsFile: knownHosts }],
            ["the key pinned in ssh.hostKey", "pinned"],
        ];
        for (const [what, trust] of trusts) {
            stack.configure(config(trust, { privateKeyPath: null, messageSizeLimit: 30_000_000 }));
            const up = stack.run(["up", "--yes", "--skip-preview"]);
            const output = up.stdout + up.stderr;
            assert.notEqual(up.status, 0, `${what}: pulumi up must fail`);
            assert.ok(output.includes(`HOST KEY CHANGED: the server shows ${impostor} (ED25519), but`), `${what}:\n${output}`);
            assert.ok(output.includes(`has ${genuine} (ED25519)`), output);
            assert.match(output, /Nothing was sent to it/);
            const report = verifyReport();
            const ssh = report.servers[0].checks.find((c) => c.name === "ssh")!;
            assert.equal(ssh.ok, false, `${what}: verify refuses`);
            assert.match(ssh.detail, new RegExp(`HOST KEY CHANGED: the server shows ${impostor.replace(/[+/]/g, "\\$&")} \\(ED25519\\)`));
            console.log(`# ${what}: pulumi up fails in ${up.seconds.toFixed(1)} s with:\n${output.split("\n").filter((l) => /HOST KEY|intercepting|Nothing was sent|console|replace the old/.test(l)).map((l) => l.trim()).join("\n")}`);
        }
        assert.equal(mainCfSha(), before, "main.cf is as it was");
        assert.equal(hostOk(name, "postconf -h message_size_limit").trim(), "20000000", "the change never arrived");
        assert.equal(sshLogins(host), logins, "the impostor got no login, so no step and no secret");
    });
});
