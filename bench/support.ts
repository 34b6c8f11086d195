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
