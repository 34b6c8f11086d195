// Two admins, one stack, state shared in PostgreSQL (Pulumi's DIY backend, `pulumi login
// postgres://...`): two working copies with their own Pulumi homes. While one runs `pulumi up`,
// the other's is refused with Pulumi's lock message and changes nothing; afterwards the second
// sees the first's outputs and plans no change; the state rows hold no secret in clear text.
// PostgreSQL listens on 127.0.0.1 only, started and stopped by this test.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { mxConfig } from "./support/config";
import { hostDown, hostOk, HostInfo, hostUp, masterPid } from "./support/host";
import { Postgres } from "./support/postgres";
import { runInBackground, sleep } from "./support/background";
import { Stack } from "./support/pulumi";

const name = "e2e-team";
const subnet = "127.0.66";
const address = `${subnet}.2`;
const STACK = "team";
const PASSPHRASE = "shared by the team";
const postgres = new Postgres(54366);
const BACKEND = "postgres://pulumi:team-password@127.0.0.1:54366/pulumi?sslmode=disable";

/**
 * One admin's working copy of the project, with a Pulumi home of its own, logged in to the shared
 * backend as the README's team section says (`pulumi login postgres://...`, no environment override).
 */
function workstation(): Stack {
    const dir = mkdtempSync(join(tmpdir(), "pulumi-postfix-ws-"));
    for (const entry of ["Pulumi.yaml", "index.ts", "components", "tsconfig.json", "tsconfig.pulumi.json", "package.json"]) {
        cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    mkdirSync(join(dir, "stacks"));
    return new Stack(STACK, { dir, env: { PULUMI_HOME: join(dir, ".pulumi-home"), PULUMI_BACKEND_URL: "", PULUMI_CONFIG_PASSPHRASE: PASSPHRASE } });
}

describe("two workstations sharing one stack's state in PostgreSQL", { timeout: 15 * 60_000 }, () => {
    const alice = workstation();
    const bob = workstation();
    let host: HostInfo;

    before(() => {
        postgres.start();
        postgres.sql("CREATE ROLE pulumi LOGIN PASSWORD 'team-password'");
        postgres.sql("CREATE DATABASE pulumi OWNER pulumi");
        host = hostUp(name, "bookworm", address);
        for (const ws of [alice, bob]) ws.ok(["login", BACKEND], { global: true });
        // Alice creates the stack; the stack file (with the passphrase's salt) goes to Bob as git would bring it.
        alice.init(mxConfig({ host, subnet }));
        cpSync(alice.file, bob.file);
    });
    after(() => {
        for (const ws of [alice, bob]) for (const dir of [ws.dir, ws.backend]) rmSync(dir, { recursive: true, force: true });
        hostDown(name);
        postgres.stop();
    });

    test("while Alice runs pulumi up, Bob's is refused with Pulumi's lock message and changes nothing", async () => {
        const up = runInBackground(alice, ["up", "--yes", "--skip-preview"]);
        // Alice's update holds the lock: its row is in the table.
        const deadline = Date.now() + 120_000;
        while (postgres.sql("SELECT count(*) FROM pulumi_state WHERE key LIKE '%/locks/%'", "pulumi", "team-password", "pulumi").trim() === "0") {
            assert.ok(Date.now() < deadline, "Alice's update took no lock");
            await sleep(250);
        }
        const refused = bob.run(["up", "--yes", "--skip-preview"]);
        const text = refused.stdout + refused.stderr;
        console.log(text.split("\n").filter((l) => /lock/i.test(l)).map((l) => `# bob: ${l.trim()}`).join("\n"));
        assert.notEqual(refused.status, 0);
        assert.match(text, /the stack is currently locked by 1 lock\(s\)\. Either wait for the other process\(es\) to end or delete the lock file with `pulumi cancel`\./);
        assert.doesNotMatch(text, /command:(remote|local):Command|pulumi:pulumi:Stack/, "Bob's run reached no resource");
        const alices = await up;
        assert.equal(alices.status, 0, alices.stdout);
        assert.ok(masterPid(name), "postfix runs");
    });

    test("afterwards Bob sees Alice's outputs and plans no change", () => {
        const outputs = (ws: Stack) => JSON.parse(ws.ok(["stack", "output", "--json"]).stdout);
        assert.deepEqual(outputs(bob), outputs(alice));
        assert.match(outputs(bob).mailServers.mx.certificateSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
        const preview = bob.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
    });

    test("pulumi login is what chose the backend: each working copy reports PostgreSQL", () => {
        for (const ws of [alice, bob]) {
            const about = ws.ok(["whoami", "--verbose"], { global: true }).stdout;
            assert.match(about, /Backend URL: postgres:\/\/pulumi:\*+@127\.0\.0\.1:54366\/pulumi|Backend URL: postgres:\/\/pulumi/, about);
        }
        assert.doesNotMatch(readFileSync(join(REPO, "Pulumi.yaml"), "utf8"), /^backend:/m, "no project backend outranks the login");
    });

    test("the state rows in PostgreSQL hold no secret in clear text", () => {
        const rows = postgres.sql("SELECT key || ' ' || (data->>'data') FROM pulumi_state", "pulumi", "team-password", "pulumi")
            .split("\n").filter(Boolean).map((line) => {
                const [key, base64] = line.split(" ");
                return { key, text: Buffer.from(base64 ?? "", "base64").toString("utf8") };
            });
        const state = rows.filter((r) => r.key.includes(`/${STACK}.json`));
        assert.ok(state.length > 0 && state.some((r) => r.text.includes("command:remote:Command")), `the stack's state is in the table: ${rows.map((r) => r.key).join(", ")}`);
        const tlsKey = hostOk(name, "cat /etc/ssl/private/server.key.insecure");
        const sshKey = readFileSync(host.privateKeyPath, "utf8");
        const all = rows.map((r) => r.text).join("\n");
        for (const [what, key] of [["TLS key", tlsKey], ["SSH key", sshKey]] as const) {
            for (const line of key.split("\n").filter((l) => l.length > 40)) assert.ok(!all.includes(line), `a line of the ${what} is in the table`);
        }
        assert.doesNotMatch(all, /PRIVATE KEY/);
        assert.match(all, /"ciphertext"/, "secrets are there, encrypted");
    });
});
