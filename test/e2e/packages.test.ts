// PostfixServer from other people's Pulumi programs, the two ways a package reaches them:
// - a TypeScript program in its own folder installs the tarball `npm pack` makes;
// - a Pulumi YAML program adds the component package (`pulumi package add <repo>/plugin`).
// Each deploys the guide's server to its own disposable Debian host with the same engine and
// plugins as the rest of the suite; the component's deploy check must pass, and a wrong value
// must fail naming its key before anything touches the host. Loopback only; mail held.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO } from "../support/stack";
import { hostDown, hostOk, HostInfo, hostUp, masterPid, sshLogins } from "./support/host";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const GUIDE = { domain: "home.test", hostname: "server.home.test", mailUsers: ["fribeiro"], aliases: { postmaster: ["root"], root: ["fribeiro"] } };
/** Outbound mail is held: a test host never delivers outside. */
const HOLD = { defer_transports: "smtp", maillog_file: "/var/log/postfix.log" };

/** The steps of the component that ran on the host, by name, from the stack's state. */
function remoteSteps(stack: Stack): string[] {
    return (JSON.parse(stack.ok(["stack", "export"]).stdout).deployment.resources ?? [])
        .filter((r: { type: string }) => r.type === "command:remote:Command")
        .map((r: { urn: string }) => r.urn.split("::").pop() as string);
}

/** A wrong value: the run fails naming the key, with no stack trace, and the host is untouched. */
function assertRefused(stack: Stack, host: HostInfo, key: RegExp): void {
    const mainCf = hostOk(host.name, "cat /etc/postfix/main.cf");
    const logins = sshLogins(host);
    const up = stack.run(["up", "--yes", "--skip-preview"]);
    const output = up.stdout + up.stderr;
    console.log(output.split("\n").filter((line) => /error|args\./.test(line)).map((line) => `# ${line.trim()}`).join("\n"));
    assert.notEqual(up.status, 0, "the run fails");
    assert.match(output, key);
    assert.doesNotMatch(output, /^\s+at .*\.(js|ts):\d+/m, "no stack trace: the message is the whole story");
    assert.equal(hostOk(host.name, "cat /etc/postfix/main.cf"), mainCf, "main.cf untouched");
    assert.doesNotMatch(output, /mail-(install|main-cf|service) +(creating|updating|replacing)/, "no step on the host started");
    assert.equal(sshLogins(host), logins, "nothing logged in to the host");
}

function assertDeployed(stack: Stack, host: HostInfo, lanClient: string): void {
    const steps = remoteSteps(stack);
    assert.ok(steps.includes("mail-service"), `the service step and its deploy check ran and passed (steps: ${steps.join(", ")})`);
    assert.ok(masterPid(host.name), "postfix runs");
    assert.equal(replies(swaks(host.address, lanClient, ["--ehlo", "pc.home.test", "--quit-after", "CONNECT"]))[0], "220 server.home.test ESMTP");
    assert.match(hostOk(host.name, "postconf -h message_size_limit"), /^10485760$/m);
}

/** The consumer's stack config: its project's keys, the host, and the size limit under test. */
function consumerConfig(project: string, host: HostInfo, messageSizeLimit: number): Record<string, unknown> {
    return {
        [`${project}:address`]: host.address, [`${project}:messageSizeLimit`]: messageSizeLimit,
        [`${project}:keyPath`]: host.privateKeyPath, [`${project}:hostKey`]: host.hostPublicKey,
    };
}

/** What both ways in must show: the deployment passes its checks, and a wrong value is refused. */
function deploysAndRefuses(program: string, project: string, stack: Stack, host: () => HostInfo, lanClient: string): void {
    test("pulumi up deploys the guide's server and the deploy checks pass", () => {
        const up = stack.up();
        console.log(`# ${program}: pulumi up ${up.seconds.toFixed(1)} s`);
        assertDeployed(stack, host(), lanClient);
        assert.deepEqual(stack.outputs().endpoints, [`${host().address}:25`]);
    });

    test("a wrong value fails naming the key, before anything touches the host", () => {
        stack.configure(consumerConfig(project, host(), 0));
        assertRefused(stack, host(), /args\.messageSizeLimit must be/);
    });
}

describe("a TypeScript program of its own installs the npm package", { timeout: 20 * 60_000 }, () => {
    const subnet = "127.0.67";
    const address = `${subnet}.2`;
    const project = mkdtempSync(join(tmpdir(), "pulumi-postfix-consumer-ts-"));
    const stack = new Stack("consumer", { dir: project });
    let host: HostInfo;

    before(() => {
        host = hostUp("e2e-consumer-ts", "bookworm", address);
        // The tarball a user would install, made as the README says: npm pack runs the library build
        // (prepack) once scripts are on again (the project's .npmrc turns them off for npm ci).
        const packed = join(project, "packed");
        mkdirSync(packed);
        execFileSync("npm", ["pack", "--ignore-scripts=false", "--silent", "--pack-destination", packed], { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] });
        const [tarball] = readdirSync(packed);
        writeFileSync(join(project, "package.json"), JSON.stringify({
            name: "lan-mail", private: true, main: "index.ts",
            dependencies: { "pulumi-postfix": `file:${join(packed, tarball)}`, "@pulumi/pulumi": "3.276.0" },
            devDependencies: { "@types/node": "24.19.4", "ts-node": "10.9.2", typescript: "5.9.3" },
        }, null, 2));
        writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
            compilerOptions: { strict: true, target: "ES2022", module: "commonjs", moduleResolution: "node", types: ["node"], skipLibCheck: true },
        }, null, 2));
        writeFileSync(join(project, "Pulumi.yaml"), "name: lan-mail\nruntime: nodejs\nstackConfigDir: stacks\n");
        mkdirSync(join(project, "stacks"));
        // Written as a user of the library would: the guide's server, its size limit from config.
        writeFileSync(join(project, "index.ts"), [
            'import * as pulumi from "@pulumi/pulumi";',
            'import { PostfixServer } from "pulumi-postfix";',
            "",
            "const config = new pulumi.Config();",
            'const address = config.require("address");',
            'const mail = new PostfixServer("mail", {',
            `    domain: ${JSON.stringify(GUIDE.domain)},`,
            `    hostname: ${JSON.stringify(GUIDE.hostname)},`,
            "    listenAddresses: [address],",
            `    trustedNetworks: ["${subnet}.0/24"],`,
            '    messageSizeLimit: config.requireNumber("messageSizeLimit"),',
            `    mailUsers: ${JSON.stringify(GUIDE.mailUsers)},`,
            `    aliases: ${JSON.stringify(GUIDE.aliases)},`,
            `    extraParameters: ${JSON.stringify(HOLD)},`,
            '    ssh: { host: address, privateKeyPath: config.require("keyPath"), hostKey: config.require("hostKey"), dialErrorLimit: 3, perDialTimeout: 10 },',
            "});",
            "export const endpoints = mail.smtpEndpoints;",
            "",
        ].join("\n"));
        execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: project, stdio: ["ignore", "ignore", "inherit"] });
        stack.init(consumerConfig("lan-mail", host, 10485760));
    });
    after(() => {
        stack.remove();
        hostDown("e2e-consumer-ts");
        rmSync(project, { recursive: true, force: true });
    });

    test("the package holds the library and nothing of the project's tests, tools, stacks or state", () => {
        const listing = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO, encoding: "utf8" }))[0];
        const files: string[] = listing.files.map((f: { path: string }) => f.path);
        assert.ok(files.includes("dist/lib/index.js") && files.includes("dist/lib/index.d.ts"), files.join(", "));
        assert.ok(files.includes("dist/lib/shell/ssh-reachable.sh"), "the component's host scripts travel with it");
        for (const file of files) assert.match(file, /^(dist\/lib\/|package\.json$|README\.md$)/, `${file} does not belong in the package`);
    });

    deploysAndRefuses("TypeScript program", "lan-mail", stack, () => host, `${subnet}.50`);
});

describe("a Pulumi YAML program adds the component package", { timeout: 20 * 60_000 }, () => {
    const subnet = "127.0.68";
    const address = `${subnet}.2`;
    const project = mkdtempSync(join(tmpdir(), "pulumi-postfix-consumer-yaml-"));
    const stack = new Stack("consumer", { dir: project });
    let host: HostInfo;

    const program = () => [
        "name: lan-mail-yaml",
        "runtime: yaml",
        "stackConfigDir: stacks",
        "config:",
        "  address: { type: string }",
        "  messageSizeLimit: { type: integer }",
        "  keyPath: { type: string }",
        "  hostKey: { type: string }",
        "resources:",
        "  mail:",
        "    type: postfix:PostfixServer",
        "    properties:",
        `      domain: ${GUIDE.domain}`,
        `      hostname: ${GUIDE.hostname}`,
        "      listenAddresses: [\"${address}\"]",
        `      trustedNetworks: [${subnet}.0/24]`,
        "      messageSizeLimit: ${messageSizeLimit}",
        `      mailUsers: ${JSON.stringify(GUIDE.mailUsers)}`,
        `      aliases: ${JSON.stringify(GUIDE.aliases)}`,
        `      extraParameters: ${JSON.stringify(HOLD)}`,
        "      ssh:",
        "        host: ${address}",
        "        privateKeyPath: ${keyPath}",
        "        hostKey: ${hostKey}",
        "        dialErrorLimit: 3",
        "        perDialTimeout: 10",
        "outputs:",
        "  endpoints: ${mail.smtpEndpoints}",
        "",
    ].join("\n");

    before(() => {
        host = hostUp("e2e-consumer-yaml", "bookworm", address);
        writeFileSync(join(project, "Pulumi.yaml"), program());
        mkdirSync(join(project, "stacks"));
        stack.init(consumerConfig("lan-mail-yaml", host, 10485760));
    });
    after(() => {
        stack.remove();
        hostDown("e2e-consumer-yaml");
        rmSync(project, { recursive: true, force: true });
    });

    test("pulumi package add takes the component package from its folder", () => {
        const add = stack.ok(["package", "add", join(REPO, "plugin")], { global: true });
        console.log(`# pulumi package add: ${add.seconds.toFixed(1)} s`);
        assert.match(readFileSync(join(project, "Pulumi.yaml"), "utf8"), /packages:\n\s+postfix: .*\/plugin/);
    });

    test("its schema documents every input and marks the secrets secret", () => {
        const schema = JSON.parse(stack.ok(["package", "get-schema", join(REPO, "plugin")], { global: true }).stdout);
        const resource = schema.resources["postfix:index:PostfixServer"];
        const undocumented: string[] = [];
        const walk = (where: string, properties: Record<string, { description?: string }>) => {
            for (const [name, property] of Object.entries(properties)) if (!property.description) undocumented.push(`${where}.${name}`);
        };
        walk("inputs", resource.inputProperties);
        walk("outputs", resource.properties);
        for (const [name, type] of Object.entries<{ properties?: Record<string, { description?: string }> }>(schema.types)) walk(name, type.properties ?? {});
        assert.deepEqual(undocumented, []);
        assert.equal(resource.inputProperties.sshPrivateKey.secret, true);
        assert.equal(resource.inputProperties.relayHostPassword.secret, true);
        assert.deepEqual(schema.types["postfix:index:KeyAlgorithm"].enum.map((e: { value: string }) => e.value), ["RSA", "ECDSA"]);
    });

    deploysAndRefuses("YAML program", "lan-mail-yaml", stack, () => host, `${subnet}.50`);
});
