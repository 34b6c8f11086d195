// Drift, the pure part: the read script's output parsed, the host's facts in the expected shape,
// which steps run again, the repair count in a command; and server-read.sh itself, run with sh.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
    bumpRepairs, differingFacts, driftedSteps, expectedFacts, expectedMainCf, NOT_SET, observedFacts, parseServerRead, readRequest, ServerFacts, withRepairCount,
} from "../../components/core/drift";
import { PATHS } from "../../components/core/paths";
import { shellFile } from "../../components/shell-files";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

const { settings } = readStackConfig(stackConfig("home")).servers[0];
const DIGEST = "a".repeat(64);
const fileSteps = { [PATHS.mainCf]: "main-cf", [PATHS.aliases]: "aliases", [PATHS.tlsKey]: "tls-key", [PATHS.masterCf]: "master-cf" };
const expected: ServerFacts = expectedFacts(settings, {
    scriptsDir: "/var/lib/pulumi-postfix/scripts/0123456789abcdef",
    files: [
        { path: PATHS.aliases, step: "aliases", sha256: DIGEST, mode: "0644", owner: "root:root" },
        { path: PATHS.tlsKey, step: "tls-key", sha256: DIGEST, mode: "0600", owner: "root:root" },
        { path: PATHS.mainCf, step: "main-cf", mode: "0644", owner: "root:root" },
        { path: PATHS.masterCf, step: "master-cf", mode: "0644", owner: "root:root" },
    ],
    packages: ["postfix", "postfix-doc"],
    services: ["postfix"],
});

/** What server-read.sh prints for a host exactly as deployed (main.cf with Debian's level, and spacing of its own). */
function cleanRead(changes: { postconf?: (text: string) => string; lines?: (lines: string[]) => string[] } = {}): string {
    const postconf = ["compatibility_level = 3.6", ...Object.entries(expectedMainCf(settings)).map(([name, value]) => `${name} = ${value}`)].join("\n");
    const lines = [
        "dir /var/lib/pulumi-postfix/scripts/0123456789abcdef present",
        `file ${PATHS.aliases} ${DIGEST} 0644 root:root`,
        `file ${PATHS.tlsKey} ${DIGEST} 0600 root:root`,
        `file ${PATHS.mainCf} ${"b".repeat(64)} 0644 root:root`,
        `file ${PATHS.masterCf} ${"c".repeat(64)} 0644 root:root`,
        "package postfix installed", "package postfix-doc installed",
        "user fribeiro present",
        "service postfix running",
        "release 12.12",
        "postfix 3.7.11",
    ];
    return [...(changes.lines ?? ((l) => l))(lines), "postconf", (changes.postconf ?? ((t) => t))(postconf), ""].join("\n");
}

test("the request names every fact, one a line", () => {
    assert.equal(readRequest(expected), [
        "dir /var/lib/pulumi-postfix/scripts/0123456789abcdef",
        `file ${PATHS.aliases}`, `file ${PATHS.tlsKey}`, `file ${PATHS.mainCf}`, `file ${PATHS.masterCf}`,
        "package postfix", "package postfix-doc", "user fribeiro", "service postfix", `deployed ${PATHS.stateDir}/deployed-versions`, "",
    ].join("\n"));
});

test("Debian upgraded under the stack: another Postfix or Dovecot series is drift of the install step; a point release is not", () => {
    const withDeployed = (deployed: string[], postfix = "3.7.11") => parseServerRead(cleanRead({
        lines: (lines) => [...lines.filter((l) => !l.startsWith("postfix ")), `postfix ${postfix}`, ...deployed],
    }));
    // As deployed, and after a security update (3.7.11 -> 3.7.12): nothing.
    assert.deepEqual(observedFacts(expected, withDeployed(["deployed postfix 3.7.11"])), expected);
    assert.deepEqual(observedFacts(expected, withDeployed(["deployed postfix 3.7.11"], "3.7.12")), expected);
    // Nothing recorded (a deployment from before the record): nothing to compare.
    assert.deepEqual(observedFacts(expected, withDeployed([], "3.10.13")), expected);
    // Debian 12 -> 13: the package shows what runs and what the deployment rendered for; install runs again.
    const upgraded = observedFacts(expected, withDeployed(["deployed postfix 3.7.11", "deployed dovecot 2.3.19.1"], "3.10.13"));
    assert.deepEqual(upgraded.packages, { postfix: "installed 3.10, deployed with 3.7", "postfix-doc": "installed" });
    assert.deepEqual(driftedSteps(expected, upgraded, fileSteps, PATHS.mainCf), ["install"]);
});

test("a host as deployed reads back as exactly the expected facts (Debian's level and main.cf's own digest aside)", () => {
    const read = parseServerRead(cleanRead());
    assert.deepEqual(read.versions, { debianRelease: "12.12", postfix: "3.7.11" });
    assert.deepEqual(observedFacts(expected, read), expected);
    assert.deepEqual(differingFacts(observedFacts(expected, read), expected), []);
    assert.deepEqual(driftedSteps(expected, observedFacts(expected, read), fileSteps, PATHS.mainCf), []);
    // postconf -n joins continuation lines, a hand edit may space differently: the same value.
    const respaced = observedFacts(expected, parseServerRead(cleanRead({ postconf: (t) => t.replace("mynetworks = ", "mynetworks =   ") })));
    assert.deepEqual(respaced, expected);
});

test("main.cf opened by hand: the parameter shows with the host's value, and only main.cf's step runs again", () => {
    const observed = observedFacts(expected, parseServerRead(cleanRead({ postconf: (t) => t.replace(/^mynetworks = .*$/m, "mynetworks = 0.0.0.0/0") + "\nsmtpd_banner = hi" })));
    assert.equal(observed.mainCf.mynetworks, "0.0.0.0/0");
    assert.equal(observed.mainCf.smtpd_banner, "hi", "a parameter added by hand shows too");
    assert.deepEqual(Object.keys(observed.mainCf).slice(0, Object.keys(expected.mainCf).length), Object.keys(expected.mainCf), "in the expected order, additions after");
    assert.deepEqual(differingFacts(observed, expected), ["mainCf"]);
    assert.deepEqual(driftedSteps(expected, observed, fileSteps, PATHS.mainCf), ["main-cf"]);
    const removed = observedFacts(expected, parseServerRead(cleanRead({ postconf: (t) => t.replace(/^home_mailbox = .*\n/m, "") })));
    assert.equal(removed.mainCf.home_mailbox, NOT_SET);
});

test("files: a changed digest, a mode, a missing file each name their step; master.cf (made on the host) by mode and owner only", () => {
    const observed = observedFacts(expected, parseServerRead(cleanRead({
        lines: (lines) => lines.map((l) => l.startsWith(`file ${PATHS.aliases} `) ? `file ${PATHS.aliases} ${"d".repeat(64)} 0644 root:root`
            : l.startsWith(`file ${PATHS.tlsKey} `) ? `file ${PATHS.tlsKey} ${DIGEST} 0644 root:root`
                : l.startsWith(`file ${PATHS.masterCf} `) ? `file ${PATHS.masterCf} ${"e".repeat(64)} 0644 root:root` : l),
    })));
    assert.deepEqual(observed.files[PATHS.tlsKey], { sha256: DIGEST, mode: "0644", owner: "root:root" });
    assert.deepEqual(observed.files[PATHS.masterCf], { mode: "0644", owner: "root:root" }, "its content is Debian's plus ours: not compared");
    assert.deepEqual(driftedSteps(expected, observed, fileSteps, PATHS.mainCf), ["aliases", "tls-key"]);
    const gone = observedFacts(expected, parseServerRead(cleanRead({ lines: (lines) => lines.map((l) => l.startsWith(`file ${PATHS.aliases} `) ? `file ${PATHS.aliases} missing` : l) })));
    assert.equal(gone.files[PATHS.aliases], "missing");
    assert.deepEqual(driftedSteps(expected, gone, fileSteps, PATHS.mainCf), ["aliases"]);
});

test("postfix purged: install, every file under /etc/postfix and the service run again", () => {
    const purged = [
        "dir /var/lib/pulumi-postfix/scripts/0123456789abcdef present",
        `file ${PATHS.aliases} ${DIGEST} 0644 root:root`,
        `file ${PATHS.tlsKey} ${DIGEST} 0600 root:root`,
        `file ${PATHS.mainCf} missing`, `file ${PATHS.masterCf} missing`,
        "package postfix missing", "package postfix-doc missing", "user fribeiro present", "service postfix stopped",
        "release 12.12", "",
    ].join("\n");
    const read = parseServerRead(purged);
    assert.equal(read.postconf, undefined);
    assert.equal(read.versions.postfix, undefined);
    const observed = observedFacts(expected, read);
    assert.deepEqual(observed.mainCf, {});
    assert.deepEqual(driftedSteps(expected, observed, fileSteps, PATHS.mainCf), ["install", "main-cf", "master-cf", "service"]);
    const noScripts = observedFacts(expected, parseServerRead(purged.replace(" present\n", " missing\n")));
    assert.ok(driftedSteps(expected, noScripts, fileSteps, PATHS.mainCf).includes("scripts"), "a rebuilt server without the scripts folder gets it again");
});

test("an unexpected line is refused, naming it", () => {
    assert.throws(() => parseServerRead("file /etc/aliases nonsense\n"), /unexpected line from the server read: "file \/etc\/aliases nonsense"/);
    assert.throws(() => parseServerRead("surprise\n"), /"surprise"/);
});

test("repair counts: one more for each drifted step; none leaves the command as it was", () => {
    assert.deepEqual(bumpRepairs({ "main-cf": 2 }, ["main-cf", "aliases"]), { "main-cf": 3, aliases: 1 });
    assert.equal(withRepairCount("sh '/x/write-file.sh' 'write'", undefined), "sh '/x/write-file.sh' 'write'");
    assert.equal(withRepairCount("sh '/x/write-file.sh' 'write'", 0), "sh '/x/write-file.sh' 'write'");
    assert.equal(withRepairCount("sh '/x/write-file.sh' 'write'", 2), "sh '/x/write-file.sh' 'write' # repair 2: drift seen by a refresh");
    // The mark is a comment to the login shell: the command runs as before.
    const r = spawnSync("sh", ["-c", withRepairCount("echo ran", 3)], { encoding: "utf8" });
    assert.equal(r.stdout, "ran\n");
});

test("server-read.sh reads files, packages, users and services, and changes nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "server-read-"));
    const file = join(dir, "key");
    writeFileSync(file, "secret\n");
    chmodSync(file, 0o640);
    // Stand-ins for the host's tools, first on PATH: dpkg-query knows postfix only, no postconf.
    const bin = join(dir, "bin");
    spawnSync("mkdir", [bin]);
    writeFileSync(join(bin, "dpkg-query"), "#!/bin/sh\nfor last; do :; done\n[ \"$last\" = postfix ] && printf 'install ok installed'\nexit 0\n", { mode: 0o755 });
    // postfix "runs" as this test's process: its pid file as Dovecot writes one, without Postfix's padding.
    spawnSync("mkdir", ["-p", join(dir, "queue", "pid")]);
    writeFileSync(join(dir, "queue", "pid", "master.pid"), `${process.pid}\n`);
    writeFileSync(join(bin, "postconf"), `#!/bin/sh\necho ${join(dir, "queue")}\n`, { mode: 0o755 });
    const request = [`dir ${dir}`, `dir ${join(dir, "none")}`, `file ${file}`, `file ${join(dir, "none")}`, "package postfix", "package dovecot-core",
        "user root", "user no-such-user-here", "service postfix", "service dovecot", `deployed ${join(dir, "versions")}`, `deployed ${join(dir, "none")}`, ""].join("\n");
    writeFileSync(join(dir, "versions"), "postfix 3.7.11\ndovecot 2.3.19.1\n");
    const r = spawnSync("sh", ["-c", shellFile("server-read.sh")], { input: request, encoding: "utf8", env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } });
    assert.equal(r.status, 0, r.stderr);
    const read = parseServerRead(r.stdout);
    assert.deepEqual(read.dirs, { [dir]: true, [join(dir, "none")]: false });
    const owner = spawnSync("stat", ["-c", "%U:%G", file], { encoding: "utf8" }).stdout.trim();
    assert.deepEqual(read.files[file], { sha256: spawnSync("sha256sum", [file], { encoding: "utf8" }).stdout.split(" ")[0], mode: "0640", owner });
    assert.equal(read.files[join(dir, "none")], undefined);
    assert.deepEqual(read.packages, { postfix: true, "dovecot-core": false });
    assert.deepEqual(read.users, { root: true, "no-such-user-here": false });
    assert.deepEqual(read.services, { postfix: true, dovecot: false }, "a pid file with or without padding");
    assert.match(read.versions.debianRelease, /\S/);
    assert.deepEqual(read.deployedVersions, { postfix: "3.7.11", dovecot: "2.3.19.1" });
    const bad = spawnSync("sh", ["-c", shellFile("server-read.sh")], { input: "rm /\n", encoding: "utf8" });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unexpected request: rm/);
});
