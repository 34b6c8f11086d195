// scripts/e2e.sh, the end-to-end suites' runner: a failing suite fails the run, with its output
// and one line per suite; the seconds it records order the next run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const root = join(__dirname, "..", "..", "..");

function runSuites(dir: string, suites: string[], env: Record<string, string> = {}) {
    // NODE_TEST_CONTEXT, set by this test's own runner, would make the inner `node --test` skip its files.
    const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
    return spawnSync("bash", [join(root, "scripts", "e2e.sh"), ...suites.map(name => join(dir, `${name}.test.js`))], {
        encoding: "utf8",
        env: { ...outer, PULUMI_POSTFIX_CACHE: join(dir, "cache"), ...env },
    });
}

test("e2e.sh: one failing suite fails the run, prints its output and a line per suite, and records every suite's seconds", () => {
    const dir = mkdtempSync(join(tmpdir(), "e2e-runner-"));
    try {
        writeFileSync(join(dir, "runner-passes.test.js"), `require("node:test").test("passes", () => {});\n`);
        writeFileSync(join(dir, "runner-fails.test.js"),
            `require("node:test").test("fails", () => { require("node:assert").fail("the failing suite's own message"); });\n`);

        const both = runSuites(dir, ["runner-passes", "runner-fails"]);
        assert.equal(both.status, 1, both.stdout + both.stderr);
        assert.match(both.stdout, /the failing suite's own message/);
        assert.match(both.stdout, /^ {2}ok {3}runner-passes \(\d+ s\)$/m);
        assert.match(both.stdout, /^ {2}FAIL runner-fails \(\d+ s, exit 1\)$/m);
        assert.equal(both.stderr, "");
        const recorded = readFileSync(join(dir, "cache", "e2e-seconds"), "utf8");
        assert.match(recorded, /^runner-passes \d+$/m);
        assert.match(recorded, /^runner-fails \d+$/m);

        const passing = runSuites(dir, ["runner-passes"]);
        assert.equal(passing.status, 0, passing.stdout + passing.stderr);
        assert.equal(readFileSync(join(dir, "cache", "e2e-seconds"), "utf8").match(/^runner-passes /gm)?.length, 1);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("e2e.sh: E2E_JOBS that is not a positive number is refused by name before any suite runs", () => {
    const dir = mkdtempSync(join(tmpdir(), "e2e-runner-"));
    try {
        writeFileSync(join(dir, "runner-passes.test.js"), `require("node:test").test("passes", () => {});\n`);
        for (const jobs of ["0", "two", "-1"]) {
            const run = runSuites(dir, ["runner-passes"], { E2E_JOBS: jobs });
            assert.equal(run.status, 2);
            assert.match(run.stderr, /E2E_JOBS must be a positive number/);
            assert.equal(run.stdout, "");
        }
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});
