// Faults during a deployment, with the real engine against a real Debian 13 host: an unreachable
// host, the SSH connection cut in the middle of `pulumi up`, another apt run holding the dpkg lock,
// and hand edits on the host (drift). Only loopback addresses are used; outbound mail is held
// (defer_transports = smtp) and outside domains are reserved `.invalid` names.
import assert from "node:assert/strict";
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { connect, createServer, Server, Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { eventually, hostDown, hostOk, hostSh, HostInfo, hostUp, masterPid } from "./support/host";
import { runInBackground, sleep } from "./support/background";
import { mxConfig } from "./support/config";
import { Run, Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const name = "e2e-faults";
const address = "127.0.14.2";
const lanClient = "127.0.14.50";
// Outside the trusted network (127.0.14.0/24), still on this machine's loopback.
const outsider = "127.0.99.14";
const nobodyListens = "127.0.14.99";
const silentListener = "127.0.14.98";

let host: HostInfo;
let stack: Stack;

interface Options { sshHost?: string; dialErrorLimit?: number; perDialTimeout?: number; messageSizeLimit?: number; aptLockTimeoutSeconds?: number }

/** The shared e2e settings; `options` changes one thing at a time. */
const config = (options: Options = {}) => mxConfig({
    host, subnet: "127.0.14",
    ssh: { host: options.sshHost, dialErrorLimit: options.dialErrorLimit, perDialTimeout: options.perDialTimeout },
    options: {
        ...(options.messageSizeLimit === undefined ? {} : { "postfix:messageSizeLimit": options.messageSizeLimit }),
        ...(options.aptLockTimeoutSeconds === undefined ? {} : { "postfix:aptLockTimeoutSeconds": options.aptLockTimeoutSeconds }),
    },
});

/** A new host with nothing installed, and a new stack for it (an install only runs on a fresh stack). */
function freshHost(options: Options = {}): void {
    stack?.remove();
    hostDown(name);
    host = hostUp(name, "trixie", address);
    stack = new Stack(name);
    stack.init(config(options));
}

/** `pulumi up` without blocking the event loop, so the test can act while it runs. */
function upInBackground(): { done: Promise<Run>; settled: () => boolean } {
    let settled = false;
    const done = runInBackground(stack, ["up", "--yes", "--skip-preview"]).finally(() => (settled = true));
    return { done, settled: () => settled };
}

const seconds = (since: number) => (Date.now() - since) / 1000;

/** Polls `condition` every `everyMs` until it holds; fails after `limit` seconds or when `stop()` turns true first. */
async function waitFor(what: string, condition: () => boolean, limit: number, everyMs: number, stop: () => boolean = () => false): Promise<void> {
    const deadline = Date.now() + limit * 1000;
    while (!condition()) {
        if (stop()) throw new Error(`stopped waiting for ${what}: pulumi up ended first`);
        if (Date.now() > deadline) throw new Error(`no ${what} after ${limit} s`);
        await sleep(everyMs);
    }
}

interface Proc { pid: number; ppid: number; args: string }

/**
 * The host's processes, read from /proc (no fork: this runs every few milliseconds). The host
 * shares this machine's PID namespace; a process belongs to it when its root is the host's root
 * or below (postfix daemons chroot further). Other hosts on this machine are never matched.
 */
function hostProcesses(): Proc[] {
    const root = realpathSync(host.rootDir);
    const found: Proc[] = [];
    for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const where = readlinkSync(`/proc/${entry}/root`);
            if (where !== root && !where.startsWith(`${root}/`)) continue;
            const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            found.push({ pid: Number(entry), ppid, args: readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ").trim() });
        } catch {
            // the process ended in the meantime
        }
    }
    return found;
}

/** The processes of the host's SSH sessions (children of its listening sshd) and, with `all`, everything they started. */
function sessionProcesses(all: boolean): Proc[] {
    const listener = Number(readFileSync(join(host.rootDir, "run", "sshd.pid"), "utf8").trim());
    const procs = hostProcesses();
    // Breadth first: parents before children, so a killed script cannot react to its child's death.
    const tree = procs.filter((p) => p.ppid === listener);
    for (let i = 0; i < tree.length; i++) tree.push(...procs.filter((p) => p.ppid === tree[i].pid));
    return all ? tree : tree.filter((p) => p.args.startsWith("sshd"));
}

/** Cuts every SSH connection to the host (its listening sshd stays): SIGKILL to the session processes. Returns how many. */
function cutSsh(withCommands = false): number {
    const victims = sessionProcesses(withCommands);
    for (const p of victims) {
        try {
            process.kill(p.pid, "SIGKILL");
        } catch {
            // already gone
        }
    }
    return victims.length;
}

// dpkg as apt runs it to unpack or configure (not the quick `dpkg --audit` or the architecture query).
const isDpkg = (p: Proc) => p.args.startsWith("/usr/bin/dpkg --status-fd ");
const isAptOrDpkg = (p: Proc) => /^(apt-get|(\/usr\/bin\/)?dpkg(-deb)?) /.test(p.args);
const ehlo = () => replies(swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]));
/** An outside client asks for a local user: 554 Client host rejected when the server is as deployed. */
const outsiderRcpt = () => replies(swaks(address, outsider, [
    "--ehlo", "mail.example.invalid", "--from", "x@example.invalid", "--to", "alice@e2e.test", "--quit-after", "RCPT",
])).slice(-2).join(" | ");
const dpkgAudit = () => hostOk(name, "dpkg --audit").trim();
/** The install step's apt, on the host, has written that it waits for another run's lock (its output goes to a mktemp file). */
const aptSaysItWaits = () => readdirSync(join(host.rootDir, "tmp")).filter((f) => f.startsWith("tmp.")).some((f) => {
    try {
        return readFileSync(join(host.rootDir, "tmp", f), "latin1").includes("Could not get lock /var/lib/dpkg/lock-frontend");
    } catch {
        return false; // removed in the meantime
    }
});
const postfixInstalled = () => hostSh(name, "dpkg-query -W -f '${Status}' postfix 2>/dev/null").stdout === "install ok installed";

/** A converged host: postfix runs, mail is delivered, and the engine sees nothing left to do. */
async function assertConverged(): Promise<void> {
    assert.ok(masterPid(name), "postfix runs");
    assert.equal(dpkgAudit(), "", "dpkg has nothing half-done");
    const subject = `fault ${randomUUID()}`;
    const dialogue = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "tester@e2e.test", "--to", "alice@e2e.test", "--header", `Subject: ${subject}`]);
    assert.ok(replies(dialogue).some((l) => /^250 2\.0\.0 Ok: queued as /.test(l)), dialogue.transcript);
    await eventually(name, `grep -l 'Subject: ${subject}' /home/alice/Maildir/new/*`);
    const preview = stack.run(["preview", "--expect-no-changes"]);
    assert.equal(preview.status, 0, preview.stdout + preview.stderr);
}

/** The distinct lines of pulumi's output that say what went wrong, for the log: without the progress prefix, shortened (an error quotes the whole script). */
function errorLines(r: Run): string {
    const lines = `${r.stdout}\n${r.stderr}`.split("\n")
        .filter((l) => /error|pulumi-postfix:|Could not get lock/i.test(l))
        .map((l) => l.trim().replace(/^.*? (creating|running|updating) \(\d+s\) /, ""))
        .map((l) => (l.length > 160 ? `${l.slice(0, 160)}...` : l));
    return [...new Set(lines)].map((l) => `#   ${l}`).join("\n");
}

// Another apt run, as apt sees it: fcntl write locks (not flock) on dpkg's two locks and on the
// package lists' lock (an apt run that is updating holds it; and should the install ever refresh
// after a lock timeout, which it must not, it stays offline and says so). x86_64 struct flock: short type, short whence, off_t start, off_t len, pid_t pid.
const LOCK_HOLDER = [
    "use Fcntl; my @held;",
    "for my $path (qw(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)) {",
    "  open(my $fh, '>>', $path) or die \"open $path: $!\\n\";",
    "  fcntl($fh, F_SETLKW, pack('s s x4 q q i x4', F_WRLCK, SEEK_SET, 0, 0, 0)) or die \"lock $path: $!\\n\";",
    "  push @held, $fh;",
    "}",
    "$| = 1; print \"locked $$\\n\"; sleep $ARGV[0];",
].join("\n");

/** Holds apt's locks inside the host for `holdSeconds`; resolves once they are held. */
async function holdAptLocks(holdSeconds: number): Promise<{ child: ChildProcessWithoutNullStreams; pid: number; since: number }> {
    const child = spawn("bash", [join(REPO, "test", "hosts", "testhost.sh"), "exec", name, "--", "perl", "-e", LOCK_HOLDER, String(holdSeconds)]);
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    await waitFor("lock holder", () => /^locked \d+$/m.test(out), 30, 50, () => child.exitCode !== null);
    return { child, pid: Number(/^locked (\d+)$/m.exec(out)![1]), since: Date.now() };
}

/**
 * The longest the command provider dials before a step fails: `dialErrorLimit + 1` dials of at most
 * `perDialTimeout` seconds each, with a pause after each failure but the last (0.5 s, x1.5, at most 5 s).
 */
/** The SSH check's bound: `dialErrorLimit` attempts of at most `perDialTimeout` seconds, one second apart. */
function probeSeconds(dialErrorLimit: number, perDialTimeout: number): number {
    return dialErrorLimit * perDialTimeout + (dialErrorLimit - 1);
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The SSH check failed the run: no remote step was started, so none is in the state. */
function assertNoStepRan(up: Run): void {
    assert.match(up.stdout + up.stderr, /mx-ssh-reachable \*\*creating failed\*\*/);
    const resources: Array<{ type: string }> = JSON.parse(stack.ok(["stack", "export"]).stdout).deployment.resources ?? [];
    assert.deepEqual(resources.filter((r) => r.type === "command:remote:Command"), []);
}
// The engine's own part of a failing `pulumi up` (start, program, plan): 11 to 14 s measured on the
// 2-core machine under load; the bound leaves room for a busier one.
const ENGINE_SECONDS = 60;

/** The error code of a TCP connect (ECONNREFUSED when nothing listens), or "connected". */
function connectError(ip: string, port: number): Promise<string> {
    return new Promise((resolve) => {
        const socket = connect(port, ip);
        socket.once("connect", () => { socket.destroy(); resolve("connected"); });
        socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
}

describe("faults during pulumi up, on a Debian trixie host", { timeout: 40 * 60_000 }, () => {
    let silent: Server | undefined;
    const silentSockets: Socket[] = [];
    /** How long each connection to the silent listener stayed open (s): the client's own wait. */
    const silentWaits: number[] = [];

    before(() => freshHost());
    after(() => {
        for (const socket of silentSockets) socket.destroy();
        silent?.close();
        stack?.remove();
        hostDown(name);
    });

    test("unreachable host, connection refused: a clear error before any step, bounded by the dial options", async () => {
        const dialErrorLimit = 2;
        const perDialTimeout = 5;
        assert.equal(await connectError(nobodyListens, 22), "ECONNREFUSED", "nothing listens there");
        stack.configure(config({ sshHost: nobodyListens, dialErrorLimit, perDialTimeout }));
        const up = await upInBackground().done;
        const bound = probeSeconds(dialErrorLimit, perDialTimeout) + ENGINE_SECONDS;
        console.log(`# refused: pulumi up failed after ${up.seconds.toFixed(1)} s (bound ${bound.toFixed(1)} s = SSH check ${probeSeconds(dialErrorLimit, perDialTimeout)} + engine ${ENGINE_SECONDS})`);
        console.log(errorLines(up));
        assert.notEqual(up.status, 0);
        assert.match(up.stdout + up.stderr, new RegExp(`pulumi-postfix: ${escape(nobodyListens)} port 22: no SSH server answered \\(${dialErrorLimit} attempts; the last one refused the connection or could not be reached\\)`));
        assertNoStepRan(up);
        assert.ok(up.seconds < bound, `${up.seconds} s, bound ${bound} s`);
    });

    test("unreachable host, a listener that never speaks SSH: each attempt times out, then a clear error before any step", async () => {
        silent = createServer((socket) => {
            const accepted = Date.now();
            silentSockets.push(socket);
            socket.on("error", () => undefined);
            socket.on("close", () => silentWaits.push((Date.now() - accepted) / 1000));
        });
        await new Promise<void>((resolve, reject) => silent!.once("error", reject).listen(22, silentListener, resolve));
        const dialErrorLimit = 2;
        const perDialTimeout = 5;
        stack.configure(config({ sshHost: silentListener, dialErrorLimit, perDialTimeout }));
        const up = await upInBackground().done;
        const checking = probeSeconds(dialErrorLimit, perDialTimeout);
        console.log(`# silent: pulumi up failed after ${up.seconds.toFixed(1)} s (attempts alone at least ${dialErrorLimit * perDialTimeout} s; bound ${(checking + ENGINE_SECONDS).toFixed(1)} s); ${silentSockets.length} connections accepted`);
        console.log(errorLines(up));
        assert.notEqual(up.status, 0);
        assert.match(up.stdout + up.stderr, new RegExp(`pulumi-postfix: ${escape(silentListener)} port 22: no SSH server answered \\(${dialErrorLimit} attempts; the last one accepted the connection but sent no SSH greeting and key within ${perDialTimeout}s\\)`));
        assertNoStepRan(up);
        assert.equal(silentSockets.length, dialErrorLimit, "one connection per attempt");
        // Each attempt's own wait, from the listener's side: the workstation hung up after perDialTimeout, not before, and not much later.
        await waitFor("the attempts' connections to close", () => silentWaits.length === dialErrorLimit, 30, 100);
        console.log(`#   each attempt held its connection ${silentWaits.map((w) => `${w.toFixed(1)} s`).join(", ")}`);
        for (const wait of silentWaits) {
            assert.ok(wait >= perDialTimeout - 0.5 && wait < perDialTimeout + 10, `an attempt waited ${wait} s, perDialTimeout ${perDialTimeout} s`);
        }
        assert.ok(up.seconds < checking + ENGINE_SECONDS, `${up.seconds} s, bound ${checking + ENGINE_SECONDS} s`);
    });

    test("the SSH connection is cut while apt installs: up fails, the next up converges", async () => {
        stack.configure(config());
        assert.ok(!postfixInstalled(), "no postfix yet");
        const up = upInBackground();
        const started = Date.now();
        await waitFor("dpkg run in the host", () => hostProcesses().some(isDpkg), 300, 100, up.settled);
        const cutAt = seconds(started);
        assert.ok(cutSsh() > 0, "there was a session to cut");
        const first = await up.done;
        const leftRunning = hostProcesses().filter(isAptOrDpkg).length;
        console.log(`# cut mid-install: dpkg seen ${cutAt.toFixed(1)} s into pulumi up; up failed after ${first.seconds.toFixed(1)} s; ${leftRunning} apt/dpkg processes still running on the host`);
        console.log(errorLines(first));
        assert.notEqual(first.status, 0, "the cut fails the run");
        assert.match(first.stdout + first.stderr, /mx-install/);

        const second = stack.up();
        console.log(`# the next pulumi up converged in ${second.seconds.toFixed(1)} s`);
        await assertConverged();
    });

    // Where a reboot in the middle of an install leaves dpkg, each cut on dpkg's own state, not
    // after a guessed time: mid-unpack, one package half-installed (only unpacking it again
    // repairs it); while configuring, every package of the run unpacked, some not yet configured.
    const cutPoints = [
        { when: "while dpkg unpacks", state: /in a mess|half-installed/, running: (p: Proc) => isDpkg(p) && p.args.includes("--unpack") },
        { when: "while dpkg configures", state: /unpacked but not yet configured/, running: (p: Proc) => isDpkg(p) && p.args.includes("--configure") },
    ];
    for (const cut of cutPoints) test(`the connection is cut and apt killed ${cut.when}: dpkg is left interrupted, the next up repairs it`, async () => {
        freshHost();
        const up = upInBackground();
        await waitFor(`dpkg ${cut.when}`, () => hostProcesses().some(cut.running) && cut.state.test(dpkgAudit()), 300, 100, up.settled);
        const killed = cutSsh(true);
        const first = await up.done;
        assert.notEqual(first.status, 0, "the cut fails the run");
        assert.equal(hostProcesses().filter(isAptOrDpkg).length, 0, "no apt or dpkg left running");
        const audit = dpkgAudit();
        console.log(`# killed ${killed} processes ${cut.when}; dpkg --audit now says:\n${audit.split("\n").slice(0, 4).map((l) => `#   ${l}`).join("\n")}`);
        assert.notEqual(audit, "", "dpkg is left half-done");
        assert.match(hostSh(name, "DEBIAN_FRONTEND=noninteractive apt-get -q -y install postfix").stderr, /dpkg was interrupted/, "plain apt-get refuses to run");

        const second = stack.up();
        console.log(`# the next pulumi up repaired dpkg and converged in ${second.seconds.toFixed(1)} s`);
        await assertConverged();
    });

    test("the connection is cut while the deploy check has XCLIENT open: the permission is withdrawn, the next up converges", async () => {
        stack.configure(config({ messageSizeLimit: 20971520 }));
        const up = upInBackground();
        const mainCf = join(host.rootDir, "etc", "postfix", "main.cf");
        const probing = () => readFileSync(mainCf, "utf8").includes("smtpd_authorized_xclient_hosts");
        await waitFor("XCLIENT window of the deploy check", probing, 300, 10, up.settled);
        const cut = cutSsh();
        const first = await up.done;
        assert.ok(cut > 0, "there was a session to cut");
        assert.notEqual(first.status, 0, "the cut fails the run");
        assert.match(first.stdout + first.stderr, /mx-service/);
        // The host script restores in its EXIT trap; it goes on without the workstation.
        await eventually(name, "! postconf -n | grep -q smtpd_authorized_xclient_hosts");
        const planned = stack.plannedChanges();
        console.log(`# cut in the XCLIENT window; up failed after ${first.seconds.toFixed(1)} s; next up plans ${JSON.stringify(planned)}`);
        assert.equal(planned["mx-service"], "update", "the failed check runs again");
        stack.up();
        assert.ok(ehlo().includes("250-SIZE 20971520"));
        await assertConverged();
    });

    test("another apt run holds the dpkg lock: the install waits, then succeeds once it is free", async () => {
        freshHost();
        const holder = await holdAptLocks(600);
        const up = upInBackground();
        // Released only once the install's apt has said it is waiting (its output, on the host), so
        // that the wait is seen whatever the engine's speed before it.
        await waitFor("apt waiting for the lock", aptSaysItWaits, 300, 100, up.settled);
        const released = new Promise<number>((resolve) => holder.child.on("exit", () => resolve(Date.now())));
        holder.child.kill();
        const releasedAt = await released;
        // When the install's own dpkg first runs: only after the lock is free.
        let dpkgAt = 0;
        const dpkgSeen = () => {
            if (hostProcesses().some(isDpkg)) dpkgAt = Date.now();
            return dpkgAt > 0;
        };
        await waitFor("dpkg run in the host", dpkgSeen, 300, 100, up.settled);
        const result = await up.done;
        console.log(`# lock held ${((releasedAt - holder.since) / 1000).toFixed(1)} s, until apt said it waited; the install's dpkg started ${((dpkgAt - releasedAt) / 1000).toFixed(1)} s after the release; pulumi up took ${result.seconds.toFixed(1)} s`);
        assert.equal(result.status, 0, result.stdout + result.stderr);
        assert.ok(dpkgAt >= releasedAt, "dpkg did not run while the lock was held");
        assert.match(result.stdout, new RegExp(`Could not get lock /var/lib/dpkg/lock-frontend\\. It is held by process ${holder.pid} \\(perl\\)`), "apt said why it waited");
        await assertConverged();
    });

    test("the dpkg lock held past aptLockTimeoutSeconds: up fails at the bound with a clear message, then converges", async () => {
        const lock = 5;
        freshHost({ aptLockTimeoutSeconds: lock });
        const holder = await holdAptLocks(600);
        const running = upInBackground();
        // apt's own wait, timed on the host: from its first sight to its exit (sampled, so at most a little short).
        const isInstall = (p: Proc) => /^apt-get .*DPkg::Lock::Timeout=\d+ install /.test(p.args);
        await waitFor("apt-get install on the host", () => hostProcesses().some(isInstall), 300, 20, running.settled);
        const aptSeen = Date.now();
        await waitFor("apt-get install to give up", () => !hostProcesses().some(isInstall), 300, 20);
        const aptWaited = (Date.now() - aptSeen) / 1000;
        const up = await running.done;
        console.log(`# aptLockTimeoutSeconds ${lock}: apt waited ${aptWaited.toFixed(1)} s; pulumi up failed after ${up.seconds.toFixed(1)} s`);
        console.log(errorLines(up));
        const text = up.stdout + up.stderr;
        assert.notEqual(up.status, 0);
        assert.ok(aptWaited >= lock - 1, `apt waited for the lock: ${aptWaited} s, bound ${lock} s`);
        assert.ok(aptWaited < lock + 10, `apt gave up at the bound: ${aptWaited} s, bound ${lock} s`);
        assert.ok(up.seconds < lock + ENGINE_SECONDS, `${up.seconds} s, bound ${lock + ENGINE_SECONDS} s`);
        assert.match(text, new RegExp(`could not install postfix \\(apt waited up to ${lock}s for the dpkg lock`));
        assert.match(text, new RegExp(`Could not get lock /var/lib/dpkg/lock-frontend\\. It is held by process ${holder.pid} \\(perl\\)`));
        assert.doesNotMatch(text, /lists\/lock/, "no package list refresh after a lock timeout: the bound is the user's");
        // Nothing half-done: no package touched, no later step ran.
        assert.ok(!postfixInstalled(), "postfix is not installed");
        assert.equal(dpkgAudit(), "");
        assert.notEqual(hostSh(name, "test -e /etc/ssl/private/server.key.insecure").status, 0, "no later step ran");

        holder.child.kill();
        await waitFor("lock holder to exit", () => holder.child.exitCode !== null || holder.child.signalCode !== null, 30, 100);
        stack.up();
        await assertConverged();
    });

    test("drift: hand edits on the host are reported by verify, and the next change rewrites main.cf whole", async () => {
        const lock = 5; // as deployed by the previous test
        hostOk(name, "postconf -e message_size_limit=1234 smtpd_client_restrictions=permit && postfix reload");
        // A reload is asynchronous: ask until the new smtpd answers (bounded).
        let drifted = outsiderRcpt();
        for (const deadline = Date.now() + 30_000; /554 5\.7\.1 .*Client host rejected/.test(drifted) && Date.now() < deadline; drifted = outsiderRcpt()) await sleep(500);
        console.log(`# drifted: an outsider asking for alice gets: ${drifted}`);
        assert.doesNotMatch(drifted, /554 5\.7\.1 .*Client host rejected/, "the hand edit really opened the client restrictions");

        const report = stack.verify(lanClient);
        const failures = Object.fromEntries(report.servers[0].checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]));
        for (const [check, detail] of Object.entries(failures)) console.log(`# verify: ✗ ${check}  ${detail}`);
        assert.match(failures["main.cf drift"] ?? "", /message_size_limit: expected "52428800", seen "1234"/);
        assert.match(failures["main.cf drift"], /smtpd_client_restrictions: expected "permit_mynetworks, reject", seen "permit"/);
        assert.match(failures["size limit"] ?? "", /SIZE 1234/);
        // A plain preview reads nothing from the host (a refresh does: test/e2e/drift.test.ts).
        assert.equal(stack.run(["preview", "--expect-no-changes"]).status, 0);

        stack.configure(config({ aptLockTimeoutSeconds: lock, messageSizeLimit: 10485760 }));
        stack.up();
        assert.equal(hostOk(name, "postconf -h message_size_limit smtpd_client_restrictions"), "10485760\npermit_mynetworks, reject\n");
        assert.match(outsiderRcpt(), /554 5\.7\.1 .*Client host rejected/);
        const clean = stack.verify(lanClient);
        assert.equal(clean.failed, 0, JSON.stringify(clean.servers[0].checks.filter((c) => !c.ok)));
    });
});

