// A throw-away PostgreSQL server for the team-state test: its own data directory, listening only
// on 127.0.0.1 at the given port, started and stopped by the test (PostgreSQL from Debian's
// packages; scripts/setup.sh installs them).
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class Postgres {
    private readonly dir = mkdtempSync(join(tmpdir(), "pulumi-postfix-pg-"));
    private readonly bin: string;

    constructor(readonly port: number) {
        const versions = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
        if (versions.length === 0) throw new Error("PostgreSQL is not installed (bash scripts/setup.sh installs it)");
        this.bin = join("/usr/lib/postgresql", versions[0], "bin");
    }

    private asPostgres(program: string, args: string[]): string {
        return execFileSync("runuser", ["-u", "postgres", "--", join(this.bin, program), ...args], { encoding: "utf8", cwd: this.dir });
    }

    /** initdb and start; password authentication over TCP, no Unix socket outside the data directory. */
    start(): void {
        const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
        const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
        chownSync(this.dir, uid, gid);
        writeFileSync(join(this.dir, "superuser-password"), "postgres-e2e\n");
        chownSync(join(this.dir, "superuser-password"), uid, gid);
        this.asPostgres("initdb", ["-D", join(this.dir, "data"), "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${join(this.dir, "superuser-password")}`]);
        this.asPostgres("pg_ctl", ["-D", join(this.dir, "data"), "-l", join(this.dir, "server.log"), "-w", "start",
            "-o", `-c listen_addresses=127.0.0.1 -c port=${this.port} -c unix_socket_directories=${this.dir}`]);
    }

    /** Runs SQL as a role (password from the URL form `role:password`); returns psql's unaligned output. */
    sql(sql: string, role = "postgres", password = "postgres-e2e", database = "postgres"): string {
        const r = spawnSync("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(this.port), "-U", role, "-d", database, "-c", sql], {
            encoding: "utf8", env: { ...process.env, PGPASSWORD: password }, maxBuffer: 256 << 20,
        });
        if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
        return r.stdout;
    }

    stop(): void {
        spawnSync("runuser", ["-u", "postgres", "--", join(this.bin, "pg_ctl"), "-D", join(this.dir, "data"), "-m", "fast", "-w", "stop"], { stdio: "ignore" });
        rmSync(this.dir, { recursive: true, force: true });
    }
}
