// The engine users install, built here from upstream sources: versions, plugins, the example
// stacks' plans, and a wrong config stopping everything before any resource (so before any remote
// command) exists.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { load } from "js-yaml";
import { REPO } from "../support/stack";
import { Stack } from "./support/pulumi";

const STEPS = ["ssh-reachable", "scripts", "install", "tls-key", "tls-cert", "mailname", "virtual-aliases", "aliases", "main-cf", "master-cf", "service"];

/**
 * A workstation user's home whose ~/.ssh/known_hosts knows the example stacks' servers, as after
 * one `ssh` login to each (hashed, as Debian's ssh writes it): the previews need their host keys,
 * and never contact them. The engine's cache stays where it is.
 */
function userHomeKnowing(hosts: string[]): Record<string, string> {
    const home = mkdtempSync(join(tmpdir(), "pulumi-postfix-user-"));
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    const file = join(home, ".ssh", "known_hosts");
    writeFileSync(file, hosts.map((host, i) => {
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(home, `server${i}`)]);
        return `${host} ${readFileSync(join(home, `server${i}.pub`), "utf8").split(" ").slice(0, 2).join(" ")}\n`;
    }).join(""));
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    return { HOME: home, PULUMI_POSTFIX_CACHE: process.env.PULUMI_POSTFIX_CACHE ?? join(homedir(), ".cache", "pulumi-postfix") };
}

describe("the Pulumi engine and upstream plugins on this project", { timeout: 5 * 60_000 }, () => {
    const user = userHomeKnowing(["192.168.1.100", "10.20.0.25"]);
    const home = new Stack("home", { env: user });
    const lab = new Stack("lab", { env: user });
    const broken = new Stack("e2e-broken");
    const clear = new Stack("sec-clear-secrets", { env: user });
    // A YAML project of its own, for the engine to start the YAML language host in.
    const yamlProject = mkdtempSync(join(tmpdir(), "pulumi-postfix-yaml-"));
    writeFileSync(join(yamlProject, "Pulumi.yaml"), "name: engine-yaml\nruntime: yaml\n");
    const yaml = new Stack("engine-yaml", { dir: yamlProject });
    after(() => {
        [home, lab, broken, clear, yaml].forEach((s) => s.remove());
        rmSync(yamlProject, { recursive: true, force: true });
        rmSync(user.HOME, { recursive: true, force: true });
    });

    test("pulumi v3.274.1 with the upstream language hosts nodejs v3.259.0 and yaml 294c561f47f4, command 1.2.1 and tls 5.5.1 as installed plugins", () => {
        assert.equal(home.ok(["version"], { global: true }).stdout.trim(), "v3.274.1");
        const plugins = home.ok(["plugin", "ls"], { global: true }).stdout;
        assert.match(plugins, /^command\s+resource\s+1\.2\.1\s/m);
        assert.match(plugins, /^tls\s+resource\s+5\.5\.1\s/m);
        const bin = execFileSync("bash", [join(REPO, "tools", "pulumi-engine", "build.sh"), "--quiet", "--print-bin-dir"], { encoding: "utf8" }).trim();
        assert.equal(execFileSync(join(bin, "pulumi-language-nodejs"), ["-version"], { encoding: "utf8" }).trim(), "v3.259.0");
        // The dynamic provider's plugin (ServerState), from the SDK module of the CLI's version, as Pulumi's releases ship it.
        assert.match(readFileSync(join(bin, "pulumi-resource-pulumi-nodejs"), "utf8"), /^#!\/bin\/sh\n.*require\.resolve\('@pulumi\/pulumi\/cmd\/dynamic-provider'\)/);
        // pulumi-language-yaml has no version flag: the engine asks the running host (GetPluginInfo).
        accessSync(join(bin, "pulumi-language-yaml"), constants.X_OK);
        assert.match(yaml.ok(["about"], { global: true }).stdout, /^language\s+yaml\s+1\.37\.1-0\.20260717123218-294c561f47f4\s*$/m);
    });

    for (const [stack, server] of [[home, "server"], [lab, "mail"]] as const) {
        test(`pulumi preview --stack ${stack.name} plans every step${stack === lab ? ", with the mail users' passwords set as secrets, which never show" : ", without any secret set"}`, () => {
            stack.init();
            // The lab stack has port 587 with logins: its users' passwords are secrets, set as its file says; 587 also
            // brings Dovecot's configuration, the password file and the From: rule's milter.
            const passwords = stack === lab ? ["ana's lab mail password", "ops-lab-mail-password"] : [];
            if (stack === lab) ["ana", "ops"].forEach((user, i) => stack.setSecret(`postfix:mailPasswords.${user}`, passwords[i]));
            const steps = stack === lab ? [...STEPS, "dovecot-conf", "mail-passwords", "sender-check"] : STEPS;
            const preview = stack.ok(["preview", "--diff"]);
            // The steps, plus the stack, the component, its ServerState, and the key and certificate @pulumi/tls makes
            // (lab: also the authority's key and certificate, and the certificate request it signs).
            assert.match(preview.stdout, new RegExp(`\\+ ${steps.length + 5 + (stack === lab ? 3 : 0)} to create`));
            // Each step planned as a create of its own: the create line, then its URN ending in the step's name
            // (the SSH check runs on the workstation: a local command).
            for (const step of steps) {
                const kind = step === "ssh-reachable" ? "local" : "remote";
                assert.match(preview.stdout, new RegExp(`\\+ command:${kind}:Command: \\(create\\)\\n\\s+\\[urn=\\S+::${server}-${step}\\]`), step);
            }
            assert.doesNotMatch(preview.stdout + preview.stderr, /warning:/);
            for (const password of passwords) assert.ok(!(preview.stdout + preview.stderr).includes(password), "no password in the preview");
            // The host key comes from the user's known_hosts: every step's own connection verifies it, and a refresh's read
            // (the connection is secret: only a preview with --show-secrets shows it).
            const known = execFileSync("ssh-keygen", ["-F", server === "server" ? "192.168.1.100" : "10.20.0.25", "-f", join(user.HOME, ".ssh", "known_hosts")], { encoding: "utf8" })
                .split("\n")[1].split(" ").slice(1).join(" ");
            const shown = stack.ok(["preview", "--diff", "--show-secrets"]).stdout;
            assert.equal(shown.split("\n").filter((l) => /^hostKey\s*: "/.test(l.trim()) && l.trim().endsWith(` "${known}"`)).length, steps.length, "one per remote step, and the ServerState's read");
        });
    }

    test("passwords set in clear text stop the preview with the commands that set them as secrets; those commands make it pass", () => {
        const labConfig = (load(readFileSync(join(REPO, "stacks", "Pulumi.lab.yaml"), "utf8")) as { config: Record<string, unknown> }).config;
        const passwords = { ana: "ana's lab mail password", ops: "ops-lab-mail-password" };
        clear.init({ ...labConfig, "postfix:mailPasswords": passwords });
        const preview = clear.run(["preview"]);
        assert.notEqual(preview.status, 0);
        const output = preview.stdout + preview.stderr;
        const line = /postfix:mailPasswords is set in clear text, .*: set it as a secret, one user at a time: (.*)$/m.exec(output);
        assert.ok(line, output);
        assert.ok(!output.includes(passwords.ana) && !output.includes(passwords.ops), "no password in the output");
        // Exactly what the message says, each password typed on standard input as a user would.
        const commands = line[1].split("; ");
        assert.deepEqual(commands, ["pulumi config set --secret --path 'postfix:mailPasswords.ana'", "pulumi config set --secret --path 'postfix:mailPasswords.ops'"]);
        for (const command of commands) {
            const path = /'(.*)'/.exec(command)![1];
            clear.ok(["config", "set", "--secret", "--path", path], { stdin: passwords[path.split(".")[1] as keyof typeof passwords] });
        }
        clear.ok(["preview"]);
    });

    test("a wrong config fails with every problem named by its key, and nothing is created", () => {
        broken.init({
            "postfix:domain": "home.lan",
            "postfix:trustedNetworks": ["0.0.0.0/0", "192.168.1.7/24"],
            "postfix:messageSizeLimit": 0,
            "postfix:servers": [{ name: "server", hostname: "server.home.lan\nrelayhost = evil.test", listenAddresses: ["10.9.9.9"], ssh: { host: "127.0.0.1", port: 2 } }],
        });
        const up = broken.run(["up", "--yes", "--skip-preview"]);
        assert.notEqual(up.status, 0);
        const output = up.stdout + up.stderr;
        for (const line of [
            /postfix:trustedNetworks\[0\] "0\.0\.0\.0\/0" trusts every address: that is an open relay/,
            /postfix:trustedNetworks\[1\] "192\.168\.1\.7\/24" has host bits set; did you mean 192\.168\.1\.0\/24\?/,
            /postfix:messageSizeLimit must be a whole number/,
            /postfix:servers\[0\]\.hostname contains a control character/,
        ]) assert.match(output, line);
        assert.doesNotMatch(output, /at Object\.|\.ts:\d+:\d+/, "a config error, not a stack trace");
        const resources = JSON.parse(broken.ok(["stack", "export"]).stdout).deployment.resources ?? [];
        assert.deepEqual(resources.filter((r: { type: string }) => r.type !== "pulumi:pulumi:Stack"), []);
    });
});
