// The Pulumi layer: wires the pure core into resources. No rendering or validation logic here.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { fingerprint, parseHostKey } from "./core/known-hosts";
import { HostKeyError, trustedHostKey } from "./host-key";
import { CertificateAuthority } from "./certificate-authority";
import { dovecotSteps } from "./dovecot";
import { expectedFacts, managedFiles, withRepairCount } from "./core/drift";
import { ServerState } from "./server-state";
import { shellBundle, shellFile } from "./shell-files";
import {
    renderAliases, renderMailname, renderMasterServices, renderPreseed, renderSaslPasswd, renderVirtualAliases,
} from "./core/files";
import { formatValue, mainCfParameters, renderMainCf } from "./core/main-cf";
import { postfixAddress } from "./core/net";
import { PATHS } from "./core/paths";
import {
    MANAGED_FILES, packagesFor, ManagedFile, parseHostFacts, removeFileArgs, writeFileArgs,
} from "./core/scripts";
import { MailOptions, ParameterValue, Settings } from "./core/settings";
import { remoteCommand, remoteScript } from "./core/shell";
import { expandHome, SshOptions, SshSettings, validateSsh } from "./core/ssh";
import { ConfigError, mailPasswordProblem, relayPasswordProblem, validateMailOptions } from "./core/validate";

/**
 * Invalid arguments, every problem named by its key (`args.messageSizeLimit must be ...`). A
 * RunError: Pulumi shows the program's user the message alone, without a stack trace.
 */
export class PostfixServerArgsError extends pulumi.RunError {
    constructor(readonly problems: string[]) {
        super(new ConfigError(problems).message);
        this.name = "PostfixServerArgsError";
    }
}

export interface PostfixServerArgs extends MailOptions {
    /** How the workstation reaches the server over SSH. */
    ssh: SshOptions;
    /** SSH private key (PEM or OpenSSH), as a secret. Used when `ssh.privateKeyPath` is not set; without either, the SSH agent is used (the key then stays out of the state). */
    sshPrivateKey?: pulumi.Input<string>;
    /** Passphrase of the SSH private key (`sshPrivateKey` or `ssh.privateKeyPath`), as a secret, when the key has one. */
    sshPrivateKeyPassword?: pulumi.Input<string>;
    /** SASL password for `relayHost.username`, as a secret. Written only to `/etc/postfix/sasl_passwd` (0600 root). */
    relayHostPassword?: pulumi.Input<string>;
    /**
     * Passwords of the mail users who log in on port 587 (`submission`), user name to password, each
     * as a secret, at least 12 characters. Only their hashes reach the host. A user left out cannot log in.
     */
    mailPasswords?: Record<string, pulumi.Input<string>>;
    /**
     * The stack's certificate authority (see `certificateAuthority()`): it signs this server's
     * certificate instead of the server signing its own, so clients that trust the authority trust
     * this server, and its renewals, with nothing to accept.
     */
    certificateAuthority?: CertificateAuthority;
}

/**
 * A Debian server turned into a LAN Postfix SMTP server: installs postfix, writes main.cf, the
 * aliases, the mail name, the virtual aliases, the certificate (self-signed, or signed by the
 * `certificateAuthority`) and, with `submission`, Dovecot's auth configuration and the password
 * file, each only when it differs, and reloads or restarts postfix only when something changed. Plain option values are validated when the component is
 * constructed, so a wrong value fails before anything touches the host.
 */
export class PostfixServer extends pulumi.ComponentResource {
    /** `address:port` for each listen address (IPv6 in brackets), in their order: port 25, and 587 with `submission`. */
    public readonly smtpEndpoints: pulumi.Output<string[]>;
    /** The STARTTLS certificate (PEM). */
    public readonly certificatePem: pulumi.Output<string>;
    /** SHA-256 fingerprint of the certificate, `AB:CD:...` as OpenSSL prints it. */
    public readonly certificateSha256: pulumi.Output<string>;
    /** The main.cf parameters as written. */
    public readonly mainCfParameters: pulumi.Output<Record<string, string>>;
    /** Postfix version on the host. */
    public readonly postfixVersion: pulumi.Output<string>;

    constructor(name: string, args: PostfixServerArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before registering anything: a wrong value never reaches the engine or the host.
        const { settings, ssh, relayPassword } = validateArgs(args);
        // The key every SSH connection of every step verifies: an unknown or revoked server stops
        // the program here, before any resource exists.
        const trusted = trustOrStop(ssh, name);
        super("postfix:index:PostfixServer", name, {}, opts);
        const parent = { parent: this };
        if (trusted.firstUse) {
            const key = parseHostKey(trusted.hostKey);
            pulumi.log.warn(`${ssh.host} port ${ssh.port}: host key ${key && fingerprint(key)} seen for the first time (strictHostKeyChecking: accept-new); `
                + `${trusted.firstUse.recorded ? "recorded in" : "pulumi up will record it in"} ${trusted.firstUse.file}`, this);
        }
        const connection = connectionOf(ssh, trusted.hostKey, args.sshPrivateKey, args.sshPrivateKeyPassword);

        const key = new tls.PrivateKey(`${name}-tls-key`, settings.certificate.algorithm === "RSA"
            ? { algorithm: "RSA", rsaBits: settings.certificate.rsaBits }
            : { algorithm: "ECDSA", ecdsaCurve: "P256" }, parent);
        const certificate = settings.certificate;
        const subject = { commonName: certificate.commonName, organization: certificate.organization };
        const lifetime = {
            validityPeriodHours: certificate.validityHours,
            earlyRenewalHours: certificate.earlyRenewalHours,
            allowedUses: ["key_encipherment", "digital_signature", "server_auth"],
        };
        const authority = args.certificateAuthority;
        const cert = authority
            ? new tls.LocallySignedCert(`${name}-tls-cert`, {
                certRequestPem: new tls.CertRequest(`${name}-tls-request`, {
                    privateKeyPem: key.privateKeyPem, subject, dnsNames: certificate.dnsNames, ipAddresses: certificate.ipAddresses,
                }, parent).certRequestPem,
                caCertPem: authority.certificatePem,
                caPrivateKeyPem: pulumi.secret(authority.privateKeyPem),
                ...lifetime,
            }, parent)
            : new tls.SelfSignedCert(`${name}-tls-cert`, {
                privateKeyPem: key.privateKeyPem, subject, dnsNames: certificate.dnsNames, ipAddresses: certificate.ipAddresses, ...lifetime,
            }, parent);
        const mailPasswords = passwordsOf(settings, args.mailPasswords);

        // The command provider bounds only the TCP connect of each dial: a server that accepts TCP
        // but never speaks SSH would hold a step forever. So before the steps, whenever any of
        // them may run (the settings, the certificate or the relay password changed), the
        // workstation checks that SSH answers within the dial bound, and says in words when the host
        // key changed (the steps' own connections refuse it too). A run with no change runs no
        // step, and this check neither.
        const reachable = new command.local.Command(`${name}-ssh-reachable`, {
            // The script is the interpreter's; the command is a label, which the provider repeats
            // in its error ("running \"SSH check of 192.168.1.100 port 22\"") instead of the script.
            interpreter: ["/bin/sh", "-c", shellFile("ssh-reachable.sh"), "ssh-reachable"],
            create: `SSH check of ${ssh.host} port ${ssh.port}`,
            environment: {
                PROBE_HOST: ssh.host, PROBE_PORT: String(ssh.port), PROBE_TIMEOUT: String(ssh.perDialTimeout),
                PROBE_ATTEMPTS: String(ssh.dialErrorLimit), PROBE_HOST_KEY: trusted.hostKey, PROBE_KEY_SOURCE: trusted.source,
            },
            triggers: changeDigests(settings, { ...ssh, hostKey: trusted.hostKey }, cert.certPem, relayPassword, mailPasswords),
            addPreviousOutputInEnv: false,
        }, parent);

        // What the server must look like, read back by `pulumi refresh`; each step's repair count
        // (how often a refresh saw its part drift) is part of its command, so the next up runs
        // exactly the drifted steps again. Not in the component package (see readsServerOnRefresh).
        const packages = packagesFor(settings.relayHost?.username !== undefined, settings.submission, settings.imap);
        const repairs = readsServerOnRefresh
            ? this.serverState(name, settings, connection, trusted.hostKey, ssh, { key: key.privateKeyPem, cert: cert.certPem, packages, logins: settings.submission && mailPasswords !== undefined })
            : pulumi.output({} as Record<string, number>);

        // The host scripts, copied once per version into a folder named by their hash: every other
        // step runs its script there by path, so a failure shows the step's own lines, not a script.
        const bundle = shellBundle();
        const scriptsDir = `${PATHS.stateDir}/scripts/${bundle.hash}`;
        const scripts = new command.remote.Command(`${name}-scripts`, {
            connection,
            create: repairs.apply((r) => withRepairCount(remoteCommand(shellFile("install-scripts.sh"), ssh.user, "sh", ["install", scriptsDir]), r.scripts)),
            stdin: bundle.text,
            delete: remoteCommand(shellFile("install-scripts.sh"), ssh.user, "sh", ["remove", scriptsDir]),
            addPreviousOutputInEnv: false,
        }, { ...parent, dependsOn: [reachable] });

        // One remote command per step; each opens its own SSH connection and runs only when its inputs change.
        // A step's script is a file of components/shell/ on the host; its values come as arguments
        // (quoted by remoteScript) and its contents and secrets on standard input.
        type Body = { script: string; args?: pulumi.Input<string[]>; stdin?: pulumi.Input<string>; deleteArgs?: string[]; shell?: "bash" };
        const step = (stepName: string, body: Body, dependsOn: pulumi.Resource[]) =>
            new command.remote.Command(`${name}-${stepName}`, {
                connection,
                create: pulumi.all([body.args ?? [], repairs]).apply(([args, r]) => withRepairCount(remoteScript(`${scriptsDir}/${body.script}`, ssh.user, body.shell, args), r[stepName])),
                stdin: body.stdin,
                delete: body.deleteArgs === undefined ? undefined : remoteScript(`${scriptsDir}/${body.script}`, ssh.user, body.shell, body.deleteArgs),
                // sshd refuses unknown environment variables, and no step needs its previous output.
                addPreviousOutputInEnv: false,
            }, { ...parent, dependsOn: [reachable, scripts, ...dependsOn] });

        // Packages and mail users in one step: every file step needs both, and a step is an SSH session.
        const install = step("install", {
            script: "install.sh",
            args: ["install", String(settings.aptLockTimeoutSeconds), PATHS.stateDir, packages.join(" "), settings.mailUsers.join(" ")],
            stdin: renderPreseed(settings),
            // Only the packages this step installed, and only those nothing else needs.
            deleteArgs: ["remove", PATHS.stateDir],
        }, []);

        const facts = install.stdout.apply(parseHostFacts);
        const parameters = facts.apply((host) => mainCfParameters(settings, host));
        const mainCf = parameters.apply(renderMainCf);

        // Each file: written only when its content differs; its change requests a reload (lookup tables excepted).
        // The paths of the stack's file steps: the service step reinstalls a rolled-back file only for these.
        const managedPaths: string[] = [];
        const file = (stepName: string, managed: ManagedFile, content: pulumi.Input<string>, after: pulumi.Resource[], removeOnDestroy = false) => {
            managedPaths.push(managed.path);
            return step(stepName, {
                script: "write-file.sh",
                args: writeFileArgs(managed, settings.aliases.map((alias) => alias.name)),
                stdin: content,
                deleteArgs: removeOnDestroy ? removeFileArgs(managed) : undefined,
            }, after);
        };
        const relay = settings.relayHost;
        const saslPasswd = relay?.username && relayPassword !== undefined
            ? pulumi.secret(pulumi.output(relayPassword).apply((password) => renderSaslPasswd(settings, checkedPassword(password))))
            : undefined;
        const saslPasswdStep = saslPasswd && file("sasl-passwd", MANAGED_FILES.saslPasswd, saslPasswd, [install], true);
        const aliases = file("aliases", MANAGED_FILES.aliases, renderAliases(settings), [install]);
        // main.cf names these files: they are in place before it goes live.
        // The guide's certificate paths: a key and certificate found there are kept, and put back by destroy.
        const certificateFiles = [
            // Secret here too, whatever the provider marks: the key must never show in a diff or log.
            file("tls-key", MANAGED_FILES.tlsKey, pulumi.secret(key.privateKeyPem), [install], true),
            file("tls-cert", MANAGED_FILES.tlsCert, cert.certPem, [install], true),
        ];
        const named = [
            ...certificateFiles,
            file("mailname", MANAGED_FILES.mailname, renderMailname(settings), [install]),
            // Local targets are checked against the users (made by the install step) and the alias names.
            file("virtual-aliases", MANAGED_FILES.virtualAliases, renderVirtualAliases(settings), [install]),
            ...(saslPasswdStep ? [saslPasswdStep] : []),
            ...(relay?.caCertificatePem ? [file("relay-ca", MANAGED_FILES.relayCa, relay.caCertificatePem, [install], true)] : []),
        ];
        // master.cf first, beside the other files: its check runs with the live main.cf, and then
        // main.cf's check runs with the new master.cf, so the pair that goes live has been checked.
        const masterServices = facts.apply((host) => renderMasterServices(settings, host.mailVersion));
        const masterCf = file("master-cf", MANAGED_FILES.masterCf, masterServices, [install]);
        // The From: rule of port 587, which master.cf's spawn service runs (python3 comes with submission).
        const senderCheck = settings.submission ? [file("sender-check", MANAGED_FILES.senderCheck, shellFile("sender-check.py"), [install], true)] : [];
        const mainCfStep = file("main-cf", MANAGED_FILES.mainCf, mainCf, [...named, masterCf]);
        // Dovecot: port 587's logins (and IMAP), a module of its own.
        const dovecot = dovecotSteps(settings, facts.apply((host) => host.dovecotVersion), mailPasswords, {
            file,
            script: step,
        }, { installed: install, certificate: certificateFiles });
        const passwordsStep = dovecot?.passwords;
        const dovecotFiles = dovecot ? [dovecot.config, dovecot.passwords] : [];

        // Postfix started, restarted or reloaded as the file steps asked, then the deploy check: a
        // deployment that leaves postfix down, deaf or open to relay fails here. The step follows
        // what the file steps printed (each "changed" line carries its time), not their contents:
        // after a failed check the engine keeps this step's inputs from before, so the next run
        // reloads and checks again, even when the files went back to what they were. sasl_passwd
        // is read at each delivery and needs neither. The relay probe is the one `npm run verify` runs.
        const fileSteps = [...named, aliases, mainCfStep, masterCf, ...senderCheck, ...dovecotFiles];
        const reloading = fileSteps.filter((s) => s !== saslPasswdStep && s !== passwordsStep);
        const changes = pulumi.all(reloading.map((s) => s.stdout)).apply((lines) => sha256(lines.join("\0")));
        const addresses = settings.listenAddresses.map(postfixAddress);
        const ports = settings.submission ? [25, 587] : [25];
        step("service", {
            script: "service.sh",
            args: changes.apply((digest) => ["apply", PATHS.stateDir, digest, ports.join(" "), settings.imap ? "dovecot+imap" : settings.submission ? "dovecot" : "none",
                managedPaths.join(" "), ...addresses]),
            stdin: shellFile("relay-probe.sh"),
            deleteArgs: ["stop"],
            shell: "bash",
        }, fileSteps);

        this.smtpEndpoints = pulumi.output(addresses.flatMap((a) => ports.map((port) => `${a}:${port}`)));
        this.certificatePem = cert.certPem;
        this.certificateSha256 = cert.certPem.apply(fingerprintSha256);
        this.mainCfParameters = parameters.apply(asRecord);
        this.postfixVersion = facts.apply((f) => f.mailVersion);
        this.registerOutputs({
            smtpEndpoints: this.smtpEndpoints,
            certificatePem: this.certificatePem,
            certificateSha256: this.certificateSha256,
            mainCfParameters: this.mainCfParameters,
            postfixVersion: this.postfixVersion,
        });
    }

    /** The ServerState of this server: the facts every step leaves behind, by path and name, with the step that makes each. */
    private serverState(name: string, settings: Settings, connection: command.types.input.remote.ConnectionArgs, hostKey: string, ssh: SshSettings,
        made: { key: pulumi.Output<string>; cert: pulumi.Output<string>; packages: string[]; logins: boolean }): pulumi.Output<Record<string, number>> {
        // The key's digest is no secret (nothing about the key can be learnt from it): the file
        // shows by path in a preview instead of the whole list as [secret].
        const files = pulumi.all([pulumi.unsecret(made.key), made.cert])
            .apply(([keyPem, certPem]) => managedFiles(settings, { keyPem, certPem, logins: made.logins, senderCheck: shellFile("sender-check.py") }));
        const expected = files.apply((list) => expectedFacts(settings, {
            scriptsDir: `${PATHS.stateDir}/scripts/${shellBundle().hash}`, files: list, packages: made.packages,
            services: ["postfix", ...(made.logins ? ["dovecot"] : [])],
        }));
        const state = new ServerState(`${name}-server-state`, {
            connection: {
                host: ssh.host, port: ssh.port, user: ssh.user, hostKey,
                privateKey: connection.privateKey, privateKeyPassword: connection.privateKeyPassword,
                perDialTimeout: ssh.perDialTimeout, dialErrorLimit: ssh.dialErrorLimit,
            },
            fileSteps: files.apply((list) => Object.fromEntries(list.map((f) => [f.path, f.step]))),
            scripts: expected.scripts, files: expected.files, mainCf: expected.mainCf,
            packages: expected.packages, users: expected.users, services: expected.services,
        }, { parent: this });
        // None before the first check (a mock, or a state written before the counts existed).
        return state.repairs.apply((counts) => counts ?? {});
    }
}

/**
 * Whether each server gets a ServerState (what `pulumi refresh` reads back). Pulumi runs a dynamic
 * resource's provider from the program's own node_modules, which a program in another language
 * (the component package, plugin/) does not have: there it is turned off.
 */
let readsServerOnRefresh = true;
export function hostedAsComponentPackage(): void {
    readsServerOnRefresh = false;
}

function validateArgs(args: PostfixServerArgs): { settings: Settings; ssh: SshSettings; relayPassword?: pulumi.Input<string> } {
    const {
        ssh: rawSsh, sshPrivateKey: _key, sshPrivateKeyPassword: _passphrase, relayHostPassword, mailPasswords, certificateAuthority, ...mail
    } = args;
    const checked = validateMailOptions(mail, (path) => `args.${path}`, {
        mailLogins: Object.keys(mailPasswords ?? {}), certificateAuthority: certificateAuthority !== undefined,
    });
    const ssh = validateSsh(rawSsh, (path) => `args.ssh${path ? `.${path}` : ""}`);
    const problems = [...checked.problems, ...ssh.problems];
    const username = mail.relayHost?.username;
    if (username !== undefined && relayHostPassword === undefined) {
        problems.push("args.relayHostPassword must be set (as a secret) when relayHost.username is");
    } else if (username === undefined && relayHostPassword !== undefined) {
        problems.push("args.relayHostPassword is set but relayHost.username is not");
    } else if (typeof relayHostPassword === "string" && relayPasswordProblem(relayHostPassword)) {
        problems.push(`args.relayHostPassword ${relayPasswordProblem(relayHostPassword)}`);
    }
    for (const [user, password] of Object.entries(mailPasswords ?? {})) {
        if (typeof password === "string" && mailPasswordProblem(password)) problems.push(`args.mailPasswords.${user} ${mailPasswordProblem(password)}`);
    }
    if (problems.length > 0 || !checked.settings || !ssh.ssh) throw new PostfixServerArgsError(problems);
    return { settings: checked.settings, ssh: ssh.ssh, relayPassword: relayHostPassword };
}

/** A secret known only when the engine runs: checked then, before sasl_passwd is rendered. */
function checkedPassword(password: string): string {
    const problem = relayPasswordProblem(password);
    if (problem) throw new PostfixServerArgsError([`relayHostPassword ${problem}`]);
    return password;
}

/** The passwords of the users who log in, each checked when the engine knows it (a secret is known only then); sorted by user. */
function passwordsOf(settings: Settings, passwords: Record<string, pulumi.Input<string>> | undefined): pulumi.Output<Array<[string, string]>> | undefined {
    if (!passwords || settings.mailLogins.length === 0) return undefined;
    return pulumi.all(settings.mailLogins.map((user) => pulumi.output(passwords[user]).apply((password) => {
        const problem = mailPasswordProblem(password);
        if (problem) throw new PostfixServerArgsError([`mailPasswords.${user} ${problem}`]);
        return [user, password] as [string, string];
    })));
}

/** The host key to verify, or a RunError (Pulumi shows the message alone) saying why the server is not trusted. */
function trustOrStop(ssh: SshSettings, name: string) {
    try {
        return trustedHostKey(ssh, `server ${name}`, { record: !pulumi.runtime.isDryRun(), show: pulumi.runtime.isDryRun() });
    } catch (error) {
        if (error instanceof HostKeyError) throw new pulumi.RunError(error.message);
        throw error;
    }
}

/**
 * The connection every step opens. With the SSH agent (no key given) no key is in the state; a
 * key file or the secret key is stored, encrypted, in each step's state.
 */
function connectionOf(ssh: SshSettings, hostKey: string, secretKey?: pulumi.Input<string>, passphrase?: pulumi.Input<string>): command.types.input.remote.ConnectionArgs {
    const privateKey = ssh.privateKeyPath === undefined ? secretKey : readFileSync(expandHome(ssh.privateKeyPath), "utf8");
    return {
        host: ssh.host,
        port: ssh.port,
        user: ssh.user,
        privateKey: privateKey === undefined ? undefined : pulumi.secret(privateKey),
        privateKeyPassword: passphrase === undefined ? undefined : pulumi.secret(passphrase),
        hostKey,
        dialErrorLimit: ssh.dialErrorLimit,
        perDialTimeout: ssh.perDialTimeout,
    };
}

/**
 * Change whenever a step may run: one digest of the settings, the SSH settings and the
 * certificate, and one of the passwords (relay and mail), a secret (a hash of a password would
 * otherwise sit in the state). Two, not one: a secret must have a value, and the certificate has
 * none yet in a preview that renews it, while the passwords always have theirs.
 */
function changeDigests(settings: Settings, ssh: SshSettings, certPem: pulumi.Output<string>, relayPassword?: pulumi.Input<string>,
    mailPasswords?: pulumi.Output<Array<[string, string]>>): pulumi.Output<string>[] {
    const plain = certPem.apply((pem) => sha256(JSON.stringify([settings, ssh, pem], (_key, value) => typeof value === "bigint" ? String(value) : value)));
    if (relayPassword === undefined && mailPasswords === undefined) return [plain];
    const secret = pulumi.all([relayPassword ?? "", mailPasswords ?? []]).apply(([password, logins]) => sha256(JSON.stringify([password, logins])));
    return [plain, pulumi.secret(secret)];
}

export function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/** The fingerprint as `openssl x509 -fingerprint -sha256` prints it. */
export function fingerprintSha256(pem: string): string {
    return new X509Certificate(pem).fingerprint256;
}

function asRecord(parameters: Array<[string, ParameterValue]>): Record<string, string> {
    return Object.fromEntries(parameters.map(([name, value]) => [name, formatValue(value)]));
}
