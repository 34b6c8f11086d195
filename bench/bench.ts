// The benchmark: `npm run bench [-- --runs N] [-- --json FILE] [-- --fleet]` (root; not part of npm test).
// Every figure is measured on fresh Debian 12 test hosts (127.0.40.x-127.0.45.x, named bench-*),
// against a floor: one plain SSH session doing the same install, or an empty Pulumi program.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { renderPreseed } from "../components/core/files";
import { validateMailOptions } from "../components/core/validate";
import { hostDown, hostOk, HostInfo, hostUp, postfixInstallWindow, sshLogins } from "../test/e2e/support/host";
import { Stack } from "../test/e2e/support/pulumi";
import { median, phases, ScratchProject, timed, withEnv } from "./support";

const args = process.argv.slice(2);
const option = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const RUNS = Number(option("--runs") ?? 3);
const JSON_FILE = option("--json");
/** `--fleet`: instead of the standard series, one stack of 1, 4, 8 and 16 servers. */
const FLEET = args.includes("--fleet");

/** metric -> one sample per run. */
const samples = new Map<string, number[]>();
const record = (metric: string, value: number) => samples.set(metric, [...(samples.get(metric) ?? []), value]);
let changeSteps: Record<string, string> = {};
let changeStepsFrom = "preview --json";
/** Run -> where the seconds went, for the cold up and the one-setting change (first run's). */
const breakdowns: Record<string, Array<[string, number]>> = {};

// ------------------------------------------------------------------------------------------------
// Measuring: wall time, and the SSH logins the hosts' sshd logged meanwhile (testhost.sh starts
// sshd with `-E /var/log/sshd.log`; every accepted connection logs one "Accepted publickey").
const loginsOn = (hosts: HostInfo[]) => hosts.map(sshLogins).reduce((a, b) => a + b, 0);

function measure<T>(metric: string, hosts: HostInfo[], fn: () => T): T {
    const before = loginsOn(hosts);
    const [result, seconds] = timed(fn);
    record(`${metric} (s)`, seconds);
    if (hosts.length > 0) record(`${metric}: SSH connections`, loginsOn(hosts) - before);
    return result;
}

// ------------------------------------------------------------------------------------------------
// Hosts and stacks, always removed again.
const live = new Set<string>();
function withHosts<T>(specs: Array<[string, string]>, fn: (hosts: HostInfo[]) => T): T {
    try {
        return fn(specs.map(([name, address]) => { live.add(name); return hostUp(name, "bookworm", address); }));
    } finally {
        for (const [name] of specs) { hostDown(name); live.delete(name); }
    }
}
process.on("SIGINT", () => { for (const name of live) hostDown(name); process.exit(130); });

const mail = (messageSizeLimit: number) => ({
    domain: "bench.test",
    trustedNetworks: ["127.0.40.0/21"],
    messageSizeLimit,
    mailUsers: ["fribeiro", "alice"],
    aliases: { postmaster: "root", root: "fribeiro" },
    // Outbound mail is held: a bench host never delivers outside.
    extraParameters: { defer_transports: "smtp", maillog_file: "/var/log/postfix.log" },
});
const server = (h: HostInfo, i: number) => ({
    name: `mx${i + 1}`, hostname: `mx${i + 1}.bench.test`, listenAddresses: [h.address],
    ssh: { host: h.address, privateKeyPath: h.privateKeyPath, hostKey: h.hostPublicKey, dialErrorLimit: 3, perDialTimeout: 10 },
});
const config = (hosts: HostInfo[], messageSizeLimit = 52428800) => ({
    ...Object.fromEntries(Object.entries(mail(messageSizeLimit)).map(([k, v]) => [`postfix:${k}`, v])),
    "postfix:servers": hosts.map(server),
});

function withStack<T>(name: string, hosts: HostInfo[], fn: (stack: Stack) => T): T {
    const stack = new Stack(name);
    try {
        stack.init(config(hosts));
        return fn(stack);
    } finally {
        stack.remove();
    }
}

const NO_CHANGE_UP = ["up", "--yes", "--skip-preview", "--expect-no-changes"];

// ------------------------------------------------------------------------------------------------
// 1-3 and the TS start-up variants: one host, one stack.
function singleHost(precompiled: ScratchProject): { mainCf: string; aliases: string; mailname: string } {
    return withHosts([["bench-a", "127.0.40.2"]], ([h]) => withStack("bench-a", [h], (stack) => {
        profiled("cold up [1 host]", [h], stack);
        const files = { mainCf: hostOk(h.name, "cat /etc/postfix/main.cf"), aliases: hostOk(h.name, "cat /etc/aliases"), mailname: hostOk(h.name, "cat /etc/mailname") };
        measure("no-change preview [1 host]", [h], () => stack.ok(["preview", "--expect-no-changes"]));
        measure("no-change up [1 host]", [h], () => stack.ok(NO_CHANGE_UP));
        // TS start-up: the same preview without type-checking, and from the precompiled dist/index.js.
        measure("no-change preview, PULUMI_NODEJS_TRANSPILE_ONLY=true", [h],
            () => withEnv("PULUMI_NODEJS_TRANSPILE_ONLY", "true", () => stack.ok(["preview", "--expect-no-changes"])));
        measure("no-change preview, typescript: false + dist/index.js", [h],
            () => precompiled.ok(stack.env, ["preview", "--expect-no-changes", "--stack", stack.name]));
        stack.configure(config([h], 10485760));
        changeSteps = measure("one-setting change: preview", [h], () => stack.plannedChanges());
        profiled("one-setting change: up", [h], stack);
        return files;
    }));
}

/**
 * An `up` measured like the others, with the engine's log on (it costs a little time) for the
 * breakdown of where its seconds went; each phase is recorded as a metric of its own.
 */
function profiled(metric: string, hosts: HostInfo[], stack: Stack): void {
    const up = measure(metric, hosts, () => stack.ok(["up", "--yes", "--skip-preview", "--logtostderr", "-v=7"]));
    const breakdown = phases(up.stderr, up.seconds);
    breakdowns[metric] ??= breakdown;
    for (const [phase, seconds] of breakdown) record(`${metric} | ${phase} (s)`, seconds);
}

// The floor: one ssh session, one plain script doing what the component does on a fresh host.
function floor(files: { mainCf: string; aliases: string; mailname: string }): void {
    const address = "127.0.41.2";
    withHosts([["bench-floor", address]], ([h]) => {
        measure("floor: one ssh session", [h], () => {
            const { key, cert } = selfSigned();
            const ssh = spawnSync("ssh", ["-i", h.privateKeyPath, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", `UserKnownHostsFile=${join(dirname(h.privateKeyPath), "known_hosts")}`, "-o", "StrictHostKeyChecking=yes",
                `root@${address}`, "sh", "-s"], { input: floorScript({ ...files, mainCf: files.mainCf.replaceAll("127.0.40.2", address), key, cert }), encoding: "utf8" });
            if (ssh.status !== 0) throw new Error(`floor script failed (${ssh.status}):\n${ssh.stdout}\n${ssh.stderr}`);
        });
        hostOk(h.name, "postfix status");
    });
    // The same script as the one step of a Pulumi program: the floor plus the engine's own cost.
    const stepAddress = "127.0.41.3";
    withHosts([["bench-floor-step", stepAddress]], ([h]) => {
        const project = ScratchProject.oneStep();
        try {
            writeFileSync(join(project.dir, "floor.sh"), floorScript({ ...files, mainCf: files.mainCf.replaceAll("127.0.40.2", stepAddress), ...selfSigned() }));
            const env = { ...project.env, BENCH_HOST: stepAddress, BENCH_KEY: h.privateKeyPath, BENCH_HOST_KEY: h.hostPublicKey };
            project.ok(env, ["stack", "init", "bench-one-step", "--secrets-provider", "passphrase"]);
            measure("floor as one Pulumi step", [h], () => project.ok(env, ["up", "--yes", "--skip-preview", "--stack", "bench-one-step"]));
        } finally {
            project.remove();
        }
        hostOk(h.name, "postfix status");
    });
}

/** A key and self-signed certificate as the component makes them (RSA 2048, 3 years). */
function selfSigned(): { key: string; cert: string } {
    const tls = spawnSync("sh", ["-c",
        'd=$(mktemp -d) && openssl req -x509 -newkey rsa:2048 -nodes -days 1095 -subj /CN=mx1.bench.test -addext subjectAltName=DNS:mx1.bench.test ' +
        '-keyout "$d/key" -out "$d/crt" 2>/dev/null && cat "$d/key" "$d/crt" && rm -rf "$d"'], { encoding: "utf8" });
    if (tls.status !== 0) throw new Error(`openssl failed: ${tls.stderr}`);
    const [key, cert] = tls.stdout.split(/(?=-----BEGIN CERTIFICATE-----)/);
    return { key, cert };
}

function floorScript(f: { mainCf: string; aliases: string; mailname: string; key: string; cert: string }): string {
    const settings = validateMailOptions({ ...mail(52428800), hostname: "mx1.bench.test", listenAddresses: ["127.0.41.2"] }, (k) => k).settings!;
    const file = (path: string, mode: string, content: string) => `cat >${path} <<'BENCH_EOF'\n${content.trimEnd()}\nBENCH_EOF\nchmod ${mode} ${path}`;
    return [
        "set -eu", "export DEBIAN_FRONTEND=noninteractive",
        `debconf-set-selections <<'BENCH_EOF'\n${renderPreseed(settings).trimEnd()}\nBENCH_EOF`,
        "apt-get -q -y install postfix postfix-doc >/dev/null",
        "for u in fribeiro alice; do useradd --create-home --shell /usr/sbin/nologin \"$u\"; done",
        file("/etc/ssl/private/server.key.insecure", "0600", f.key),
        file("/etc/ssl/certs/server.crt", "0644", f.cert),
        file("/etc/mailname", "0644", f.mailname),
        file("/etc/aliases", "0644", f.aliases),
        file("/etc/postfix/main.cf", "0644", f.mainCf),
        "newaliases", "postfix start",
    ].join("\n") + "\n";
}

// 4: one stack with 2 and 4 hosts (1 host is the single-host figure above).
function scale(n: 2 | 4): void {
    const specs = Array.from({ length: n }, (_, i): [string, string] => [`bench-s${n}-${i + 1}`, `127.0.${n === 2 ? 42 : 43}.${i + 2}`]);
    withHosts(specs, (hosts) => withStack(`bench-s${n}`, hosts, (stack) => {
        measure(`cold up [${n} hosts]`, hosts, () => stack.up());
        measure(`no-change up [${n} hosts]`, hosts, () => stack.ok(NO_CHANGE_UP));
    }));
}

// ------------------------------------------------------------------------------------------------
function report(load: { start: number[]; end: number[] }): string {
    const stat = (metric: string) => { const v = samples.get(metric) ?? []; return { median: median(v), min: Math.min(...v), max: Math.max(...v), samples: v }; };
    const fmt = (x: number, metric: string) => (metric.endsWith("(s)") ? x.toFixed(1) : String(x));
    const rows = [...samples.keys()].map((m) => { const s = stat(m); return `| ${m} | ${fmt(s.median, m)} | ${fmt(s.min, m)} | ${fmt(s.max, m)} |`; });
    const ratio = (a: string, b: string) => `${(stat(`${a} (s)`).median / stat(`${b} (s)`).median).toFixed(2)}x`;
    const ssh = (m: string) => stat(`${m}: SSH connections`).median;
    const lines = [
        `${RUNS} runs; median, min, max. Load average (1, 5, 15 min) at start ${load.start.map((l) => l.toFixed(2)).join(" ")}, at end ${load.end.map((l) => l.toFixed(2)).join(" ")}.`,
        "", "| measure | median | min | max |", "|---|---|---|---|", ...rows, "",
        `- cold converge vs floor (one ssh session): ${ratio("cold up [1 host]", "floor: one ssh session")}`,
        `- the floor as one Pulumi step vs the floor: ${ratio("floor as one Pulumi step", "floor: one ssh session")} (the engine's share); ` +
            `cold converge vs the floor as one Pulumi step: ${ratio("cold up [1 host]", "floor as one Pulumi step")} (the component's own share)`,
        `- no-change preview vs empty program preview: ${ratio("no-change preview [1 host]", "empty program: preview")}; SSH connections: ${ssh("no-change preview [1 host]")}`,
        `- no-change up vs empty program up: ${ratio("no-change up [1 host]", "empty program: up")}; SSH connections: ${ssh("no-change up [1 host]")}`,
        `- one-setting change (messageSizeLimit): up ${stat("one-setting change: up (s)").median.toFixed(1)} s = ${ratio("one-setting change: up", "no-change up [1 host]")} a no-change up, ${ssh("one-setting change: up")} SSH connections; steps (${changeStepsFrom}): ${Object.entries(changeSteps).map(([k, v]) => `${k} ${v}`).join(", ")}`,
        ...Object.keys(breakdowns).map((run) => `- where the seconds of "${run}" went (medians of the phase rows above): ` +
            breakdowns[run].map(([phase]) => `${phase.replace(/^step /, "")} ${stat(`${run} | ${phase} (s)`).median.toFixed(2)}`).join("; ")),
        `- scale, cold up 1/2/4 hosts: ${[1, 2, 4].map((n) => stat(`cold up [${n} host${n > 1 ? "s" : ""}] (s)`).median.toFixed(1)).join(" / ")} s; no-change up: ${[1, 2, 4].map((n) => stat(`no-change up [${n} host${n > 1 ? "s" : ""}] (s)`).median.toFixed(1)).join(" / ")} s`,
        `- TS start-up, no-change preview: as configured (tsconfig.pulumi.json, transpile only) ${stat("no-change preview [1 host] (s)").median.toFixed(1)} s, transpile only ${stat("no-change preview, PULUMI_NODEJS_TRANSPILE_ONLY=true (s)").median.toFixed(1)} s, precompiled ${stat("no-change preview, typescript: false + dist/index.js (s)").median.toFixed(1)} s`,
    ];
    if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify({ runs: RUNS, load, metrics: Object.fromEntries([...samples.keys()].map((m) => [m, stat(m)])), changeSteps, changeStepsFrom, breakdowns }, null, 2) + "\n");
    return lines.join("\n");
}

// ------------------------------------------------------------------------------------------------
// The fleet series: 1, 4, 8, 16 servers in one stack (127.0.45.x). Cold up, no-change up, a change
// of one setting every server shares, and at 16 the same cold up with --parallel 32 (the engine's
// default is 4 x GOMAXPROCS = 8 operations at once here). Where the time goes: each host's
// dpkg.log gives its postfix install window.
const FLEET_SIZES = [1, 4, 8, 16];

function fleetRun(n: number, parallel?: number): void {
    const tag = parallel ? `${n}, --parallel ${parallel}` : `${n}`;
    const specs = Array.from({ length: n }, (_, i): [string, string] => [`bench-f${i + 1}`, `127.0.45.${i + 2}`]);
    withHosts(specs, (hosts) => withStack("bench-fleet", hosts, (stack) => {
        const flags = parallel ? ["--parallel", String(parallel)] : [];
        measure(`fleet cold up [${tag}]`, hosts, () => stack.ok(["up", "--yes", "--skip-preview", ...flags]));
        const windows = hosts.map((h) => postfixInstallWindow(h.name));
        const span = Math.max(...windows.map((w) => w[1])) - Math.min(...windows.map((w) => w[0]));
        record(`fleet cold up [${tag}]: dpkg span, first install start to last end (s)`, span);
        record(`fleet cold up [${tag}]: dpkg, mean install (s)`, windows.reduce((a, w) => a + w[1] - w[0], 0) / n);
        if (parallel) return;
        measure(`fleet no-change up [${tag}]`, hosts, () => stack.ok(NO_CHANGE_UP));
        stack.configure(config(hosts, 10485760));
        measure(`fleet shared-setting change: up [${tag}]`, hosts, () => stack.ok(["up", "--yes", "--skip-preview"]));
    }));
}

function fleetReport(load: { start: number[]; end: number[] }): string {
    const med = (metric: string) => median(samples.get(metric) ?? [NaN]);
    const fmt = (x: number) => (Number.isNaN(x) ? "—" : Number.isInteger(x) ? String(x) : x.toFixed(1));
    const cold1 = med("fleet cold up [1] (s)");
    const rows = FLEET_SIZES.map((n) => {
        const cold = med(`fleet cold up [${n}] (s)`);
        return `| ${n} | ${fmt(cold)} | ${n > 1 ? fmt((cold - cold1) / (n - 1)) : "—"} | ${fmt(med(`fleet cold up [${n}]: SSH connections`))} | ` +
            `${fmt(med(`fleet cold up [${n}]: dpkg span, first install start to last end (s)`))} | ${fmt(med(`fleet cold up [${n}]: dpkg, mean install (s)`))} | ` +
            `${fmt(med(`fleet no-change up [${n}] (s)`))} | ${fmt(med(`fleet no-change up [${n}]: SSH connections`))} | ` +
            `${fmt(med(`fleet shared-setting change: up [${n}] (s)`))} | ${fmt(med(`fleet shared-setting change: up [${n}]: SSH connections`))} |`;
    });
    const p = "16, --parallel 32";
    return [
        `${RUNS} run(s); medians. Load average (1, 5, 15 min) at start ${load.start.map((l) => l.toFixed(2)).join(" ")}, at end ${load.end.map((l) => l.toFixed(2)).join(" ")}.`, "",
        "| servers | cold up (s) | per added server (s) | SSH connections | dpkg span (s) | mean dpkg install (s) | no-change up (s) | SSH | shared-setting change up (s) | SSH |",
        "|---|---|---|---|---|---|---|---|---|---|", ...rows, "",
        `- 16 servers with --parallel 32: cold up ${fmt(med(`fleet cold up [${p}] (s)`))} s (default parallelism 8: ${fmt(med("fleet cold up [16] (s)"))} s); ` +
        `dpkg span ${fmt(med(`fleet cold up [${p}]: dpkg span, first install start to last end (s)`))} s, mean install ${fmt(med(`fleet cold up [${p}]: dpkg, mean install (s)`))} s`,
    ].join("\n");
}

function main(): void {
    const start = loadavg();
    console.log(`load average at start: ${start.map((l) => l.toFixed(2)).join(" ")}`);
    if (FLEET) {
        for (let run = 1; run <= RUNS; run++) {
            for (const n of FLEET_SIZES) { console.log(`fleet run ${run}/${RUNS}: ${n} servers`); fleetRun(n); }
            console.log(`fleet run ${run}/${RUNS}: 16 servers, --parallel 32`);
            fleetRun(16, 32);
        }
        const end = loadavg();
        if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify({ runs: RUNS, load: { start, end }, samples: Object.fromEntries(samples) }, null, 2) + "\n");
        console.log(fleetReport({ start, end }));
        return;
    }
    const empty = ScratchProject.empty();
    const precompiled = ScratchProject.precompiled();
    try {
        empty.init();
        for (let run = 1; run <= RUNS; run++) {
            console.log(`run ${run}/${RUNS}`);
            measure("empty program: preview", [], () => empty.ok(empty.env, ["preview", "--expect-no-changes", "--stack", "bench-empty"]));
            measure("empty program: up", [], () => empty.ok(empty.env, ["up", "--yes", "--skip-preview", "--expect-no-changes", "--stack", "bench-empty"]));
            floor(singleHost(precompiled));
            scale(2);
            scale(4);
        }
    } finally {
        empty.remove();
        precompiled.remove();
    }
    console.log(report({ start, end: loadavg() }));
}

main();
