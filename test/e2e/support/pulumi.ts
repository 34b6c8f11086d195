// Runs the real Pulumi CLI (scripts/pulumi.sh: the offline engine) on this project, one stack per
// test suite, with its own file backend and passphrase.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump, load } from "js-yaml";
import assert from "node:assert/strict";
import type { Change } from "../../../components/core/changes";
import type { Report } from "../../../components/core/checks";
import { REPO } from "../../support/stack";

export interface Run {
    status: number;
    stdout: string;
    stderr: string;
    seconds: number;
}

export interface StackPlace {
    /** The project's working copy (default: this repository). */
    dir?: string;
    /** Environment over the defaults: another backend, Pulumi home or passphrase. */
    env?: Record<string, string>;
}

export class Stack {
    readonly backend = mkdtempSync(join(tmpdir(), "pulumi-postfix-state-"));
    readonly file: string;
    readonly dir: string;
    /** A committed stack file (home, lab) is put back as it was when the stack is removed. */
    private readonly committed?: string;

    constructor(readonly name: string, private readonly place: StackPlace = {}) {
        this.dir = place.dir ?? REPO;
        this.file = join(this.dir, "stacks", `Pulumi.${name}.yaml`);
        if (existsSync(this.file)) this.committed = readFileSync(this.file, "utf8");
    }

    get env(): NodeJS.ProcessEnv {
        const env: NodeJS.ProcessEnv = {
            ...process.env, PULUMI_BACKEND_URL: `file://${this.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase", ...this.place.env,
        };
        // The command provider would otherwise try the workstation's SSH agent; a test that
        // means the agent names its socket.
        if (this.place.env?.SSH_AUTH_SOCK === undefined) delete env.SSH_AUTH_SOCK;
        // A test that means `pulumi login` to choose the backend says so with an empty value.
        if (env.PULUMI_BACKEND_URL === "") delete env.PULUMI_BACKEND_URL;
        return env;
    }

    run(args: string[], options: { stdin?: string; global?: boolean } = {}): Run {
        const started = Date.now();
        const stackArgs = options.global ? [] : ["--stack", this.name, "--non-interactive"];
        const r = spawnSync("bash", [join(REPO, "scripts", "pulumi.sh"), ...args, ...stackArgs], {
            cwd: this.dir, env: this.env, encoding: "utf8", input: options.stdin, maxBuffer: 64 << 20,
        });
        return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
    }

    /** Runs and requires success. */
    ok(args: string[], options: { stdin?: string; global?: boolean } = {}): Run {
        const r = this.run(args, options);
        if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
        return r;
    }

    /** Creates the stack; with a config, writes it first (else the committed file is used). */
    init(config?: Record<string, unknown>): void {
        if (config) this.configure(config);
        this.ok(["stack", "init", "--secrets-provider", "passphrase"]);
    }

    /**
     * Writes the stack's config file, keeping the passphrase salt that `stack init` added, and the
     * secrets set with setSecret (encrypted, as `pulumi config set --secret` left them).
     */
    configure(config: Record<string, unknown>): void {
        const previous = existsSync(this.file) ? (load(readFileSync(this.file, "utf8")) as Record<string, any>) : {};
        const secrets = Object.fromEntries([...this.secretKeys].filter((key) => previous.config?.[key] !== undefined).map((key) => [key, previous.config[key]]));
        writeFileSync(this.file, dump({ ...(previous.encryptionsalt ? { encryptionsalt: previous.encryptionsalt } : {}), config: { ...config, ...secrets } }));
    }

    private readonly secretKeys = new Set<string>();

    /** `pulumi config set --secret --path PATH` (the value on standard input, as a user types it); configure keeps it. */
    setSecret(path: string, value: string): void {
        this.ok(["config", "set", "--secret", "--path", path], { stdin: value });
        this.secretKeys.add(path.split(/[.[]/)[0]);
    }

    /** `pulumi config rm --path PATH`: the secret is gone, and configure no longer keeps it. */
    removeSecret(path: string): void {
        this.ok(["config", "rm", "--path", path]);
        const key = path.split(/[.[]/)[0];
        if (path === key) this.secretKeys.delete(key);
    }

    up(): Run {
        return this.ok(["up", "--yes", "--skip-preview"]);
    }

    /** Resource operations the engine plans: `name -> op` (only those that are not "same"). */
    plannedChanges(): Record<string, string> {
        const r = this.ok(["preview", "--json"]);
        const steps = (JSON.parse(r.stdout).steps ?? []) as Array<{ op: string; urn: string }>;
        return Object.fromEntries(steps.filter((s) => s.op !== "same").map((s) => [s.urn.split("::").pop()!, s.op]));
    }

    outputs(): Record<string, any> {
        return JSON.parse(this.ok(["stack", "output", "--json"]).stdout);
    }

    /** `npm run verify -- --changes --json`: what the next `pulumi up` would change on each server. */
    changes(expectedStatus = 0): { servers: Array<{ name: string; changes?: Change[]; error?: string }> } {
        const r = this.verifyCli(["--changes", "--json"]);
        assert.equal(r.status, expectedStatus, `verify --changes exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
        return JSON.parse(r.stdout);
    }

    /** `npm run verify -- --stack <this> --json` from a LAN source address, as a user runs it (needs dist/ built). */
    verify(sourceAddress: string, extra: string[] = []): Report {
        const r = this.verifyCli(["--json", "--source-address", sourceAddress, ...extra]);
        assert.ok(r.status === 0 || r.status === 1, `verify exited ${r.status}:\n${r.stderr}`);
        const report = JSON.parse(r.stdout) as Report;
        assert.equal(r.status, report.failed === 0 ? 0 : 1, "exit 0 only when every check passes");
        return report;
    }

    private verifyCli(args: string[]) {
        return spawnSync(process.execPath, [join(REPO, "dist", "cli", "verify.js"), "--stack", this.name, ...args], {
            cwd: this.dir, encoding: "utf8", env: { ...this.env, PULUMI_POSTFIX_PULUMI: `bash ${join(REPO, "scripts", "pulumi.sh")}` },
        });
    }

    remove(): void {
        this.run(["stack", "rm", "--yes", "--force"]);
        if (this.committed === undefined) rmSync(this.file, { force: true });
        else writeFileSync(this.file, this.committed);
        rmSync(this.backend, { recursive: true, force: true });
    }
}
