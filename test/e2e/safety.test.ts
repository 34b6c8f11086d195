// End-to-end safety proofs on a real Debian 12 host with the real engine: a config postfix refuses
// never goes live, no accepted mail is lost while a deployment reloads or restarts postfix, keys
// stay out of command lines, logs and state, and the classic relay tricks fail from outside.
// Only loopback addresses (127.0.16.x, outsider 127.0.99.16); outbound mail is held
// (defer_transports = smtp) and outside domains are reserved `.invalid` names.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runInBackground, sleep, Submission, submitOnce, submitUntil, traceExecs } from "./support/background";
import { hostDown, hostOk, hostSh, HostInfo, hostUp, masterPid } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const name = "e2e-safety";
const address = "127.0.16.2";
const secondAddress = "127.0.16.3";
const lanClient = "127.0.16.50";
// Outside the trusted network 127.0.16.0/24, still on this machine's loopback.
const outsider = "127.0.99.16";
const KEY_FILE = "/etc/ssl/private/server.key.insecure";

const stack = new Stack(name);
let host: HostInfo;

interface Changes {
    messageSizeLimit?: number;
    listenAddresses?: string[];
    extra?: Record<string, string>;
    unsafe?: boolean;
}

const config = (changes: Changes = {}) => mxConfig({
    host, subnet: "127.0.16", listenAddresses: changes.listenAddresses, extraParameters: changes.extra,
    options: { "postfix:messageSizeLimit": changes.messageSizeLimit ?? 52428800, "postfix:allowUnsafeOverrides": changes.unsafe ?? false },
});

/** Strings that give a key away: each long line of its text, and its whole body as one line and as base64. */
function needles(label: string, keyText: string): Array<{ label: string; text: string }> {
    const lines = keyText.split("\n").map((l) => l.trim()).filter((l) => l.length > 40 && !l.startsWith("-----"));
    assert.ok(lines.length >= 3, `${label}: a real key was read`);
    return [
        ...lines.map((text, i) => ({ label: `${label} line ${i + 1}`, text })),
        { label: `${label} body`, text: lines.join("") },
        { label: `${label} as base64`, text: Buffer.from(keyText).toString("base64").slice(20, 100) },
    ];
}

/** Fails naming the first needle found in `text`. */
function assertAbsent(where: string, text: string, found: Array<{ label: string; text: string }>): void {
    for (const needle of found) assert.ok(!text.includes(needle.text), `${needle.label} appears in ${where}`);
}

const tlsKey = () => needles("TLS key", hostOk(name, `cat ${KEY_FILE}`));
const sshKey = () => needles("SSH key", readFileSync(host.privateKeyPath, "utf8"));
const hostFile = (path: string) => readFileSync(`${host.rootDir}${path}`, "utf8");

/** The server's reply to RCPT TO (or the refusal that came instead), sent from `source`; swaks quits after it. */
function rcptReply(source: string, to: string): string {
    const dialogue = swaks(address, source, ["--ehlo", "mail.example.invalid", "--from", "x@e2e.test", "--to", to, "--quit-after", "RCPT"]);
    const lines = dialogue.transcript.split("\n");
    const asked = lines.findIndex((l) => /^\s*-> RCPT TO:/.test(l));
    const answer = replies({ status: dialogue.status, transcript: lines.slice(asked + 1).join("\n") })[0];
    assert.ok(asked >= 0 && answer, `no reply to RCPT:\n${dialogue.transcript}`);
    return answer;
}


/** Subjects of the messages in alice's Maildir. */
function deliveredSubjects(): Set<string> {
    const out = hostSh(name, "cat /home/alice/Maildir/new/* /home/alice/Maildir/cur/* 2>/dev/null | grep '^Subject: '").stdout;
    return new Set(out.split("\n").filter(Boolean).map((l) => l.slice("Subject: ".length)));
}

/**
 * What postfix logged about its own life from `since` on: postfix-script's `stopping`, `starting`,
 * `refreshing` (reload) and the master's `reload`, `daemon` (started). Times in ms, to the second.
 */
function postfixEvents(since: number): Array<{ at: number; what: string }> {
    const out = hostOk(name, "grep -E 'postfix/(master|postfix-script)\\[[0-9]+\\]: (reload|daemon started|stopping|starting|refreshing)' /var/log/postfix.log |"
        + ' while read -r m d t _host _prog event _rest; do echo "$(date -d "$m $d $t" +%s) $event"; done');
    return out.split("\n").filter(Boolean).map((l) => ({ at: Number(l.split(" ")[0]) * 1000, what: l.split(" ")[1] }))
        .filter((e) => e.at >= Math.floor(since / 1000) * 1000);
}

/**
 * Runs a deployment while a LAN client keeps sending to alice, one connection per message, and
 * checks that every message that got its 250 was delivered, and that some were accepted before
 * postfix's first `begins` event and some after its first `ends` event. Returns the events.
 */
async function sendDuring(label: string, changes: Changes, begins: string, ends: string): Promise<string[]> {
    stack.configure(config(changes));
    const started = Date.now();
    const up = runInBackground(stack, ["up", "--yes", "--skip-preview"]);
    // After the run the client goes on (bounded) until a message was accepted a whole second after
    // postfix's last "ends" event (log times are whole seconds): a quick run proves as much as a slow one.
    const acceptedAfterChange = (attempts: Submission[]) => {
        const last = postfixEvents(started).filter((e) => e.what === ends).pop();
        return last !== undefined && attempts.some((a) => a.outcome === "accepted" && a.at >= last.at + 1000);
    };
    const attempts = await submitUntil(up, (i) => submitOnce(address, lanClient, "alice@e2e.test", `${label} ${i} ${Date.now()}`),
        (sent) => !acceptedAfterChange(sent));
    const result = await up;
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const accepted = attempts.filter((a) => a.outcome === "accepted");
    const refused = attempts.filter((a) => a.outcome === "refused");
    const unconfirmed = attempts.filter((a) => a.outcome === "unconfirmed");
    // Delivery is local and quick, but the machine is shared: wait (bounded) for the last one.
    const deadline = Date.now() + 60_000;
    let delivered = deliveredSubjects();
    while (accepted.some((a) => !delivered.has(a.subject)) && Date.now() < deadline) {
        await sleep(1000);
        delivered = deliveredSubjects();
    }
    const events = postfixEvents(started);
    const first = events.find((e) => e.what === begins);
    const last = events.filter((e) => e.what === ends).pop();
    assert.ok(first && last, `postfix logged "${begins}" and "${ends}" during the run: ${events.map((e) => e.what).join(", ")}`);
    // Log times are whole seconds: "before" started in an earlier second, "after" in a later one.
    const before = accepted.filter((a) => a.at < first.at).length;
    const afterwards = accepted.filter((a) => a.at >= last.at + 1000).length;
    console.log(`# ${label}: pulumi up ${result.seconds.toFixed(1)} s; sent ${attempts.length}, accepted (250) ${accepted.length}, `
        + `not accepted ${refused.length}, unconfirmed ${unconfirmed.length}, delivered ${attempts.filter((a) => delivered.has(a.subject)).length}`);
    console.log(`#   postfix during the run: ${events.map((e) => e.what).join(", ")}; accepted before "${begins}" ${before}, after "${ends}" ${afterwards}`);
    for (const kind of new Set(refused.map((r) => r.detail.replace(/\d+(\.\d+){3}(:\d+)?/g, "ADDR")))) console.log(`#   not accepted: ${kind}`);

    assert.ok(before > 0 && afterwards > 0, `${label}: messages were accepted before and after postfix's change (${before}, ${afterwards})`);
    assert.deepEqual(accepted.filter((a) => !delivered.has(a.subject)).map((a) => a.subject), [], `${label}: every accepted message was delivered`);
    // Nothing refused shows up later. A message whose final reply was lost may (SMTP's duplicate window): reported only.
    assert.deepEqual(refused.filter((a) => delivered.has(a.subject)).map((a) => a.subject), [], `${label}: nothing refused was delivered`);
    return events.map((e) => e.what);
}

// Classic ways to make a server relay, each aimed at an outside (`.invalid`) or documentation address.
const RELAY_TRICKS: Record<string, string> = {
    "plain outside recipient": "user@example.invalid",
    "percent hack": "user%example.invalid@e2e.test",
    "bang path": "example.invalid!user@e2e.test",
    "source route": "@e2e.test:user@example.invalid",
    "quoted local part": '"user@example.invalid"@e2e.test',
    "quoted percent hack": '"user%example.invalid"@e2e.test',
    "two @ signs": "user@example.invalid@e2e.test",
    "address literal": "user@[192.0.2.1]",
    "percent hack via our own literal": `user%example.invalid@[${address}]`,
};

/** Where pulumi.sh points PULUMI_HOME: the engine writes a log file per run under logs/. */
const PULUMI_HOME = process.env.PULUMI_HOME ?? join(process.env.PULUMI_POSTFIX_CACHE ?? join(homedir(), ".cache", "pulumi-postfix"), "pulumi-home");

describe("safety on a Debian 12 host: safe apply, no mail lost, secrets, relay tricks", { timeout: 30 * 60_000 }, () => {
    const suiteStarted = Date.now();
    const deployed: Changes = {};
    const deploy = (changes: Changes) => {
        Object.assign(deployed, changes);
        stack.configure(config(deployed));
        return stack.up();
    };

    before(() => {
        host = hostUp(name, "bookworm", address);
        stack.init(config());
    });
    after(() => {
        stack.remove();
        hostSh(name, `ip addr del ${secondAddress}/32 dev lo`);
        hostDown(name);
    });

    test("a cold pulumi up puts neither the TLS key nor the SSH key on any command line or in any environment", async () => {
        const sshd = Number(readFileSync(join(host.rootDir, "run", "sshd.pid"), "utf8").trim());
        const { run: result, trace } = await traceExecs(stack, ["up", "--yes", "--skip-preview"], sshd);
        assert.equal(result.status, 0, result.stdout + result.stderr);
        console.log(`# cold up ${result.seconds.toFixed(1)} s under strace; ${trace.execs.length} programs started (execve), each with its arguments and environment`);
        // The trace really saw the deployment: the engine, the command provider, and the remote steps on the host.
        for (const pattern of [/pulumi\.sh", "up"/, /pulumi-resource-command/, /"sh", "-c"/, /"apt-get", .*"install", "postfix"/]) {
            assert.ok(trace.execs.some((l) => pattern.test(l)), `no program matching ${pattern} was started`);
        }
        const secrets = [...tlsKey(), ...sshKey()];
        assertAbsent("an execve (command line or environment)", trace.execs.join("\n"), secrets);
        assertAbsent("the pulumi up output", result.stdout + result.stderr, secrets);
    });

    test("a main.cf that postfix refuses never goes live; postfix keeps running; the good one converges again", () => {
        const sum = hostOk(name, "sha256sum /etc/postfix/main.cf");
        const mainCf = hostFile("/etc/postfix/main.cf");
        const pid = masterPid(name);
        assert.ok(pid, "postfix runs");
        // Our validation takes any value here; postfix(1) itself parses ipc_timeout as a time and refuses this one.
        stack.configure(config({ ...deployed, extra: { ipc_timeout: "forever" } }));
        const up = stack.run(["up", "--yes", "--skip-preview"]);
        const output = up.stdout + up.stderr;
        const fatal = /postfix: fatal: .*/.exec(output)?.[0];
        console.log(`# refused up: exit ${up.status} after ${up.seconds.toFixed(1)} s; postfix said: ${fatal}`);
        assert.notEqual(up.status, 0, "pulumi up fails");
        assert.equal(fatal, "postfix: fatal: parameter ipc_timeout: bad time value or unit: forever", "postfix's own error is shown");
        assert.match(output, /postfix refused the new main\.cf \(above\); the live configuration is unchanged/);
        assert.equal(hostOk(name, "sha256sum /etc/postfix/main.cf"), sum, "main.cf is byte-identical");
        assert.equal(hostFile("/etc/postfix/main.cf"), mainCf);
        assert.equal(hostOk(name, "postconf -h ipc_timeout").trim(), "3600s", "the live value is still the default");
        assert.equal(masterPid(name), pid, "the master process was not touched");
        assert.match(replies(swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]))[0], /^220 mx\.e2e\.test ESMTP$/);

        deploy({});
        assert.equal(hostOk(name, "sha256sum /etc/postfix/main.cf"), sum, "the good config is the live one");
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, `converged: ${preview.stdout}${preview.stderr}`);
    });

    test("no accepted mail is lost while pulumi up reloads postfix (new size limit)", async () => {
        const pid = masterPid(name);
        Object.assign(deployed, { messageSizeLimit: 10485760 });
        const events = await sendDuring("reload", deployed, "refreshing", "reload");
        assert.equal(masterPid(name), pid, "a reload: same master");
        assert.ok(!events.includes("stopping") && !events.includes("daemon"), `never stopped: ${events.join(", ")}`);
        assert.equal(hostOk(name, "postconf -h message_size_limit").trim(), "10485760");
    });

    test("no accepted mail is lost while pulumi up restarts postfix (new listen address)", async () => {
        hostOk(name, `ip addr add ${secondAddress}/32 dev lo`);
        const pid = masterPid(name);
        Object.assign(deployed, { listenAddresses: [address, secondAddress] });
        await sendDuring("restart", deployed, "stopping", "daemon");
        assert.notEqual(masterPid(name), pid, "a restart: a new master");
    });

    test("from outside, every relay trick is refused at the client level (554 Client host rejected)", () => {
        for (const [trick, to] of Object.entries(RELAY_TRICKS)) {
            assert.match(rcptReply(outsider, to), /^554 5\.7\.1 <unknown\[127\.0\.99\.16\]>: Client host rejected: Access denied$/, trick);
        }
        assert.match(rcptReply(outsider, "alice@e2e.test"), /^554 5\.7\.1 .*Client host rejected/, "even a local recipient");
        console.log(`# client layer: ${Object.keys(RELAY_TRICKS).length} tricks refused, and a local recipient`);
    });

    test("with the client restriction lifted, every relay trick is still refused at RCPT, and nothing is queued outside", () => {
        // A server that takes mail from the internet for its own users: only relay control stands in the way.
        deploy({ extra: { smtpd_client_restrictions: "permit" }, unsafe: true });
        assert.equal(hostOk(name, "postconf -h smtpd_client_restrictions").trim(), "permit");
        const local = rcptReply(outsider, "alice@e2e.test");
        assert.match(local, /^250 2\.1\.5 Ok$/, "the outsider may now mail a local user: the client layer is really lifted");
        const refused: string[] = [];
        for (const [trick, to] of Object.entries(RELAY_TRICKS)) {
            const reply = rcptReply(outsider, to);
            console.log(`#   ${trick.padEnd(34)} ${to.padEnd(36)} ${reply}`);
            assert.match(reply, /^554 5\.7\.1 <[^>]*>: Relay access denied$/, `${trick}: ${to}`);
            refused.push(trick);
        }
        // Nothing was ever queued for an outside address: no queue id was logged next to one.
        const log = hostFile("/var/log/postfix.log");
        const queuedOutside = log.split("\n").filter((l) => /: [0-9A-F]+: to=<[^>]*(\.invalid|\[192\.0\.2\.1\])>/.test(l));
        const queue = hostOk(name, "postqueue -p");
        const rejects = log.split("\n").filter((l) => /NOQUEUE: reject: RCPT from .*127\.0\.99\.16/.test(l)).length;
        console.log(`# relay tricks refused: ${Object.keys(RELAY_TRICKS).length} (client layer) + ${refused.length} (relay layer) = `
            + `${Object.keys(RELAY_TRICKS).length + refused.length}; outsider RCPTs rejected in the log: ${rejects}; queue: ${queue.trim().split("\n")[0]}`);
        assert.deepEqual(queuedOutside, [], "no message to an outside address was queued");
        assert.doesNotMatch(queue, /\.invalid|192\.0\.2\.1/, "the queue holds nothing for outside");
        assert.ok(rejects >= 2 * Object.keys(RELAY_TRICKS).length, `postfix logged the refusals (${rejects})`);
    });

    test("after every deployment: no key in the host's logs, the engine's log files or the state", () => {
        const secrets = [...tlsKey(), ...sshKey()];
        const postfixLog = hostFile("/var/log/postfix.log");
        const sshdLog = hostFile("/var/log/sshd.log");
        // The engine writes one log file per run for this stack under PULUMI_HOME/logs.
        const logDir = join(PULUMI_HOME, "logs");
        const engineLogs = readdirSync(logDir).filter((f) => f.includes(`+${name}-`))
            .map((f) => join(logDir, f)).filter((f) => statSync(f).mtimeMs >= suiteStarted);
        const state = stack.ok(["stack", "export"]).stdout;
        console.log(`# scanned: postfix.log ${postfixLog.split("\n").length} lines, sshd.log ${sshdLog.split("\n").length} lines, `
            + `${engineLogs.length} engine log files, state ${state.length} bytes`);
        // The logs really cover the deployments: sshd logged each step's connection.
        assert.ok((sshdLog.match(/Accepted publickey for root/g) ?? []).length >= 9, "sshd logged the deployment's connections");
        // Every pulumi run of this suite left its log file (the cold up, the refused one, five more ups, previews).
        assert.ok(engineLogs.length >= 1, `the engine's log files of this suite were found (${engineLogs.length} in ${logDir})`);
        assertAbsent("/var/log/postfix.log", postfixLog, secrets);
        assertAbsent("/var/log/sshd.log", sshdLog, secrets);
        for (const file of engineLogs) assertAbsent(file, readFileSync(file, "latin1"), secrets);
        assertAbsent("the state (pulumi stack export)", state, secrets);
        assert.equal(hostOk(name, `stat -c '%a %U' ${KEY_FILE}`).trim(), "600 root");
    });
});
