// The host scripts: shellcheck-clean, and the one write-if-differs mechanism run for real with sh.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { AddressInfo, createServer, Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
    ManagedFile, MANAGED_FILES, parseHostFacts, removeFileArgs, writeFileArgs,
} from "../../components/core/scripts";
import { remoteCommand, remoteScript, shq } from "../../components/core/shell";
import { shellBundle, shellFile } from "../../components/shell-files";
import { mailPasswordProblem, MAX_MAIL_PASSWORD_BYTES } from "../../components/core/validate";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";


const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

/** Runs write-file.sh as a file step does, with `state` as the request folder and `bin` first on PATH. */
function writeFile(file: ManagedFile, state: string, content: string, options: { aliases?: string[]; bin?: string } = {}) {
    const env = { ...process.env, PATH: options.bin ? `${options.bin}:${process.env.PATH}` : process.env.PATH };
    return spawnSync("sh", ["-c", shellFile("write-file.sh"), "write-file.sh", ...writeFileArgs(file, options.aliases, state)], { input: content, encoding: "utf8", env });
}


/** An SMTP server on loopback that greets and says goodbye: what the deploy check's banner test reads. */
async function greetingServer(): Promise<{ server: Server; port: number }> {
    const server = createServer((socket) => {
        socket.write("220 mx.e2e.test ESMTP\r\n");
        socket.on("data", () => socket.end("221 2.0.0 Bye\r\n"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { server, port: (server.address() as AddressInfo).port };
}
/** Runs service.sh with ARGS, the stand-ins of DIR first on PATH and PROBE as its stdin; its exit status and output. */
async function runService(dir: string, args: string[], probe: string): Promise<{ status: number | null; output: string }> {
    const child = spawn("bash", ["-c", shellFile("service.sh"), "pulumi-postfix", ...args], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    child.stdin.end(probe);
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
    return { status, output };
}
/** A relay probe that reports a server refusing relay, with main.cf as written. */
const PASSING_PROBE = "printf 'xclient=220 2.0.0 Ok\\nrcpt=554 5.7.1 Relay access denied\\nmain_cf=1 1\\n'";

test("the host scripts pass shellcheck as the command lines the steps send", { skip: !shellcheck && !process.env.CI && "shellcheck is not installed (apt-get install shellcheck); CI installs it" }, () => {
    assert.ok(shellcheck, "CI must have shellcheck");
    const dir = mkdtempSync(join(tmpdir(), "shellcheck-"));
    // The shell files with their arguments, as the steps send them (a hostile-looking argument
    // included). The outer line nests quotes on purpose: there only warnings and errors count.
    const sent: Array<[string, "sh" | "bash", string[]]> = [
        ["service.sh", "bash", ["apply", "/var/lib/pulumi-postfix", "digest 'x' $(y)", "25 587", "dovecot", "/etc/postfix/main.cf /etc/aliases", "192.168.1.100", "[fd00::25]"]],
        ["service.sh", "bash", ["stop"]],
        ["install.sh", "sh", ["install", "120", "/var/lib/pulumi-postfix", "postfix postfix-doc libsasl2-modules", "fribeiro ops"]],
        ["install.sh", "sh", ["remove", "/var/lib/pulumi-postfix"]],
        ["mail-passwords.sh", "sh", ["write", "/etc/dovecot/pulumi-postfix.passwd", "/var/lib/pulumi-postfix"]],
        ["mail-passwords.sh", "sh", ["remove", "/etc/dovecot/pulumi-postfix.passwd", "/var/lib/pulumi-postfix"]],
        ...Object.values(MANAGED_FILES).flatMap((file): Array<[string, "sh", string[]]> => [
            ["write-file.sh", "sh", writeFileArgs(file, ["postmaster", "it's"])],
            ["write-file.sh", "sh", removeFileArgs(file)],
        ]),
    ];
    const folder = "/var/lib/pulumi-postfix/scripts/0123456789abcdef";
    const lines: Array<[string, string]> = [
        ...sent.map(([name, shell, args]): [string, string] => [`${name} ${args.join(" ")}`, remoteScript(`${folder}/${name}`, "deploy", shell, args)]),
        ...["install", "remove"].map((verb): [string, string] => [`install-scripts.sh ${verb}`, remoteCommand(shellFile("install-scripts.sh"), "deploy", "sh", [verb, folder])]),
    ];
    for (const [what, line] of lines) {
        const file = join(dir, "script.sh");
        writeFileSync(file, line);
        const result = spawnSync("shellcheck", ["-s", "bash", "-S", "warning", file], { encoding: "utf8" });
        assert.equal(result.status, 0, `${what} (sudo command line):\n${result.stdout}`);
    }
});

test("the shell files (components/shell, the test hosts, the engine build, scripts/) pass shellcheck", { skip: !shellcheck && !process.env.CI && "shellcheck is not installed" }, () => {
    const root = join(__dirname, "..", "..", "..");
    const files = [
        ...readdirSync(join(root, "components", "shell")).filter((f) => f.endsWith(".sh")).map((f) => join(root, "components", "shell", f)),
        join(root, "test", "hosts", "testhost.sh"), join(root, "tools", "pulumi-engine", "build.sh"),
        ...readdirSync(join(root, "scripts")).filter((f) => f.endsWith(".sh")).map((f) => join(root, "scripts", f)),
    ];
    assert.ok(files.some((f) => f.endsWith("ssh-reachable.sh")));
    for (const file of files) {
        const result = spawnSync("shellcheck", [file], { encoding: "utf8" });
        assert.equal(result.status, 0, `${file}:\n${result.stdout}`);
    }
});

test("the SSH check: a port where nothing listens fails at once, naming host and port, after every attempt", () => {
    const r = spawnSync("sh", ["-c", shellFile("ssh-reachable.sh")], {
        encoding: "utf8",
        env: { ...process.env, PROBE_HOST: "127.0.0.1", PROBE_PORT: "1", PROBE_TIMEOUT: "2", PROBE_ATTEMPTS: "2", PROBE_HOST_KEY: "" },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^pulumi-postfix: 127\.0\.0\.1 port 1: no SSH server answered \(2 attempts; the last one refused the connection or could not be reached\)/);
});

test("the service step starts, restarts or reloads postfix as the file steps asked, then checks it", async () => {
    // Stand-ins: postfix(1) that logs what it is asked and is "running" once started; an SMTP
    // listener on loopback that greets; a relay probe that reports a refusal.
    const dir = mkdtempSync(join(tmpdir(), "service-"));
    const state = join(dir, "state");
    const log = join(dir, "log");
    const running = join(dir, "running");
    writeFileSync(join(dir, "postfix"), [
        "#!/bin/sh",
        `echo "postfix $*" >>${shq(log)}`,
        'case "$1" in',
        `status) [ -e ${shq(running)} ] ;;`,
        `start) touch ${shq(running)} ;;`,
        `stop) rm -f ${shq(running)} ;;`,
        "esac",
        "",
    ].join("\n"), { mode: 0o755 });
    const { server, port } = await greetingServer();
    const probe = PASSING_PROBE;
    const run = async (request?: "reload" | "restart", probeScript = probe) => {
        rmSync(log, { force: true });
        mkdirSync(state, { recursive: true });
        if (request) writeFileSync(join(state, request), "");
        const child = spawn("bash", ["-c", shellFile("service.sh"), "pulumi-postfix", "apply", state, "digest", String(port), "none", "", "127.0.0.1"],
            { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
        child.stdin.end(probeScript);
        let stdout = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
        const calls = readFileSync(log, "utf8").trim().split("\n").filter((c) => c !== "postfix status");
        return { status, stdout: stdout.trim(), calls, left: readdirSync(state).filter((f) => f !== "main-cf.lock" && f !== "original") };
    };
    try {
        const checked = `checks passed: postfix running, 220 on 127.0.0.1:${port}, relay refused (554)`;
        assert.deepEqual(await run("reload"), { status: 0, stdout: `postfix started; ${checked}`, calls: ["postfix start"], left: [] }, "down: started, whatever was asked");
        assert.deepEqual(await run("reload"), { status: 0, stdout: `postfix reloaded; ${checked}`, calls: ["postfix reload"], left: [] });
        assert.deepEqual(await run("restart"), { status: 0, stdout: `postfix restarted; ${checked}`, calls: ["postfix stop", "postfix start"], left: [] });
        assert.deepEqual(await run(), { status: 0, stdout: `postfix left running (no reload needed); ${checked}`, calls: [], left: [] });
        // A deferral is no relay either (Debian's own main.cf, restored after a failed first deployment, defers).
        const deferred = await run(undefined, "printf 'xclient=220 2.0.0 Ok\\nrcpt=454 4.7.1 Relay access denied\\nmain_cf=1 1\\n'");
        assert.deepEqual([deferred.status, deferred.stdout], [0, `postfix left running (no reload needed); ${checked.replace("(554)", "(454)")}`]);
        const silent = await run(undefined, "exit 3");
        assert.equal(silent.status, 1);
        assert.match(silent.stdout, /^FAIL relay probe: it exited 3 with no message$/m, "a probe that fails without a word still has a reason");
        rmSync(running);
        writeFileSync(join(dir, "postfix"), `#!/bin/sh\necho "postfix $*" >>${shq(log)}\n[ "$1" != start ] || { echo 'fatal: bad config' >&2; exit 1; }\nexit 1\n`, { mode: 0o755 });
        const failed = await run("reload");
        assert.equal(failed.status, 1, "postfix did not start: the step fails");
        assert.match(failed.stdout, /^FAIL postfix start failed: fatal: bad config/m, "a failed start is a failed check, with its reason");
        assert.deepEqual(failed.left, ["reload"], "nothing to roll back: the request stays for the next run");
    } finally {
        server.close();
    }
});

test("a failed deploy check rolls back to the last configuration that passed, keeps the stack's for the next run, and says so", async () => {
    // Stand-ins: postfix(1) that is always running; a greeting SMTP listener; a relay probe that
    // finds an open relay while the managed file says "open".
    const dir = mkdtempSync(join(tmpdir(), "rollback-"));
    const state = join(dir, "state");
    const file: ManagedFile = { path: join(dir, "etc", "main.cf"), mode: "0644", kind: "plain" };
    writeFileSync(join(dir, "postfix"), `#!/bin/sh
echo "postfix $*" >>${shq(join(dir, "log"))}
`, { mode: 0o755 });
    // No postconf: the check after a rollback keeps the addresses and ports it was given.
    writeFileSync(join(dir, "postconf"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const server = createServer((socket) => {
        socket.write("220 mx.e2e.test ESMTP\r\n");
        socket.on("data", () => socket.end("221 2.0.0 Bye\r\n"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const openProbe = `if grep -q open ${shq(file.path)}; then r='250 2.1.5 Ok'; else r='554 5.7.1 Relay access denied'; fi; printf 'xclient=220 2.0.0 Ok\\nrcpt=%s\\nmain_cf=1 1\\n' "$r"`;
    const service = (probe = openProbe) => runService(dir, ["apply", state, "digest", String(port), "none", file.path, "127.0.0.1"], probe);
    const live = () => readFileSync(file.path, "utf8");
    try {
        mkdirSync(join(dir, "etc"));
        assert.equal(writeFile(file, state, "closed\n").status, 0);
        assert.equal((await service()).status, 0, "the first configuration passes");
        assert.deepEqual(readdirSync(state).filter((f) => f !== "main-cf.lock" && f !== "original"), [], "passed: no records left");

        assert.equal(writeFile(file, state, "open\n").status, 0);
        const failed = await service();
        assert.equal(failed.status, 1);
        assert.match(failed.output, /^FAIL OPEN RELAY: an outside client got '250 2\.1\.5 Ok'/m);
        assert.match(failed.output, new RegExp(`^rolled back at \\d\\d:\\d\\d:\\d\\d UTC, \\d+ ms after the service step started: restored ${file.path}; checks passed again$`, "m"));
        assert.match(failed.output, /the server failed 1 check\(s\) after the deployment \(above\), so it was rolled back to the last configuration that passed/);
        assert.equal(live(), "closed\n", "the last good file is live again");

        // The same stack again: the rejected content comes back, fails, and is rolled back again.
        const again = await service();
        assert.equal(again.status, 1);
        assert.match(again.output, /OPEN RELAY/);
        assert.equal(live(), "closed\n");

        // The stack fixed: the file step finds the live file as wanted, and the pending copy goes.
        const fixed = writeFile(file, state, "closed\n");
        assert.match(fixed.stdout, /^unchanged: /m);
        const passed = await service();
        assert.equal(passed.status, 0, passed.output);
        assert.deepEqual(readdirSync(state).filter((f) => f !== "main-cf.lock" && f !== "original"), []);

        // The last good configuration itself fails (the host broke on its own): said plainly, no loop.
        assert.equal(writeFile(file, state, "open\n").status, 0);
        const broken = await service("exit 3");
        assert.equal(broken.status, 1);
        assert.match(broken.output, /^after the rollback:\nok postfix is running/m);
        assert.match(broken.output, /and the configuration from before it, restored \(.*main\.cf\), fails too \(above\): the host changed on its own\? Nothing more is rolled back/);
        assert.equal(live(), "closed\n");
    } finally {
        server.close();
    }
});

test("after a rollback the check tests what was restored (its addresses, no port 587), and a file whose step left the stack is not reinstalled", async () => {
    // Stand-ins: postfix(1) always running; postconf(1) reading the stand-in main.cf and master.cf
    // as Postfix would; a greeting SMTP listener on 127.0.0.1 only; a relay probe that refuses.
    const dir = mkdtempSync(join(tmpdir(), "restored-"));
    const state = join(dir, "state");
    const managed = (name: string): ManagedFile => ({ path: join(dir, "etc", name), mode: "0644", kind: "plain" });
    const [mainCf, masterCf, dovecotConf] = [managed("main.cf"), managed("master.cf"), managed("dovecot.conf")];
    writeFileSync(join(dir, "postfix"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    writeFileSync(join(dir, "postconf"), [
        "#!/bin/sh",
        'case "$1 $2" in',
        `"-h inet_interfaces") sed -n 's/^inet_interfaces = //p' ${shq(mainCf.path)} ;;`,
        `"-M submission/inet") grep '^submission' ${shq(masterCf.path)} || true ;;`,
        "*) exit 1 ;;",
        "esac",
        "",
    ].join("\n"), { mode: 0o755 });
    const { server, port } = await greetingServer();
    const probe = PASSING_PROBE;
    const service = (ports: string, files: ManagedFile[], addresses: string[]) =>
        runService(dir, ["apply", state, "digest", ports, "none", files.map((f) => f.path).join(" "), ...addresses], probe);
    try {
        mkdirSync(join(dir, "etc"));
        writeFile(mainCf, state, "inet_interfaces = 127.0.0.1\n");
        writeFile(masterCf, state, "smtp inet\n");
        assert.equal((await service(String(port), [mainCf, masterCf], ["127.0.0.1"])).status, 0, "the first configuration passes");

        // A run that adds port 587 (with Dovecot's file) and a second address, and fails its check.
        writeFile(mainCf, state, "inet_interfaces = 127.0.0.1, 127.0.0.2\n");
        writeFile(masterCf, state, "smtp inet\nsubmission inet\n");
        writeFile(dovecotConf, state, "auth only\n");
        const failed = await service(`${port} 587`, [mainCf, masterCf, dovecotConf], ["127.0.0.1", "127.0.0.2"]);
        assert.equal(failed.status, 1);
        assert.match(failed.output, new RegExp(`^FAIL 127\\.0\\.0\\.2:${port} does not answer$`, "m"));
        assert.match(failed.output, /so it was rolled back to the last configuration that passed, which passes again/, failed.output);
        assert.doesNotMatch(failed.output, /fails too|the host changed on its own/);
        assert.ok(!existsSync(dovecotConf.path), "Dovecot's file was rolled back too");

        // The admin turns port 587 off: main.cf and master.cf are written as the stack wants (their
        // pending copies go), and Dovecot's file step leaves the stack: its pending copy must not return.
        writeFile(mainCf, state, "inet_interfaces = 127.0.0.1\n");
        writeFile(masterCf, state, "smtp inet\n");
        const off = await service(String(port), [mainCf, masterCf], ["127.0.0.1"]);
        assert.equal(off.status, 0, off.output);
        assert.doesNotMatch(off.output, /again with/, off.output);
        assert.ok(!existsSync(dovecotConf.path), "no pending copy of a step that left the stack is installed");
        assert.deepEqual(readdirSync(state).filter((f) => f !== "main-cf.lock" && f !== "original"), [], "and none is kept");
    } finally {
        server.close();
        rmSync(dir, { recursive: true, force: true });
    }
});

/** A host script with its host paths (and the like) replaced by the test's own. */
function hostScript(name: string, replacements: Array<[string, string]>): string {
    return replacements.reduce((text, [from, to]) => {
        assert.ok(text.includes(from), `${name} no longer has ${from}`);
        return text.replace(from, to);
    }, shellFile(name));
}
const mainCfLock = (lock: string, seconds = 60): Array<[string, string]> => [
    ["lock=/var/lib/pulumi-postfix/main-cf.lock", `lock=${shq(lock)}`], ["lock_wait=60", `lock_wait=${seconds}`],
];
/** relay-probe.sh with main.cf, the main.cf lock and port 25 replaced by the test's own. */
function relayProbeScript(mainCf: string, port: number, lock: string, seconds = 60): string {
    return hostScript("relay-probe.sh", [
        ["main_cf=/etc/postfix/main.cf", `main_cf=${shq(mainCf)}`],
        ['"/dev/tcp/$host/25"', `"/dev/tcp/$host/${port}"`],
        ...mainCfLock(lock, seconds),
    ]);
}

test("the relay probe lists an IPv6 address in brackets for postfix, and connects to it bare", async (t) => {
    // Stand-ins: postconf(1) that records its arguments, postfix(1) that is running and reloads; an
    // SMTP server on ::1 that accepts XCLIENT and refuses the relay.
    const dir = mkdtempSync(join(tmpdir(), "relay-probe-"));
    const log = join(dir, "postconf.log");
    const mainCf = join(dir, "main.cf");
    writeFileSync(mainCf, "mynetworks = [::1]/128\n");
    writeFileSync(join(dir, "postconf"), `#!/bin/sh\necho "$*" >>${shq(log)}\n`, { mode: 0o755 });
    writeFileSync(join(dir, "postfix"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const seen: string[] = [];
    const server = createServer((socket) => {
        socket.write("220 mx.e2e.test ESMTP\r\n");
        socket.on("data", (chunk) => {
            for (const line of chunk.toString().split("\r\n").filter(Boolean)) {
                seen.push(line);
                if (line.startsWith("XCLIENT")) socket.write("220 2.0.0 Ok\r\n");
                else if (line.startsWith("RCPT")) socket.write("554 5.7.1 Relay access denied\r\n");
                else if (line === "QUIT") socket.end("221 2.0.0 Bye\r\n");
                else socket.write("250 ok\r\n");
            }
        });
    });
    const listening = await new Promise<boolean>((resolve) => server.once("error", () => resolve(false)).listen(0, "::1", () => resolve(true)));
    // CI machines have ::1: there a missing IPv6 loopback fails the test rather than skipping it.
    if (!listening && !process.env.CI) return t.skip("no IPv6 loopback here");
    assert.ok(listening, "CI must have an IPv6 loopback (::1)");
    try {
        const child = spawn("bash", ["-c", relayProbeScript(mainCf, (server.address() as AddressInfo).port, join(dir, "main-cf.lock")), "relay-probe", "[::1]"],
            { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
        assert.equal(status, 0, stderr);
        assert.match(stdout, /^xclient=220 2\.0\.0 Ok$/m, "it reached the server at the bare address");
        assert.match(stdout, /^rcpt=554 5\.7\.1 Relay access denied$/m);
        assert.ok(seen.includes("XCLIENT ADDR=192.0.2.1 NAME=relay-check.invalid"), seen.join("; "));
        const calls = readFileSync(log, "utf8").trim().split("\n");
        assert.ok(calls.includes("-e smtpd_authorized_xclient_hosts=[::1] 127.0.0.1"), calls.join("; "));
        assert.ok(calls.includes("-X smtpd_authorized_xclient_hosts"), "withdrawn afterwards");
    } finally {
        server.close();
    }
});

test("main.cf has one lock: while another run holds it, the relay probe and the main.cf write wait, then give up saying why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "main-cf-lock-"));
    const lock = join(dir, "state", "main-cf.lock");
    const log = join(dir, "postconf.log");
    mkdirSync(join(dir, "state"));
    writeFileSync(join(dir, "postconf"), `#!/bin/sh\necho "$*" >>${shq(log)}\n`, { mode: 0o755 });
    writeFileSync(join(dir, "postfix"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const mainCf = join(dir, "main.cf");
    writeFileSync(mainCf, "live\n");
    // The other run: holds the lock until its standard input closes.
    const holder = spawn("bash", ["-c", `exec 9>${shq(lock)}; flock 9; echo locked; read -r _`]);
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    try {
        const env = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
        const probe = spawnSync("bash", ["-c", relayProbeScript(mainCf, 1, lock, 1), "relay-probe", "127.0.0.1"], { encoding: "utf8", env });
        assert.equal(probe.status, 1);
        assert.equal(probe.stderr, "another pulumi-postfix run or npm run verify holds the main.cf lock: waited 1 s\n");
        assert.ok(!existsSync(log), "main.cf was not touched");

        const write = spawnSync("sh", ["-c", hostScript("write-file.sh", mainCfLock(lock, 1)), "write-file.sh", ...writeFileArgs({ ...MANAGED_FILES.mainCf, path: mainCf }, [], join(dir, "state"))],
            { input: "new\n", encoding: "utf8", env });
        assert.equal(write.status, 1);
        assert.equal(write.stderr, "pulumi-postfix: another pulumi-postfix run or npm run verify holds the main.cf lock: waited 1 s\n");
        assert.equal(readFileSync(mainCf, "utf8"), "live\n");
    } finally {
        holder.stdin.end();
    }
});

test("shq quotes anything as one word", () => {
    for (const value of ["plain", "it's", "$(touch /tmp/pwned)", "`id`", "a b\tc", "'; rm -rf / #", "\\\"", ""]) {
        assert.equal(execFileSync("sh", ["-c", `printf %s ${shq(value)}`], { encoding: "utf8" }), value);
    }
});

test("remote commands run as root directly, others through sudo -n", () => {
    assert.equal(remoteCommand("set -eu\necho hi\n", "root"), `sh -c 'set -eu\necho hi\n'`);
    assert.match(remoteCommand("true", "deploy"), /^sudo -n sh -c /);
});

test("write-if-differs: writes, keeps the previous file (not for secrets), requests a reload, and is idempotent", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-file-"));
    const state = join(dir, "state");
    const file: ManagedFile = { path: join(dir, "etc", "secret.key"), mode: "0600", kind: "plain" };
    const run = (content: string) => writeFile(file, state, content);

    const first = run("one\n");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^changed: .*secret\.key \(reload requested\) at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m, "its time makes each run's line its own");
    assert.equal(readFileSync(file.path, "utf8"), "one\n");
    assert.equal(statSync(file.path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "etc")).mode & 0o777, 0o700, "a new key directory is private");
    assert.ok(existsSync(join(state, "reload")));

    const again = run("one\n");
    assert.match(again.stdout, /^unchanged: /m);

    // Same content, but made readable by all (drift): the mode is set back in place; nothing reloads.
    chmodSync(file.path, 0o644);
    rmSync(join(state, "reload"));
    const mode = run("one\n");
    assert.match(mode.stdout, /^changed: .*secret\.key \(mode 0600, owner root:root set again\) at /m);
    assert.equal(statSync(file.path).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(state, "reload")), "a mode needs no reload");
    assert.match(run("one\n").stdout, /^unchanged: /m);

    const second = run("two\n");
    assert.match(second.stdout, /^changed: /m);
    assert.equal(readFileSync(file.path, "utf8"), "two\n");
    assert.ok(!existsSync(`${file.path}.previous`), "a secret leaves no old copy behind");

    // A public file keeps the one it replaced.
    const conf: ManagedFile = { path: join(dir, "etc", "mailname"), mode: "0644", kind: "plain" };
    for (const content of ["home.lan\n", "lab.lan\n"]) writeFile(conf, state, content);
    assert.equal(readFileSync(`${conf.path}.previous`, "utf8"), "home.lan\n");
    assert.equal(readFileSync(conf.path, "utf8"), "lab.lan\n");

    // Destroyed: the file, its old copy and its database go.
    writeFileSync(`${conf.path}.db`, "");
    const remove = (managed: ManagedFile) => spawnSync("sh", ["-c", shellFile("write-file.sh"), "write-file.sh", ...removeFileArgs(managed, state)], { encoding: "utf8" });
    const removed = remove(conf);
    assert.equal(removed.status, 0, removed.stderr);
    assert.deepEqual(readdirSync(join(dir, "etc")), ["secret.key"]);
});

test("write-if-differs: a file found before the first write (the guide's key) is kept, byte for byte, and destroy puts it back", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-file-"));
    const state = join(dir, "state");
    const key: ManagedFile = { path: join(dir, "private", "server.key.insecure"), mode: "0600", kind: "plain" };
    mkdirSync(join(dir, "private"), { mode: 0o700 });
    writeFileSync(key.path, "the admin's key\n", { mode: 0o640 });
    for (const content of ["stack key one\n", "stack key two\n"]) assert.equal(writeFile(key, state, content).status, 0);
    assert.equal(readFileSync(key.path, "utf8"), "stack key two\n");
    const kept = readdirSync(join(state, "original"));
    assert.equal(kept.length, 1, "one copy: the file as the component found it, not its own earlier versions");
    assert.equal(statSync(join(state, "original")).mode & 0o777, 0o700, "the copies are root's alone");
    const removed = spawnSync("sh", ["-c", shellFile("write-file.sh"), "write-file.sh", ...removeFileArgs(key, state)], { encoding: "utf8" });
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /^restored: .*server\.key\.insecure \(as it was before the component\)$/m);
    assert.equal(readFileSync(key.path, "utf8"), "the admin's key\n");
    assert.equal(statSync(key.path).mode & 0o777, 0o640, "and its mode");
    // A file the component created goes.
    const created: ManagedFile = { path: join(dir, "created.pem"), mode: "0644", kind: "plain" };
    writeFile(created, state, "new\n");
    spawnSync("sh", ["-c", shellFile("write-file.sh"), "write-file.sh", ...removeFileArgs(created, state)], { encoding: "utf8" });
    assert.ok(!existsSync(created.path));
});

test("write-if-differs: a failing check leaves the live file untouched, and asks for no reload", () => {
    const dir = mkdtempSync(join(tmpdir(), "write-file-"));
    const file: ManagedFile = { ...MANAGED_FILES.aliases, path: join(dir, "aliases") };
    writeFileSync(file.path, "live\n");
    const result = writeFile(file, join(dir, "state"), "postmaster: root\nroot: nosuchuser-pp\n");
    assert.equal(result.status, 1);
    assert.match(result.stderr, /aliases points to users that do not exist on the host: nosuchuser-pp \(add them to mailUsers\)/);
    assert.equal(readFileSync(file.path, "utf8"), "live\n");
    assert.ok(!existsSync(join(dir, "state", "reload")), "no reload requested");
});

test("install facts are parsed, and garbage is refused", () => {
    assert.deepEqual(parseHostFacts("postfix 3.7.11 installed (21 packages), compatibility_level 3.6\n"), { compatibilityLevel: "3.6", mailVersion: "3.7.11" });
    assert.deepEqual(parseHostFacts("Setting up dpkg\npostfix 3.10.5 already installed, compatibility_level 3.6\n"), { compatibilityLevel: "3.6", mailVersion: "3.10.5" });
    assert.throws(() => parseHostFacts("E: dpkg was interrupted"), /unexpected output/);
});

test("install: an interrupted dpkg is configured first, waiting (bounded) while another apt run holds its lock", () => {
    // Stand-ins on PATH: postfix not installed, dpkg --audit reports a half-done run, and
    // `dpkg --configure -a` finds the lock held `busy` times before it succeeds.
    const run = (busy: number, lock: number, halfInstalled = false) => {
        const dir = mkdtempSync(join(tmpdir(), "install-"));
        const log = join(dir, "log");
        const stub = (name: string, ...body: string[]) => writeFileSync(join(dir, name), ["#!/bin/sh", ...body, ""].join("\n"), { mode: 0o755 });
        writeFileSync(join(dir, "busy"), `${busy}\n`);
        const reinstalled = shq(join(dir, "reinstalled"));
        // A package cut in the middle of its unpack: half-installed, reinstall required, until apt installs it again.
        stub("dpkg-query", ...(halfInstalled
            ? [`case "$*" in *Status-Abbrev*) [ -e ${reinstalled} ] && echo 'ii  libexpat1:amd64' || echo 'iHR libexpat1:amd64' ;; esac`] : []), "exit 0");
        stub("dpkg",
            `echo "dpkg $*" >>${shq(log)}`,
            'case "$1" in',
            `--audit) [ -e ${shq(join(dir, "configured"))} ] || echo 'The following packages have been unpacked but not yet configured.' ;;`,
            ...(halfInstalled ? [`--configure) if [ ! -e ${reinstalled} ]; then echo 'dpkg: error processing package libexpat1:amd64 (--configure):' >&2; echo ' package is in a very bad inconsistent state' >&2; exit 1; fi; touch ${shq(join(dir, "configured"))} ;;`] : []),
            `--configure) n=$(cat ${shq(join(dir, "busy"))})`,
            '    if [ "$n" -gt 0 ]; then',
            `        echo $((n - 1)) >${shq(join(dir, "busy"))}`,
            "        echo 'dpkg: error: dpkg frontend lock was locked by another process with pid 42' >&2",
            "        exit 2",
            "    fi",
            `    touch ${shq(join(dir, "configured"))}; echo 'Setting up postfix ...' ;;`,
            "esac");
        stub("debconf-set-selections", "cat >/dev/null", `echo debconf-set-selections >>${shq(log)}`);
        // apt waits for another apt run's lock first, as it reports it: progress lines ended by \r.
        stub("apt-get", `echo "apt-get $*" >>${shq(log)}`, `case "$*" in *--reinstall*) touch ${reinstalled} ;; esac`,
            "printf 'Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (perl)... %ss\\r' 1 2");
        stub("postconf", "echo 3.6");
        const started = Date.now();
        const r = spawnSync("sh", ["-c", shellFile("install.sh"), "install.sh", "install", String(lock), join(dir, "state"), "postfix postfix-doc"], { input: "postfix postfix/main_mailer_type select Internet Site\n", encoding: "utf8", env: { PATH: `${dir}:/usr/bin:/bin` } });
        const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
        return { ...r, calls, seconds: (Date.now() - started) / 1000 };
    };

    const repaired = run(1, 5);
    assert.equal(repaired.status, 0, repaired.stderr);
    assert.deepEqual(repaired.calls.map((c) => c.split(" ").slice(0, 2).join(" ")),
        ["dpkg --audit", "dpkg --configure", "dpkg --configure", "debconf-set-selections", "apt-get -q"], "configured once the lock is free, then installed");
    assert.equal(repaired.stdout.trim().split("\n").filter((line) => !line.startsWith("Setting up")).join("\n"), [
        "apt waited for the dpkg lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (perl)",
        "postfix 3.6 installed (0 packages), compatibility_level 3.6",
    ].join("\n"), "why it waited, once, and one line for the outcome; apt's output not shown");

    // Cut mid-unpack: configure alone fails on the half-installed package; apt installs it again, then dpkg configures the rest.
    const halfDone = run(0, 5, true);
    assert.equal(halfDone.status, 0, halfDone.stderr);
    assert.deepEqual(halfDone.calls.map((c) => c.split(" ").slice(0, 2).join(" ")),
        ["dpkg --audit", "dpkg --configure", "apt-get -q", "dpkg --configure", "debconf-set-selections", "apt-get -q"], "reinstalled, configured, then installed");
    assert.match(halfDone.calls[2], /install --reinstall libexpat1:amd64/);
    assert.match(halfDone.stdout, /^reinstalled what an interrupted dpkg left half-installed: libexpat1:amd64 $/m);

    const stuck = run(1000, 1);
    assert.equal(stuck.status, 1);
    assert.ok(stuck.seconds < 5, `gave up after ${stuck.seconds} s, bound 1 s`);
    assert.match(stuck.stderr, /dpkg frontend lock was locked by another process with pid 42/);
    assert.match(stuck.stderr, /pulumi-postfix: dpkg was interrupted and dpkg --configure -a failed \(above; waited up to 1s for the dpkg lock\)/);
    assert.ok(!stuck.calls.some((c) => /^(debconf|apt-get)/.test(c)), `nothing else ran: ${stuck.calls.join("; ")}`);
});

test("write-if-differs: the relay password's database is built new, never over an old one", () => {
    // A postmap stand-in that records the mode of the database it finds (or "none"), then builds it.
    const dir = mkdtempSync(join(tmpdir(), "sasl-"));
    const bin = join(dir, "bin");
    const log = join(dir, "postmap.log");
    mkdirSync(bin);
    writeFileSync(join(bin, "postmap"), [
        "#!/bin/sh",
        'db="${1#hash:}.db"',
        `if [ -e "$db" ]; then stat -c %a "$db" >>${shq(log)}; else echo none >>${shq(log)}; fi`,
        'echo built >"$db"',
        "",
    ].join("\n"), { mode: 0o755 });
    const file: ManagedFile = { ...MANAGED_FILES.saslPasswd, path: join(dir, "sasl_passwd") };
    // A database made by hand, readable by everyone: postmap would keep its mode while writing the password into it.
    writeFileSync(`${file.path}.db`, "old", { mode: 0o644 });
    const result = writeFile(file, join(dir, "state"), "[smtp.isp.test]:587 user:secret\n", { bin });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), ["none"], "the old database was gone before postmap ran");
    assert.equal(readFileSync(`${file.path}.db`, "utf8"), "built\n");
    assert.equal(statSync(`${file.path}.db`).mode & 0o777, 0o600);
});

test("write-if-differs: virtual alias targets must be users or aliases on the host", () => {
    const dir = mkdtempSync(join(tmpdir(), "virtual-"));
    // postmap, after the file is live, is a stand-in here.
    const bin = join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "postmap"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const file: ManagedFile = { ...MANAGED_FILES.virtualAliases, path: join(dir, "virtual") };
    // The alias names arrive as arguments (/etc/aliases is written at the same time).
    const run = (content: string, aliases: string[] = []) => writeFile(file, join(dir, "state"), content, { aliases, bin });
    const refused = run("# header\ninfo@shop.test root, nosuchuser-pp, sales-pp, x@lab.test\n", ["sales"]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /points to users that do not exist on the host: nosuchuser-pp sales-pp \(add them to mailUsers\)/);
    assert.ok(!existsSync(file.path), "nothing written");
    const accepted = run("info@shop.test root, sales-pp, x@lab.test\n@tickets.test root\n", ["postmaster", "sales-pp"]);
    assert.equal(accepted.status, 0, accepted.stderr);
    assert.ok(existsSync(file.path), "an alias name counts as a local target");
});

test("the scripts step puts every host script in a folder named by their hash, once; a bad name is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "scripts-"));
    const bundle = shellBundle();
    const folder = join(dir, "scripts", bundle.hash);
    const run = (verb: string, input = bundle.text) => spawnSync("sh", ["-c", shellFile("install-scripts.sh"), "install-scripts.sh", verb, folder], { input, encoding: "utf8" });
    const first = run("install");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^\d+ scripts installed in /);
    for (const name of ["install.sh", "write-file.sh", "service.sh", "relay-probe.sh", "install-scripts.sh"]) {
        assert.equal(readFileSync(join(folder, name), "utf8"), shellFile(name), name);
    }
    assert.ok(!existsSync(join(folder, "ssh-reachable.sh")), "the workstation's script is not sent");
    assert.equal(statSync(folder).mode & 0o777, 0o755);
    assert.match(run("install").stdout, /^scripts already in place: /);
    assert.equal(run("remove").status, 0);
    assert.ok(!existsSync(folder));
    const bad = run("install", "../evil.sh ZWNobyBoaQ==\n");
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unexpected script name in the bundle: \.\.\/evil\.sh/);
    assert.deepEqual(readdirSync(join(dir, "scripts")), [], "nothing half-made is left");
});

test("mail passwords: the longest one validation accepts is hashed whole by openssl; a longer one is refused, naming its key", () => {
    const hashOf = (password: string) => execFileSync("openssl", ["passwd", "-6", "-salt", "pulumipostfix", "-stdin"], { input: `${password}\n`, encoding: "utf8" }).trim();
    // 3 bytes per character: the byte length is what counts, not the characters.
    const longest = "\u20ac".repeat(85) + "a";
    assert.equal(Buffer.byteLength(longest), MAX_MAIL_PASSWORD_BYTES);
    assert.equal(mailPasswordProblem(longest), undefined);
    assert.notEqual(hashOf(longest), hashOf(`${longest.slice(0, -1)}b`), "its last byte counts");
    // One byte more is not hashed at all: such a password would never log in.
    assert.equal(hashOf(`${longest}x`), hashOf(longest), "openssl's limit is still 256 bytes");
    const tooLong = "\u20ac".repeat(86);
    assert.equal(tooLong.length, 86, "86 characters: far below any limit in characters");
    const { problems } = readStackConfig({ ...stackConfig("lab"), "postfix:mailPasswords": JSON.stringify({ ana: tooLong, ops: "ops has a fine password" }) });
    assert.deepEqual(problems, ["postfix:mailPasswords.ana is longer than 256 bytes in UTF-8 (an accented letter takes 2, most other scripts 3): "
        + "openssl's SHA512-CRYPT hashes only the first 256, so the whole password would never log in"]);
});

test("mail passwords: only hashes are written, and an unchanged password keeps its hash (same salt)", () => {
    const dir = mkdtempSync(join(tmpdir(), "mail-passwords-"));
    try {
        // The script beside a stand-in write-file.sh that keeps what it was handed.
        writeFileSync(join(dir, "mail-passwords.sh"), shellFile("mail-passwords.sh"));
        writeFileSync(join(dir, "write-file.sh"), 'cat >"$3"\necho "written: $2 $3 $4 $5"\n');
        const live = join(dir, "pulumi-postfix.passwd");
        const run = (input: string) => {
            const r = spawnSync("sh", [join(dir, "mail-passwords.sh"), "write", live, join(dir, "state")], { input, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, `written: mail-passwords ${live} 0640 ${join(dir, "state")}\n`);
            return readFileSync(live, "utf8");
        };
        const first = run("alice correct horse battery\nbob staple with  two  spaces \n");
        assert.doesNotMatch(first, /correct horse|staple/, "no password in clear");
        const hash = (file: string, user: string) => new RegExp(`^${user}:\\{SHA512-CRYPT\\}(\\$6\\$[^$]+\\$\\S+)$`, "m").exec(file)?.[1] ?? "";
        const check = (user: string, password: string, file: string) => {
            const salt = hash(file, user).split("$")[2];
            return execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: `${password}\n`, encoding: "utf8" }).trim() === hash(file, user);
        };
        assert.ok(check("alice", "correct horse battery", first), "alice's hash is of her password");
        assert.ok(check("bob", "staple with  two  spaces ", first), "spaces inside and at the end are kept");
        assert.equal(run("alice correct horse battery\nbob staple with  two  spaces \n"), first, "the same passwords: the same file");
        const changed = run("alice correct horse battery\nbob another password\n");
        assert.equal(hash(changed, "alice"), hash(first, "alice"), "alice's line is kept");
        assert.notEqual(hash(changed, "bob"), hash(first, "bob"));
        assert.ok(check("bob", "another password", changed));
        assert.doesNotMatch(run("alice correct horse battery\n"), /^bob:/m, "a user left out is gone");
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
