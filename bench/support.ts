// Small helpers for bench.ts: timing, statistics, and scratch Pulumi projects under /tmp.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";
import { REPO } from "../test/support/stack";

/** Runs fn; returns its result and the wall time in seconds. */
export function timed<T>(fn: () => T): [T, number] {
    const start = process.hrtime.bigint();
    const result = fn();
    return [result, Number(process.hrtime.bigint() - start) / 1e9];
}

export function median(values: number[]): number {
    const s = [...values].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs fn with one environment variable set (child processes inherit process.env). */
export function withEnv<T>(name: string, value: string, fn: () => T): T {
    const old = process.env[name];
    process.env[name] = value;
    try {
        return fn();
    } finally {
        if (old === undefined) delete process.env[name];
        else process.env[name] = old;
    }
}

/** A throw-away Pulumi project under /tmp, run by the same engine (scripts/pulumi.sh). */
export class ScratchProject {
    readonly backend = mkdtempSync(join(tmpdir(), "bench-state-"));

    private constructor(readonly dir: string) {}

    /** A TypeScript program that exports nothing: the engine's own floor. */
    static empty(): ScratchProject {
        const p = new ScratchProject(mkdtempSync(join(tmpdir(), "bench-empty-")));
        writeFileSync(join(p.dir, "Pulumi.yaml"), dump({ name: "bench-empty", runtime: { name: "nodejs", options: { typescript: true } }, main: "index.ts" }));
        writeFileSync(join(p.dir, "index.ts"), "export {};\n");
        writeFileSync(join(p.dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "commonjs", types: ["node"] } }));
        symlinkSync(join(REPO, "node_modules"), join(p.dir, "node_modules"));
        return p;
    }

    /** This project with `typescript: false` and the precompiled dist/index.js (run `tsc` first). */
    static precompiled(): ScratchProject {
        const p = new ScratchProject(mkdtempSync(join(tmpdir(), "bench-precompiled-")));
        writeFileSync(join(p.dir, "Pulumi.yaml"), dump({
            name: "pulumi-postfix", runtime: { name: "nodejs", options: { typescript: false } }, main: "dist/index.js", stackConfigDir: "stacks",
        }));
        for (const link of ["node_modules", "dist", "stacks"]) symlinkSync(join(REPO, link), join(p.dir, link));
        return p;
    }

    /**
     * A TypeScript program with one remote command that pipes `floor.sh` (written by the caller)
     * into `sh -s` on the host named by the BENCH_* variables: the floor's script, as one
     * Pulumi step. What is left between it and the component is the component's own work.
     */
    static oneStep(): ScratchProject {
        const p = new ScratchProject(mkdtempSync(join(tmpdir(), "bench-one-step-")));
        writeFileSync(join(p.dir, "Pulumi.yaml"), dump({ name: "bench-one-step", runtime: { name: "nodejs", options: { typescript: true } }, main: "index.ts" }));
        writeFileSync(join(p.dir, "index.ts"), [
            'import * as command from "@pulumi/command";',
            'import { readFileSync } from "node:fs";',
            "const env = (name: string) => process.env[name] ?? \"\";",
            'new command.remote.Command("floor", {',
            '    connection: { host: env("BENCH_HOST"), user: "root", privateKey: readFileSync(env("BENCH_KEY"), "utf8"), hostKey: env("BENCH_HOST_KEY") },',
            '    create: "sh -s",',
            '    stdin: readFileSync("floor.sh", "utf8"),',
            "    addPreviousOutputInEnv: false,",
            "});",
            "",
        ].join("\n"));
        writeFileSync(join(p.dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "commonjs", types: ["node"] } }));
        symlinkSync(join(REPO, "node_modules"), join(p.dir, "node_modules"));
        return p;
    }

    get env(): NodeJS.ProcessEnv {
        const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_BACKEND_URL: `file://${this.backend}`, PULUMI_CONFIG_PASSPHRASE: "bench-passphrase" };
        delete env.SSH_AUTH_SOCK;
        return env;
    }

    ok(env: NodeJS.ProcessEnv, args: string[]): string {
        const r = spawnSync("bash", [join(REPO, "scripts", "pulumi.sh"), ...args, "--non-interactive"], { cwd: this.dir, env, encoding: "utf8", maxBuffer: 64 << 20 });
        if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} in ${this.dir} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
    }

    /** Creates the stack `bench-empty` and brings it up once, so later runs change nothing. */
    init(): void {
        this.ok(this.env, ["stack", "init", "bench-empty", "--secrets-provider", "passphrase"]);
        this.ok(this.env, ["up", "--yes", "--skip-preview", "--stack", "bench-empty"]);
    }

    remove(): void {
        rmSync(this.dir, { recursive: true, force: true });
        rmSync(this.backend, { recursive: true, force: true });
    }
}

/**
 * Where the seconds of one `pulumi up` went, from the engine's own log (`--logtostderr -v=7`:
 * JSON lines with nanosecond times; each provider call logs "executing" and "success"). Phases:
 * engine and program start (until the first step starts), each step (the provider's
 * Create/Update of it, which for a remote step includes its SSH connection), the engine between
 * steps, and the finish (after the last step, until the process ended). The log holds secrets:
 * it is parsed here and never written anywhere.
 */
/** `2026-12-01T16:56:02.627934325Z` -> epoch seconds, to the microsecond. */
function seconds(time: string): number {
    const fraction = /\.(\d+)/.exec(time)?.[1] ?? "0";
    return Date.parse(`${time.slice(0, 19)}Z`) / 1000 + Number(`0.${fraction.slice(0, 6)}`);
}

export function phases(engineLog: string, wallSeconds: number): Array<[string, number]> {
    const entries = engineLog.split("\n").flatMap((line) => {
        try {
            const entry = JSON.parse(line) as { time?: string; msg?: string };
            return entry.time && entry.msg ? [{ at: seconds(entry.time), msg: entry.msg }] : [];
        } catch {
            return [];
        }
    });
    if (entries.length === 0) return [];
    const steps = new Map<string, { start: number; end?: number }>();
    for (const { at, msg } of entries) {
        const call = /^Provider\[[^\]]*\]\.(?:Create|Update)\((?:[^,]*,)?urn:[^)]*::([^:)]+)\) (executing|success)/.exec(msg);
        if (!call) continue;
        const [, name, what] = call;
        if (what === "executing") steps.set(name, { start: at });
        else if (steps.has(name)) steps.get(name)!.end = at;
    }
    const first = entries[0].at;
    const ran = [...steps.entries()].filter(([, s]) => s.end !== undefined).sort((a, b) => a[1].start - b[1].start);
    if (ran.length === 0) return [["engine and program, no step ran", wallSeconds]];
    // The log starts a little after the process: the difference counts as engine start.
    const logStart = first - (wallSeconds - (entries[entries.length - 1].at - first));
    const startPhase = ran[0][1].start - logStart;
    // Steps may overlap (the file steps run side by side): the busy time is the union.
    let busy = 0;
    let reach = -Infinity;
    for (const [, s] of ran) {
        busy += Math.max(0, s.end! - Math.max(s.start, reach));
        reach = Math.max(reach, s.end!);
    }
    const lastEnd = Math.max(...ran.map(([, s]) => s.end!));
    const between = lastEnd - ran[0][1].start - busy;
    const finish = wallSeconds - startPhase - (lastEnd - ran[0][1].start);
    return [
        ["engine and program start, until the first step", startPhase],
        ...ran.map(([name, s]): [string, number] => [`step ${name}`, s.end! - s.start]),
        ["engine between steps (no step running)", between],
        ["after the last step, until pulumi exits", finish],
    ];
}
