// The resource graph of PostfixServer, with Pulumi's mocks (no engine, no host).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
// The SDK's own wait for outstanding resource registrations (internal, not in its typings).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };

// A real certificate, so the fingerprint output is computed from real DER.
const dir = mkdtempSync(join(tmpdir(), "cert-"));
execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=server.home.lan", "-days", "1",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
const CERT_PEM = readFileSync(join(dir, "cert.pem"), "utf8");
const TLS_KEY = readFileSync(join(dir, "key.pem"), "utf8");
// Not a key: a marker in a key's clothes, to see where the SSH key text travels.
const PEM_LABEL = ["OPENSSH", "PRIVATE", "KEY"].join(" ");
const SSH_KEY = `-----BEGIN ${PEM_LABEL}-----\nSSH-KEY-MATERIAL-THAT-MUST-NOT-LEAK\n-----END ${PEM_LABEL}-----\n`;
// The server's host key, as a user's ~/.ssh/known_hosts would hold it (hashed, as Debian's ssh writes it).
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
const HOST_KEY = readFileSync(join(dir, "host_key.pub"), "utf8").split(" ").slice(0, 2).join(" ");
const KNOWN_HOSTS = join(dir, "known_hosts");
writeFileSync(KNOWN_HOSTS, `192.168.1.100 ${HOST_KEY}\n`);
execFileSync("ssh-keygen", ["-H", "-f", KNOWN_HOSTS], { stdio: "ignore" });
const MAIL_PASSWORD = "ana's mail password, never in clear";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

interface Registered { type: string; name: string; inputs: Record<string, any> }
const registered: Registered[] = [];
const dependsOn = new Map<string, string[]>();

const isSecret = (value: unknown) => typeof value === "object" && value !== null && (value as any)[SIG_KEY] === SECRET_SIG;
const plain = (value: any) => (isSecret(value) ? value.value : value);

before(async () => {
    await pulumi.runtime.setMocks({
        newResource(args) {
            registered.push({ type: args.type, name: args.name, inputs: args.inputs });
            const outputs: Record<string, unknown> = { ...args.inputs };
            if (args.type === "tls:index/privateKey:PrivateKey") Object.assign(outputs, { privateKeyPem: TLS_KEY, publicKeyPem: "PUBLIC" });
            if (args.type === "tls:index/selfSignedCert:SelfSignedCert" || args.type === "tls:index/locallySignedCert:LocallySignedCert") outputs.certPem = CERT_PEM;
            if (args.type === "tls:index/certRequest:CertRequest") outputs.certRequestPem = "REQUEST";
            if (args.type === "command:remote:Command") {
                // A file step that runs prints a line of its own; here its content stands for that.
                outputs.stdout = args.name.endsWith("-install") ? "postfix 3.7.11 installed (21 packages), compatibility_level 3.6\n"
                    : `changed: ${createHash("sha256").update(JSON.stringify(plain(args.inputs.stdin) ?? "")).digest("hex")}\n`;
            }
            return { id: `${args.name}-id`, state: outputs };
        },
        call: (args) => args.inputs,
    }, "pulumi-postfix", "unit");
});

async function deploy(args: Record<string, unknown>) {
    const { PostfixServer } = await import("../../components/postfix-server");
    const server = new PostfixServer("server", {
        domain: "home.lan", hostname: "server.home.lan",
        listenAddresses: ["127.0.0.1", "192.168.1.100"], trustedNetworks: ["127.0.0.0/8", "192.168.1.0/24"],
        mailUsers: ["fribeiro"], aliases: { root: "fribeiro" },
        ssh: { host: "192.168.1.100", user: "deploy", knownHostsFile: KNOWN_HOSTS },
        sshPrivateKey: pulumi.secret(SSH_KEY),
        ...args,
    } as never, {
        transformations: [({ name, opts }) => {
            dependsOn.set(name, ((opts.dependsOn ?? []) as pulumi.Resource[]).map((r) => (r as any).__name));
            return undefined;
        }],
    });
    const out = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
    const outputs = await Promise.all([out(server.smtpEndpoints), out(server.certificateSha256), out(server.mainCfParameters)]);
    // Steps that wait on other outputs register a little later: wait until the runtime has no
    // registration left in flight (what the SDK itself awaits before a program ends).
    await waitForRPCs();
    return { server, outputs };
}

test("the graph: steps, their order, their parent", async () => {
    const { outputs: [endpoints, fingerprint, parameters] } = await deploy({});
    const names = registered.map((r) => `${r.type} ${r.name}`);
    assert.deepEqual(names.sort(), [
        "command:local:Command server-ssh-reachable",
        "command:remote:Command server-aliases",
        "command:remote:Command server-install",
        "command:remote:Command server-mailname",
        "command:remote:Command server-main-cf",
        "command:remote:Command server-master-cf",
        "command:remote:Command server-scripts",
        "command:remote:Command server-service",
        "command:remote:Command server-tls-cert",
        "command:remote:Command server-tls-key",
        "command:remote:Command server-virtual-aliases",
        "postfix:index:PostfixServer server",
        "pulumi-nodejs:dynamic/postfix:ServerState server-server-state",
        "tls:index/privateKey:PrivateKey server-tls-key",
        "tls:index/selfSignedCert:SelfSignedCert server-tls-cert",
    ]);
    const probe = "server-ssh-reachable";
    for (const r of registered.filter((r) => r.type === "command:remote:Command")) {
        assert.equal(dependsOn.get(r.name)![0], probe, `${r.name}: SSH is checked before any session`);
    }
    // The scripts go to the host first, into a folder named by their hash; every step runs its own there.
    assert.deepEqual(dependsOn.get("server-scripts"), [probe]);
    const scripts = registered.find((r) => r.name === "server-scripts")!;
    const folder = /'install' '(\/var\/lib\/pulumi-postfix\/scripts\/[0-9a-f]{16})'$/.exec(scripts.inputs.create)?.[1];
    assert.ok(folder, scripts.inputs.create);
    assert.match(scripts.inputs.stdin, /^install\.sh [A-Za-z0-9+/=]+$/m, "the scripts on standard input, one line each");
    assert.doesNotMatch(scripts.inputs.stdin, /^ssh-reachable\.sh /m, "the workstation's own script stays home");
    const p = (...names: string[]) => [probe, "server-scripts", ...names];
    assert.deepEqual(dependsOn.get("server-install"), p());
    assert.deepEqual(dependsOn.get("server-aliases"), p("server-install"), "alias users exist first (the install step creates them)");
    assert.deepEqual(dependsOn.get("server-virtual-aliases"), p("server-install"), "beside /etc/aliases, not after it");
    const virtual = registered.find((r) => r.name === "server-virtual-aliases")!;
    assert.equal(virtual.inputs.create, `sudo -n sh '${folder}/write-file.sh' 'write' 'virtual' '/etc/postfix/virtual' '0644' '/var/lib/pulumi-postfix' 'postmaster' 'root'`,
        "write-file.sh by path, then its arguments: the alias names last, for the check of local targets");
    assert.deepEqual(dependsOn.get("server-master-cf"), p("server-install"));
    assert.deepEqual(dependsOn.get("server-main-cf"), p("server-tls-key", "server-tls-cert", "server-mailname", "server-virtual-aliases", "server-master-cf"),
        "main.cf goes live after the files it names, and is checked with the new master.cf");
    assert.deepEqual(dependsOn.get("server-service"),
        p("server-tls-key", "server-tls-cert", "server-mailname", "server-virtual-aliases", "server-aliases", "server-main-cf", "server-master-cf"));
    const service = registered.find((r) => r.name === "server-service")!;
    assert.match(service.inputs.create, new RegExp(`^sudo -n bash '${folder}/service\\.sh' 'apply' '/var/lib/pulumi-postfix' '[0-9a-f]{64}' '25' 'none' '/etc/aliases /etc/ssl/private/server\\.key\\.insecure /etc/ssl/certs/server\\.crt /etc/mailname /etc/postfix/virtual /etc/postfix/master\\.cf /etc/postfix/main\\.cf' '127\\.0\\.0\\.1' '192\\.168\\.1\\.100'$`),
        "service.sh by path, run by bash, then its arguments: what to do, the request folder, the file steps' digest, ports, the file steps' paths, listen addresses");
    assert.match(service.inputs.stdin, /^#!\/bin\/bash\n# The relay probe/, "the relay probe on standard input");
    assert.equal(service.inputs.delete, `sudo -n bash '${folder}/service.sh' 'stop'`);
    const check = registered.find((r) => r.name === probe)!;
    assert.deepEqual(check.inputs.environment, {
        PROBE_HOST: "192.168.1.100", PROBE_PORT: "22", PROBE_TIMEOUT: "15", PROBE_ATTEMPTS: "10", PROBE_HOST_KEY: HOST_KEY, PROBE_KEY_SOURCE: KNOWN_HOSTS,
    });
    for (const r of registered.filter((r) => r.type === "command:remote:Command")) {
        assert.equal(plain(r.inputs.connection).hostKey, HOST_KEY, `${r.name}: its own SSH connection verifies the key known_hosts holds`);
    }
    assert.equal(check.inputs.create, "SSH check of 192.168.1.100 port 22", "a label, which errors repeat");
    assert.deepEqual(check.inputs.interpreter.slice(0, 2), ["/bin/sh", "-c"]);
    assert.match(check.inputs.interpreter[2], /ssh-keyscan -T "\$PROBE_TIMEOUT"/, "the script file itself, arguments in the environment");
    assert.deepEqual(endpoints, ["127.0.0.1:25", "192.168.1.100:25"]);
    assert.equal(fingerprint, execFileSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", join(dir, "cert.pem")], { encoding: "utf8" }).trim().split("=")[1]);
    assert.equal(parameters.message_size_limit, "52428800");
    assert.equal(parameters.compatibility_level, "3.6", "kept from the host");
    // What a refresh reads back: every managed file by path, with the step that writes it; the
    // digest where the workstation knows the content; main.cf by parameter (Debian's level aside).
    const state = registered.find((r) => r.name === "server-server-state")!;
    assert.deepEqual(state.inputs.fileSteps, {
        "/etc/ssl/private/server.key.insecure": "tls-key", "/etc/ssl/certs/server.crt": "tls-cert", "/etc/mailname": "mailname",
        "/etc/postfix/virtual": "virtual-aliases", "/etc/aliases": "aliases", "/etc/postfix/main.cf": "main-cf", "/etc/postfix/master.cf": "master-cf",
    });
    const sha = (text: string) => createHash("sha256").update(text).digest("hex");
    assert.deepEqual(state.inputs.files["/etc/mailname"], { sha256: sha("home.lan\n"), mode: "0644", owner: "root:root" });
    assert.deepEqual(state.inputs.files["/etc/ssl/private/server.key.insecure"], { sha256: sha(TLS_KEY), mode: "0600", owner: "root:root" });
    assert.ok(!isSecret(state.inputs.files), "files show by path in a preview, not as [secret]");
    assert.deepEqual(state.inputs.files["/etc/postfix/master.cf"], { mode: "0644", owner: "root:root" }, "made on the host: no digest");
    assert.equal(state.inputs.mainCf.message_size_limit, "52428800");
    assert.equal(state.inputs.mainCf.compatibility_level, undefined, "Debian's level is the host's");
    assert.deepEqual(state.inputs.packages, { "postfix": "installed", "postfix-doc": "installed" });
    assert.deepEqual(state.inputs.users, { fribeiro: "present" });
    assert.deepEqual(state.inputs.services, { postfix: "running" });
    assert.deepEqual(state.inputs.scripts, { [folder!]: "present" });
    assert.equal(plain(state.inputs.connection).hostKey, HOST_KEY, "the read verifies the steps' host key");
});

test("secrets: the TLS key and the SSH key are secret, and never in a command line", async () => {
    const commands = registered.filter((r) => r.type === "command:remote:Command");
    assert.equal(commands.length, 10);
    for (const c of commands) {
        assert.ok(isSecret(c.inputs.connection), `${c.name}: connection is secret`);
        const lines = [plain(c.inputs.create), plain(c.inputs.delete) ?? ""].join("\n");
        assert.ok(!lines.includes("SSH-KEY-MATERIAL") && !lines.includes(TLS_KEY.split("\n")[1]), `${c.name}: no key in its command line`);
        assert.match(plain(c.inputs.create), /^sudo -n (ba)?sh /, `${c.name}: a non-root user goes through sudo`);
        assert.equal(c.inputs.addPreviousOutputInEnv, false);
    }
    const keyStep = commands.find((c) => c.name === "server-tls-key")!;
    assert.ok(isSecret(keyStep.inputs.stdin), "the TLS key travels as a secret on stdin");
    assert.equal(plain(keyStep.inputs.stdin), TLS_KEY);
    assert.ok(plain(commands.find((c) => c.name === "server-tls-key")!.inputs.connection).privateKey.includes("SSH-KEY-MATERIAL"));
    const state = registered.find((r) => r.name === "server-server-state")!;
    assert.ok(isSecret(state.inputs.connection) || isSecret(state.inputs.connection.privateKey), "the refresh's SSH key is secret, as the steps' is");
    assert.ok(!JSON.stringify({ ...state.inputs, connection: undefined }).includes("SSH-KEY-MATERIAL"));
    const mainCf = commands.find((c) => c.name === "server-main-cf")!;
    assert.ok(!isSecret(mainCf.inputs.stdin), "main.cf stays readable in preview --diff");
    assert.match(mainCf.inputs.stdin, /^inet_interfaces = 127\.0\.0\.1, 192\.168\.1\.100$/m);
});

test("a file step and the service step re-run exactly when content changes", async () => {
    const service = () => plain(registered.filter((r) => r.name === "server-service").at(-1)!.inputs.create) as string;
    const mainCf = () => plain(registered.filter((r) => r.name === "server-main-cf").at(-1)!.inputs.create) as string;
    const probeTrigger = () => plain(plain(registered.find((r) => r.name === "server-ssh-reachable")!.inputs.triggers)[0]) as string;
    const mainCfContent = () => plain(registered.filter((r) => r.name === "server-main-cf").at(-1)!.inputs.stdin) as string;
    const before = { service: service(), mainCf: mainCf(), probe: probeTrigger(), mainCfContent: mainCfContent() };
    registered.length = 0;
    await deploy({});
    assert.equal(probeTrigger(), before.probe, "the same settings: the SSH check does not run again");
    assert.equal(service(), before.service, "the same settings: the service step's input is the same (it does not run)");
    assert.equal(mainCfContent(), before.mainCfContent, "the same settings: main.cf's content is the same (its step does not run)");
    registered.length = 0;
    await deploy({ messageSizeLimit: 10485760 });
    assert.notEqual(service(), before.service, "service step input changes with main.cf");
    assert.notEqual(probeTrigger(), before.probe, "a change runs the SSH check first");
    assert.equal(mainCf(), before.mainCf, "the write script itself is the same; only stdin changed");
    assert.notEqual(mainCfContent(), before.mainCfContent, "main.cf's content changed: its step runs");
    assert.equal(registered.filter((r) => r.name === "server-install")[0].inputs.stdin.includes("10485760"), false, "install answers do not depend on the size");
});

test("invalid options throw before anything is registered", async () => {
    registered.length = 0;
    await assert.rejects(deploy({ trustedNetworks: ["0.0.0.0/0"], messageSizeLimit: 0 }), (error: Error) => {
        assert.match(error.message, /args\.trustedNetworks\[0\] .*open relay/);
        assert.match(error.message, /args\.messageSizeLimit /);
        return true;
    });
    assert.deepEqual(registered, []);
});

test("an unknown server stops the program before any resource exists, saying what to do", async () => {
    registered.length = 0;
    writeFileSync(join(dir, "empty_known_hosts"), "");
    // Nobody listens on 127.0.0.1 port 9: the key scan for the message is refused at once.
    await assert.rejects(deploy({ ssh: { host: "127.0.0.1", port: 9, knownHostsFile: join(dir, "empty_known_hosts") } }), (error: Error) => {
        assert.match(error.message, /^server server \(127\.0\.0\.1 port 9\) is not a known host: no key for \[127\.0\.0\.1\]:9 in .*empty_known_hosts, and ssh\.hostKey is not set\. Nothing was sent to it\./);
        assert.match(error.message, /It offered no host key \(no SSH server answered/);
        assert.match(error.message, /accept-new/);
        return true;
    });
    assert.deepEqual(registered, []);
});

test("smarthost: the password travels only as a secret on stdin; submission adds port 587", async () => {
    registered.length = 0;
    const password = "relay-password-that-must-not-leak";
    const { outputs: [endpoints, , parameters] } = await deploy({
        relayHost: { host: "smtp.isp.test", username: "me@isp.test" }, relayHostPassword: pulumi.secret(password), submission: true,
        mailUsers: ["fribeiro"], mailPasswords: { fribeiro: pulumi.secret(MAIL_PASSWORD) },
    });
    assert.deepEqual(endpoints, ["127.0.0.1:25", "127.0.0.1:587", "192.168.1.100:25", "192.168.1.100:587"]);
    assert.equal(parameters.relayhost, "[smtp.isp.test]:587");
    assert.equal(parameters.smtp_tls_security_level, "secure", "the password goes only to a relay whose certificate is verified");
    const commands = registered.filter((r) => r.type === "command:remote:Command");
    const probe = registered.find((r) => r.name === "server-ssh-reachable")!;
    assert.ok(isSecret(probe.inputs.triggers) || isSecret(probe.inputs.triggers[1]), "the SSH check's trigger follows the passwords: a secret");
    assert.ok(!isSecret(probe.inputs.triggers[0]), "the certificate's digest is not a secret: a preview that renews the certificate has no value for it yet");
    const sasl = commands.find((c) => c.name === "server-sasl-passwd")!;
    assert.ok(isSecret(sasl.inputs.stdin));
    assert.equal(plain(sasl.inputs.stdin).split("\n")[1], `[smtp.isp.test]:587 me@isp.test:${password}`);
    for (const c of commands) {
        const text = JSON.stringify([plain(c.inputs.create), plain(c.inputs.delete), c === sasl || c.name === "server-mail-passwords" ? "" : plain(c.inputs.stdin)]);
        assert.ok(!text.includes(password), `${c.name}: the password is not in its command line or other input`);
        assert.ok(!text.includes(MAIL_PASSWORD), `${c.name}: the mail password is not in its command line or other input`);
    }
    const logins = commands.find((c) => c.name === "server-mail-passwords")!;
    assert.ok(isSecret(logins.inputs.stdin), "the mail passwords travel as a secret on stdin");
    assert.equal(plain(logins.inputs.stdin), `fribeiro ${MAIL_PASSWORD}\n`);
    assert.match(plain(commands.find((c) => c.name === "server-service")!.inputs.create), / '25 587' 'dovecot' /);
    assert.match(plain(commands.find((c) => c.name === "server-install")!.inputs.create), /'postfix postfix-doc libsasl2-modules dovecot-core openssl python3'/);
    assert.match(parameters.smtpd_sender_login_maps, /^inline:\{ \{ fribeiro = fribeiro \}/);
    assert.ok(dependsOn.get("server-main-cf")!.includes("server-sasl-passwd"), "credentials are in place before main.cf names them");
    const master = commands.find((c) => c.name === "server-master-cf")!;
    assert.match(master.inputs.stdin, /^service submission\/inet=submission inet n - y - - smtpd$/m);
    assert.match(master.inputs.stdin, /^parameter submission\/inet\/smtpd_tls_security_level=encrypt$/m);
    assert.match(master.inputs.stdin, /^parameter submission\/inet\/smtpd_client_restrictions=permit_sasl_authenticated,reject$/m);
});

test("port 587 without a password, a short password, or a password for someone who is not a mail user: refused before anything is registered", async () => {
    for (const [args, error] of [
        [{ submission: true }, /args\.submission is true, but no mail user has a password/],
        [{ submission: true, mailUsers: ["ana"], mailPasswords: { ana: "short" } }, /args\.mailPasswords\.ana is shorter than 12 characters/],
        [{ submission: true, mailUsers: ["ana"], mailPasswords: { bob: MAIL_PASSWORD } }, /args\.mailPasswords\.bob names "bob", who is not in mailUsers/],
    ] as const) {
        registered.length = 0;
        await assert.rejects(deploy(args as never), error);
        assert.deepEqual(registered, []);
    }
});

test("a certificate authority signs the server's certificate (a request, then a locally signed certificate)", async () => {
    registered.length = 0;
    await deploy({ certificateAuthority: { certificatePem: "CA-PEM", privateKeyPem: pulumi.secret("CA-KEY") } } as never);
    const types = registered.map((r) => r.type);
    assert.ok(types.includes("tls:index/certRequest:CertRequest"));
    assert.ok(types.includes("tls:index/locallySignedCert:LocallySignedCert"));
    assert.ok(!types.includes("tls:index/selfSignedCert:SelfSignedCert"));
    const signed = registered.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert")!;
    assert.ok(isSecret(signed.inputs.caPrivateKeyPem), "the authority's key stays a secret");
    assert.equal(signed.inputs.validityPeriodHours, 397 * 24, "397 days unless set");
});

test("smarthost: a user name without the password, or a bad password, fails before anything is registered", async () => {
    for (const [args, error] of [
        [{ relayHost: { host: "smtp.isp.test", username: "me" } }, /args\.relayHostPassword must be set/],
        [{ relayHost: { host: "smtp.isp.test", username: "me" }, relayHostPassword: "two\nlines" }, /args\.relayHostPassword contains a control character/],
        [{ relayHostPassword: "secret" }, /args\.relayHostPassword is set but relayHost\.username is not/],
    ] as const) {
        registered.length = 0;
        await assert.rejects(deploy(args), error);
        assert.deepEqual(registered, []);
    }
});
