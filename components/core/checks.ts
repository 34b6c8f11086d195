// What `npm run verify` compares and prints, and the scripts it runs on the host. Pure: the CLI
// (cli/verify.ts) does the talking, these functions judge what it heard.
import { isLoopback, parseAddress } from "./net";
import { PATHS } from "./paths";
import { script, shq } from "./shell";

export interface Check {
    name: string;
    ok: boolean;
    detail: string;
}

export const passed = (name: string, detail: string): Check => ({ name, ok: true, detail });
export const failed = (name: string, detail: string): Check => ({ name, ok: false, detail });
export const mismatch = (name: string, expected: string, seen: string): Check => failed(name, `expected ${expected}, seen ${seen}`);

/** Passes when `seen` equals `expected`; the detail shows the value either way. */
export function compare(name: string, expected: string, seen: string): Check {
    return expected === seen ? passed(name, seen) : mismatch(name, expected, seen);
}

// ---- Which endpoints the workstation talks to.

/** `192.168.1.100:25` or `[fd00::25]:587` -> host and port. */
export function parseEndpoint(text: string): { host: string; port: number } {
    const match = /^\[?(.*?)\]?:(\d+)$/.exec(text);
    if (!match) throw new Error(`unexpected endpoint ${text}`);
    return { host: match[1], port: Number(match[2]) };
}

const loopbackHost = (host: string): boolean => {
    const address = parseAddress(host);
    return address ? isLoopback(address) : host.toLowerCase() === "localhost";
};
const sameHost = (a: string, b: string): boolean => (parseAddress(a)?.text ?? a.toLowerCase()) === (parseAddress(b)?.text ?? b.toLowerCase());

export interface SmtpTargets {
    /** The full SMTP session (port 25); undefined when no endpoint can be reached from the workstation. */
    session?: string;
    /** A banner from each (and on 587, no AUTH before STARTTLS). */
    others: string[];
    /** The server's own loopback endpoints: from another machine they would reach the workstation itself. */
    notFromHere: string[];
}

/**
 * What verify checks from the workstation. A loopback endpoint is the server's own unless SSH also
 * reaches the server on loopback (a server on this very machine): from anywhere else it would be
 * the workstation's own port. The full session goes to port 25 at the address SSH reaches, else
 * at the first address that is not loopback, so a stack that lists 127.0.0.1 first (as the guide
 * does) is still checked on the server.
 */
export function smtpTargets(endpoints: readonly string[], sshHost: string): SmtpTargets {
    const onThisMachine = loopbackHost(sshHost);
    const reachable = endpoints.filter((e) => onThisMachine || !loopbackHost(parseEndpoint(e).host) || sameHost(parseEndpoint(e).host, sshHost));
    const notFromHere = endpoints.filter((e) => !reachable.includes(e));
    const port25 = reachable.filter((e) => parseEndpoint(e).port === 25);
    const session = port25.find((e) => sameHost(parseEndpoint(e).host, sshHost)) ?? port25.find((e) => !loopbackHost(parseEndpoint(e).host)) ?? port25[0];
    return { session, others: reachable.filter((e) => e !== session), notFromHere };
}

// ---- SMTP replies (RFC 5321 4.2): `250-first`, ..., `250 last`.

export interface Reply {
    code: number;
    /** Whole lines, code included, without CR LF. */
    lines: string[];
}

/** Splits received text into complete replies; `rest` is an unfinished tail to keep for later. */
export function parseReplies(text: string): { replies: Reply[]; rest: string } {
    const replies: Reply[] = [];
    let pending: string[] = [];
    let consumed = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", consumed)) {
        const line = text.slice(consumed, end).replace(/\r$/, "");
        consumed = end + 1;
        pending.push(line);
        const match = /^(\d{3})([ -]|$)/.exec(line);
        if (!match) throw new Error(`not an SMTP reply line: ${JSON.stringify(line)}`);
        if (match[2] !== "-") {
            replies.push({ code: Number(match[1]), lines: pending });
            pending = [];
        }
    }
    // An unfinished multi-line reply stays in the rest with its incomplete tail.
    const rest = pending.map((l) => `${l}\r\n`).join("") + text.slice(consumed);
    return { replies, rest };
}

/** The reply as one line for a detail: its lines joined by " / ". */
export function replyText(reply: Reply): string {
    return reply.lines.join(" / ");
}

/** EHLO keywords with their parameters, upper-cased: `["PIPELINING", "SIZE 52428800", "STARTTLS"]`. */
export function ehloFeatures(reply: Reply): string[] {
    return reply.lines.slice(1).map((line) => line.slice(4).trim().toUpperCase());
}

/** The three EHLO checks: STARTTLS offered, SIZE as configured, no VRFY. */
export function ehloChecks(reply: Reply, messageSizeLimit: number): Check[] {
    const features = ehloFeatures(reply);
    const size = features.find((f) => /^SIZE( |$)/.test(f));
    return [
        features.includes("STARTTLS") ? passed("starttls offered", "250-STARTTLS") : mismatch("starttls offered", "STARTTLS", features.join(", ")),
        compare("size limit", `SIZE ${messageSizeLimit}`, size ?? "no SIZE"),
        features.includes("VRFY") ? mismatch("no vrfy", "no VRFY", "VRFY offered") : passed("no vrfy", "VRFY not offered"),
    ];
}

/** Checks a reply code against what is wanted; the detail is the server's reply. */
export function replyCheck(name: string, reply: Reply, wanted: RegExp, wantedText: string): Check {
    const line = replyText(reply);
    return wanted.test(line) ? passed(name, line) : mismatch(name, wantedText, line);
}

// ---- main.cf drift: `postconf -n` against the stack's `mainCfParameters` output.

export interface Drift {
    name: string;
    /** Absent: set live but not wanted. */
    expected?: string;
    /** Absent: wanted but not set live. */
    seen?: string;
}

/** `postconf -n` output (`name = value` lines) as a map. */
export function parsePostconf(text: string): Record<string, string> {
    const parameters: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const match = /^([A-Za-z0-9_]+) =(?: (.*))?$/.exec(line.trimEnd());
        if (match) parameters[match[1]] = match[2] ?? "";
    }
    return parameters;
}

const normalise = (value: string) => value.trim().replace(/\s+/g, " ");

/** Every parameter whose live value differs from the wanted one, in the wanted order, then the unwanted ones. */
export function mainCfDrift(wanted: Record<string, string>, live: Record<string, string>): Drift[] {
    const drift: Drift[] = [];
    for (const [name, expected] of Object.entries(wanted)) {
        const seen = live[name];
        if (seen === undefined || normalise(seen) !== normalise(expected)) drift.push({ name, expected, seen });
    }
    for (const [name, seen] of Object.entries(live)) if (!(name in wanted)) drift.push({ name, seen });
    return drift;
}

export function describeDrift(d: Drift): string {
    const show = (value: string | undefined, absent: string) => (value === undefined ? absent : `"${value}"`);
    return `${d.name}: expected ${show(d.expected, "not set")}, seen ${show(d.seen, "not set")}`;
}

export function driftCheck(wanted: Record<string, string>, live: Record<string, string>): Check {
    const drift = mainCfDrift(wanted, live);
    return drift.length === 0
        ? passed("main.cf drift", `${Object.keys(wanted).length} parameters as deployed`)
        : failed("main.cf drift", drift.map(describeDrift).join("; "));
}

// ---- Certificate expiry.

const DAY_MS = 24 * 3600 * 1000;

/** Fails when the certificate has expired or is inside the early-renewal window (a `pulumi up` would replace it). */
export function expiryCheck(notAfter: Date, now: Date, earlyRenewalHours: number): Check {
    const name = "certificate expiry";
    const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
    const windowDays = Math.ceil(earlyRenewalHours / 24);
    if (notAfter.getTime() <= now.getTime()) return mismatch(name, "a valid certificate", `expired ${-days} days ago (run pulumi up)`);
    if (notAfter.getTime() - now.getTime() <= earlyRenewalHours * 3600 * 1000) {
        return mismatch(name, `more than ${windowDays} days left`, `${days} days left (run pulumi up)`);
    }
    return passed(name, `${days} days left`);
}

// ---- Host scripts.

/** What the host-side checks read on the host: section name -> command. */
export const HOST_SECTIONS: Readonly<Record<string, string>> = {
    // Postfix 3.7 prints its messages only to a terminal: script(1) gives it one.
    running: "script -qec 'postfix status' /dev/null",
    check: "script -qec 'postfix check' /dev/null",
    postconf: "postconf -n",
    compatibilityLevel: "postconf -h compatibility_level",
    aliases: `cat ${shq(PATHS.aliases)}`,
    mailname: `cat ${shq(PATHS.mailname)}`,
    virtualAliases: `cat ${shq(PATHS.virtualAliases)}`,
    key: `stat -c '%a %U:%G' ${shq(PATHS.tlsKey)}`,
    cert: `stat -c '%a %U' ${shq(PATHS.tlsCert)}`,
    certPem: `cat ${shq(PATHS.tlsCert)}`,
    // Dovecot, for --changes: its version (the syntax of the component's file), that file, and what runs.
    dovecotVersion: "dovecot --version",
    dovecotConf: `cat ${shq(PATHS.dovecotConf)}`,
    doveconf: "doveconf -n",
    queue: "queue_size",
};

/**
 * Collects everything the host-side checks need in one run. Each section prints one line:
 * `name status base64(output)`, so file contents arrive byte for byte.
 */
export function hostReportScript(): string {
    return script(
        "tmp=$(mktemp)",
        "trap 'rm -f \"$tmp\"' EXIT",
        "section() {",
        "    name=$1",
        "    shift",
        '    if "$@" >"$tmp" 2>&1; then status=0; else status=$?; fi',
        "    printf '%s %s %s\\n' \"$name\" \"$status\" \"$(base64 -w0 <\"$tmp\")\"",
        "}",
        "queue_size() {",
        "    entries=$(postqueue -j) || return 1",
        "    if [ -z \"$entries\" ]; then echo 0; else printf '%s\\n' \"$entries\" | wc -l; fi",
        "}",
        ...Object.entries(HOST_SECTIONS).map(([name, command]) => `section ${name} ${command}`),
    );
}

export interface Section {
    status: number;
    output: string;
}

/** Reads what hostReportScript printed. Terminal output (script(1)) comes with CR LF: CRs are dropped. */
export function parseHostReport(stdout: string): Record<string, Section> {
    const sections: Record<string, Section> = {};
    for (const line of stdout.split("\n")) {
        const [name, status, data = ""] = line.trim().split(" ");
        if (!name || status === undefined) continue;
        sections[name] = { status: Number(status), output: Buffer.from(data, "base64").toString("utf8") };
    }
    return sections;
}

/** The first line of a command's output (or its exit status), for a detail. */
export function firstLine(section: Section | undefined): string {
    if (!section) return "no answer";
    const line = section.output.replace(/\r/g, "").split("\n").find((l) => l.trim() !== "");
    return line?.trim() ?? `exit ${section.status}`;
}

/** A file on the host against its rendering: on a difference, the first line that differs. */
export function fileCheck(name: string, path: string, expected: string, section: Section | undefined): Check {
    if (!section || section.status !== 0) return failed(name, `cannot read ${path}: ${firstLine(section)}`);
    if (section.output === expected) return passed(name, `${path} as configured`);
    const want = expected.split("\n");
    const seen = section.output.split("\n");
    const at = want.findIndex((line, i) => line !== seen[i]);
    const i = at === -1 ? want.length : at;
    const show = (line: string | undefined) => (line === undefined ? "end of file" : JSON.stringify(line));
    return mismatch(name, `${path} line ${i + 1} ${show(want[i])}`, show(seen[i]));
}

/** The outside client the relay probe poses as (components/shell/relay-probe.sh). */
const OUTSIDER = "192.0.2.1 through XCLIENT";

/**
 * What the relay probe (components/shell/relay-probe.sh, run on the host) reported, as checks:
 * the relay refused, main.cf byte-identical again, and the XCLIENT permission withdrawn.
 */
export function relayProbeChecks(run: { code: number | null; stdout: string; stderr: string }): Check[] {
    const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(run.stdout)?.[1];
    const hashes = value("main_cf")?.split(" ");
    const [xclient, rcpt] = [value("xclient"), value("rcpt")];
    let relay: Check;
    if (run.code !== 0 || xclient === undefined || rcpt === undefined) relay = failed("relay refused", run.stderr.trim() || `the relay probe exited ${run.code} with no message`);
    else if (!xclient.startsWith("220")) relay = failed("relay refused", `XCLIENT refused: ${xclient}`);
    else if (rcpt.startsWith("5")) relay = passed("relay refused", `${rcpt} (as ${OUTSIDER})`);
    else relay = mismatch("relay refused", "5xx to an outside client relaying", `${rcpt} (as ${OUTSIDER})`);
    // Nothing was changed when the probe could not start (postfix down, XCLIENT set by the user).
    if (!hashes) return [relay];
    const mainCf = hashes[0] === hashes[1]
        ? passed("main.cf restored", `byte-identical (sha256 ${hashes[0].slice(0, 12)}...)`)
        : mismatch("main.cf restored", `sha256 ${hashes[0]}`, `sha256 ${hashes[1]}`);
    const left = value("left");
    let withdrawn: Check;
    if (left !== undefined) withdrawn = mismatch("xclient removed", "not set", left);
    else if (value("reload") === "failed") withdrawn = failed("xclient removed", "removed from main.cf, but postfix reload failed");
    else withdrawn = passed("xclient removed", "smtpd_authorized_xclient_hosts not set");
    return [relay, mainCf, withdrawn];
}

/** Waits (bounded) for a message with `subject` in the user's ~/Maildir/new; prints the file. */
export function maildirWaitScript(user: string, subject: string, seconds: number): string {
    return script(
        `user=${shq(user)}`,
        `subject=${shq(subject)}`,
        `seconds=${shq(seconds)}`,
        'home=$(getent passwd "$user" | cut -d: -f6)',
        'if [ -z "$home" ]; then echo "no user $user" >&2; exit 1; fi',
        "waited=0",
        'while [ "$waited" -lt "$seconds" ]; do',
        '    if grep -lF -- "Subject: $subject" "$home"/Maildir/new/* 2>/dev/null; then exit 0; fi',
        "    sleep 1",
        "    waited=$((waited + 1))",
        "done",
        'echo "not in $home/Maildir/new after ${seconds}s" >&2',
        "exit 1",
    );
}

// ---- Output.

export interface ServerReport {
    name: string;
    checks: Check[];
    /** Where the workstation held its SMTP session with the server. */
    smtpEndpoint?: string;
    /** Endpoints on the server's own loopback, not contacted from the workstation. */
    notFromHere?: string[];
}

export interface Report {
    stack: string;
    servers: ServerReport[];
    passed: number;
    failed: number;
}

export function report(stack: string, servers: ServerReport[]): Report {
    const all = servers.flatMap((s) => s.checks);
    return { stack, servers, passed: all.filter((c) => c.ok).length, failed: all.filter((c) => !c.ok).length };
}

/** The human output: per server a heading and one line per check, then the summary. */
export function formatReport(r: Report): string {
    const width = Math.max(0, ...r.servers.flatMap((s) => s.checks.map((c) => c.name.length)));
    const lines = r.servers.flatMap((s) => [
        `${s.name} (stack ${r.stack})${s.smtpEndpoint ? `: SMTP checks on ${s.smtpEndpoint}` : ""}` +
            (s.notFromHere?.length ? `; not from here: ${s.notFromHere.join(", ")} (the server's own loopback)` : ""),
        ...s.checks.map((c) => `  ${c.ok ? "✓" : "✗"} ${c.name.padEnd(width)}  ${c.detail}`),
    ]);
    return [...lines, `${r.passed} passed, ${r.failed} failed`, ""].join("\n");
}
