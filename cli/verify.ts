// `npm run verify -- --stack NAME`: checks that each deployed server still is what the stack says,
// from the workstation (SMTP, STARTTLS) and on the host (SSH). Changes nothing on the server except
// the short XCLIENT window of the relay check, which is always closed again (see the README).
// `--changes`: instead, lists what the next `pulumi up` would change on each server (a server set
// up by hand, before its first deployment): reads only, over SSH.
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity, PeerCertificate } from "node:tls";
import { join } from "node:path";
import type { NodeSSH } from "node-ssh";
import {
    Check, compare, driftCheck, ehloChecks, ehloFeatures, expiryCheck, failed, fileCheck, firstLine, formatReport, HOST_SECTIONS, hostReportScript,
    maildirWaitScript, mismatch, parseEndpoint, parseHostReport, parsePostconf, passed, relayProbeChecks, replyCheck, replyText, report,
    ServerReport, smtpTargets,
} from "../components/core/checks";
import { Change, describeChange, plannedChanges } from "../components/core/changes";
import { renderAliases, renderMailname, renderVirtualAliases } from "../components/core/files";
import { formatValue, mainCfParameters } from "../components/core/main-cf";
import { postfixAddress } from "../components/core/net";
import { PATHS } from "../components/core/paths";
import { ConfigError, UNIX_USER } from "../components/core/validate";
import { shellFile } from "../components/shell-files";
import { NAMESPACE, readStackConfig, ServerPlan } from "../components/stack-config";
import { imapChecks } from "./imap";
import { connectSsh, runScript, SshSecrets } from "./remote";
import { expectClass, SmtpSession } from "./smtp";

const REPO = join(__dirname, "..", "..");
/** The name this client gives in EHLO: syntactically valid, never a real host. */
const EHLO_NAME = "verify.pulumi-postfix.invalid";
const DELIVERY_WAIT_SECONDS = 30;

export interface Options {
    stack: string;
    json: boolean;
    /** List what the next `pulumi up` would change instead of checking. */
    changes?: boolean;
    send?: string;
    sourceAddress?: string;
    server?: string;
}

/** A problem the user must fix before anything can be checked: exit 2. */
export class UsageError extends Error {}

const USAGE = "usage: npm run verify -- --stack NAME [--json] [--send LOCAL_USER] [--source-address IP] [--server NAME]\n" +
    "       npm run verify -- --stack NAME --changes [--json] [--server NAME]";

export function parseArgs(argv: readonly string[]): Options {
    const values: Record<string, string> = {};
    let json = false;
    let changes = false;
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const [flag, inline] = arg.split(/=(.*)/s, 2);
        if (flag === "--json" && inline === undefined) {
            json = true;
        } else if (flag === "--changes" && inline === undefined) {
            changes = true;
        } else if (["--stack", "--send", "--source-address", "--server"].includes(flag)) {
            const value = inline ?? argv[++i];
            if (value === undefined || value === "" || value.startsWith("--")) throw new UsageError(`${flag} needs a value\n${USAGE}`);
            values[flag] = value;
        } else {
            throw new UsageError(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
        }
    }
    if (!values["--stack"]) throw new UsageError(`--stack is required\n${USAGE}`);
    const send = values["--send"];
    if (send !== undefined && !UNIX_USER.test(send)) throw new UsageError(`--send ${JSON.stringify(send)} is not a local user name`);
    if (changes && (send !== undefined || values["--source-address"] !== undefined)) throw new UsageError(`--changes only reads: no --send or --source-address\n${USAGE}`);
    const parsed: Options = { stack: values["--stack"], json, send, sourceAddress: values["--source-address"], server: values["--server"] };
    return changes ? { ...parsed, changes } : parsed;
}

// ---- The stack: outputs and config, through the Pulumi CLI.

/** `PULUMI_POSTFIX_PULUMI` (a command line), else `pulumi` on PATH, else the offline engine of this repository. */
function pulumiCommand(): string[] {
    const configured = process.env.PULUMI_POSTFIX_PULUMI?.trim();
    if (configured) return configured.split(/\s+/);
    if (spawnSync("sh", ["-c", "command -v pulumi"], { stdio: "ignore" }).status === 0) return ["pulumi"];
    return ["bash", join(REPO, "scripts", "pulumi.sh")];
}

function pulumiJson(args: string[]): any {
    const [command, ...prefix] = pulumiCommand();
    const r = spawnSync(command, [...prefix, ...args], { cwd: REPO, encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new UsageError(`pulumi ${args.join(" ")} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
    return JSON.parse(r.stdout);
}

interface ServerOutputs {
    smtpEndpoints: string[];
    certificateSha256: string;
    certificatePem?: string;
    /** The stack's certificate authority (a stack output), when it signs the servers' certificates. */
    certificateAuthorityPem?: string;
}

/** main.cf as the stack's configuration renders it, with the compatibility level the host keeps. */
function wantedMainCf(plan: ServerPlan, compatibilityLevel: string): Record<string, string> {
    return Object.fromEntries(mainCfParameters(plan.settings, { compatibilityLevel: compatibilityLevel.trim() }).map(([name, value]) => [name, formatValue(value)]));
}

interface Target {
    plan: ServerPlan;
    outputs?: ServerOutputs;
}

function readStack(options: Options): { targets: Target[]; secrets: SshSecrets } {
    const outputs = pulumiJson(["stack", "output", "--json", "--stack", options.stack]);
    const deployed: Record<string, ServerOutputs> = outputs?.mailServers ?? {};
    if (Object.keys(deployed).length === 0 && !options.changes) throw new UsageError(`stack ${options.stack} has no outputs: run pulumi up first`);
    const config: Record<string, { value?: string }> = pulumiJson(["config", "--json", "--show-secrets", "--stack", options.stack]);
    const { servers, problems } = readStackConfig(Object.fromEntries(Object.entries(config).map(([key, entry]) => [key, String(entry.value ?? "")])));
    if (problems.length > 0) throw new UsageError(new ConfigError(problems).message);
    const chosen = servers.filter((s) => options.server === undefined || s.name === options.server);
    if (chosen.length === 0) throw new UsageError(`no server ${options.server} in stack ${options.stack} (servers: ${servers.map((s) => s.name).join(", ")})`);
    return {
        targets: chosen.map((plan) => ({
            plan,
            outputs: deployed[plan.name] && { ...deployed[plan.name], certificateAuthorityPem: outputs?.certificateAuthorityPem ?? undefined },
        })),
        secrets: { privateKey: config[`${NAMESPACE}:sshPrivateKey`]?.value, passphrase: config[`${NAMESPACE}:sshPrivateKeyPassword`]?.value },
    };
}

// ---- Workstation-side: the full SMTP session on one endpoint (smtpTargets), a banner from the others.

const SMTP_CHECKS = ["smtp banner", "starttls offered", "size limit", "no vrfy", "tls certificate", "rcpt postmaster", "rcpt unknown user"];

/** The SMTP checks in order; once the dialogue breaks, the checks not reached fail with the reason. */
async function smtpChecks(plan: ServerPlan, outputs: ServerOutputs, endpoint: string | undefined, options: Options): Promise<{ checks: Check[]; subject?: string }> {
    const { domain, hostname, messageSizeLimit } = plan.settings;
    const authority = outputs.certificateAuthorityPem;
    const names = [...SMTP_CHECKS, ...(options.send ? ["send"] : [])];
    const checks: Check[] = [];
    let session: SmtpSession | undefined;
    let subject: string | undefined;
    try {
        if (endpoint === undefined) {
            throw new Error(`no endpoint reachable from here: ${outputs.smtpEndpoints.join(", ")} are the server's own loopback; add its LAN address to listenAddresses`);
        }
        const { host, port } = parseEndpoint(endpoint);
        const opened = await SmtpSession.open(host, port, sameFamily(options.sourceAddress, host));
        session = opened.session;
        checks.push(compare("smtp banner", `220 ${hostname} ESMTP`, replyText(opened.greeting)));
        checks.push(...ehloChecks(expectClass(await session.command(`EHLO ${EHLO_NAME}`), 2, "EHLO"), messageSizeLimit));
        expectClass(await session.command("STARTTLS"), 2, "STARTTLS");
        const tls = await session.startTls(hostname, authority);
        checks.push(authority ? authorityCheck(tls, hostname) : compare("tls certificate", outputs.certificateSha256, tls.certificate.fingerprint256));
        expectClass(await session.command(`EHLO ${EHLO_NAME}`), 2, "EHLO after STARTTLS");
        expectClass(await session.command("MAIL FROM:<>"), 2, "MAIL FROM");
        checks.push(replyCheck("rcpt postmaster", await session.command(`RCPT TO:<postmaster@${domain}>`), /^250 /, "250"));
        const unknown = `no-such-user-${randomBytes(4).toString("hex")}@${domain}`;
        checks.push(replyCheck("rcpt unknown user", await session.command(`RCPT TO:<${unknown}>`), /^550 5\.1\.1 /, "550 5.1.1"));
        expectClass(await session.command("RSET"), 2, "RSET");
        if (options.send) {
            subject = `pulumi-postfix verify ${randomUUID()}`;
            const to = `${options.send}@${domain}`;
            expectClass(await session.command(`MAIL FROM:<verify@${domain}>`), 2, "MAIL FROM");
            expectClass(await session.command(`RCPT TO:<${to}>`), 2, `RCPT TO:<${to}>`);
            expectClass(await session.command("DATA"), 3, "DATA");
            const message = [
                `From: <verify@${domain}>`, `To: <${to}>`, `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`,
                `Message-ID: <${randomUUID()}@${hostname}>`, "", "A test message from npm run verify; safe to delete.", "",
            ].join("\r\n");
            checks.push(replyCheck("send", await session.data(message), /^250 /, "250 queued"));
        }
    } catch (error) {
        for (const name of names.slice(checks.length)) checks.push(failed(name, (error as Error).message));
        subject = undefined;
    } finally {
        await session?.close();
    }
    return { checks, subject };
}

/**
 * With the stack's certificate authority, the certificate is judged as a mail client judges it:
 * it chains to that authority (and to nothing else), and it carries the server's name.
 */
function authorityCheck(tls: { certificate: PeerCertificate; authorized: boolean; authorizationError?: string }, hostname: string): Check {
    if (!tls.authorized) return mismatch("tls certificate", "a certificate from the stack's certificate authority", `${tls.authorizationError ?? "not trusted"}`);
    const wrongName = checkServerIdentity(hostname, tls.certificate);
    if (wrongName) return mismatch("tls certificate", `the name ${hostname}`, wrongName.message);
    return passed("tls certificate", `from the stack's certificate authority (${tls.certificate.issuer.CN}), for ${hostname}, valid until ${tls.certificate.valid_to}`);
}

/** The source address when it is of the destination's IP family; else none (the system picks one). */
function sameFamily(sourceAddress: string | undefined, host: string): string | undefined {
    return sourceAddress !== undefined && isIP(sourceAddress) === isIP(host) ? sourceAddress : undefined;
}

/**
 * Every other endpoint: it answers with the banner, and the submission port refuses mail before
 * STARTTLS. A source address of the other IP family is not used.
 */
async function endpointChecks(plan: ServerPlan, endpoints: readonly string[], sourceAddress: string | undefined): Promise<Check[]> {
    const checks: Check[] = [];
    for (const endpoint of endpoints) {
        const { host, port } = parseEndpoint(endpoint);
        const name = `endpoint ${endpoint}`;
        const source = sameFamily(sourceAddress, host);
        let session: SmtpSession | undefined;
        try {
            const opened = await SmtpSession.open(host, port, source);
            session = opened.session;
            const banner = replyText(opened.greeting);
            if (!banner.startsWith(`220 ${plan.settings.hostname} `)) {
                checks.push(mismatch(name, `220 ${plan.settings.hostname} ESMTP`, banner));
                continue;
            }
            if (port !== 587) {
                checks.push(passed(name, banner));
                continue;
            }
            // Before STARTTLS a password would cross in clear: AUTH must not be offered, nor mail taken.
            const ehlo = expectClass(await session.command(`EHLO ${EHLO_NAME}`), 2, "EHLO");
            if (ehloFeatures(ehlo).some((feature) => /^AUTH( |=|$)/.test(feature))) {
                checks.push(mismatch(name, "no AUTH before STARTTLS", "AUTH offered before STARTTLS"));
                continue;
            }
            checks.push(replyCheck(name, await session.command("MAIL FROM:<>"), /^530 /, "530 (STARTTLS first)"));
        } catch (error) {
            checks.push(failed(name, (error as Error).message));
        } finally {
            await session?.close();
        }
    }
    return checks;
}

// ---- Host-side, over SSH.

async function hostChecks(ssh: NodeSSH, plan: ServerPlan, outputs: ServerOutputs): Promise<Check[]> {
    const r = await runScript(ssh, plan.ssh.user, hostReportScript(), "host checks");
    const s = parseHostReport(r.stdout);
    const missing = Object.keys(HOST_SECTIONS).filter((name) => !s[name]);
    if (missing.length > 0) return [failed("host checks", `the host check script stopped before ${missing[0]}: ${r.stderr.trim() || `exit ${r.code}`}`)];
    const checkOutput = s.check.output.replace(/\r/g, "").trim();
    let expiry: Check;
    try {
        expiry = expiryCheck(new Date(new X509Certificate(s.certPem.output).validTo), new Date(), plan.settings.certificate.earlyRenewalHours);
    } catch (error) {
        expiry = failed("certificate expiry", `cannot read ${PATHS.tlsCert}: ${s.certPem.status !== 0 ? firstLine(s.certPem) : (error as Error).message}`);
    }
    return [
        s.running.status === 0 ? passed("postfix running", firstLine(s.running)) : mismatch("postfix running", "running", firstLine(s.running)),
        s.check.status === 0 && checkOutput === "" ? passed("postfix check", "no warnings") : mismatch("postfix check", "no output", checkOutput.replace(/\n/g, " / ")),
        s.postconf.status === 0 ? driftCheck(wantedMainCf(plan, s.compatibilityLevel.output), parsePostconf(s.postconf.output)) : failed("main.cf drift", `postconf -n: ${firstLine(s.postconf)}`),
        fileCheck("aliases", PATHS.aliases, renderAliases(plan.settings), s.aliases),
        fileCheck("mailname", PATHS.mailname, renderMailname(plan.settings), s.mailname),
        fileCheck("virtual aliases", PATHS.virtualAliases, renderVirtualAliases(plan.settings), s.virtualAliases),
        compare("tls key file", "600 root:root", firstLine(s.key)),
        compare("tls cert file", "644 root", firstLine(s.cert)),
        expiry,
        s.queue.status === 0 ? passed("mail queue", `${s.queue.output.trim()} messages queued`) : failed("mail queue", `postqueue -j: ${firstLine(s.queue)}`),
    ];
}

/** The relay probe on the host, the same one the deploy check runs (components/shell/relay-probe.sh). */
async function relayChecks(ssh: NodeSSH, plan: ServerPlan): Promise<Check[]> {
    const address = postfixAddress(plan.settings.listenAddresses[0]);
    return relayProbeChecks(await runScript(ssh, plan.ssh.user, shellFile("relay-probe.sh"), "relay probe", "bash", [address]));
}

async function deliveryCheck(ssh: NodeSSH, plan: ServerPlan, user: string, subject: string | undefined): Promise<Check> {
    if (subject === undefined) return failed("delivery", "nothing was sent");
    const r = await runScript(ssh, plan.ssh.user, maildirWaitScript(user, subject, DELIVERY_WAIT_SECONDS), "delivery");
    return r.code === 0 ? passed("delivery", r.stdout.trim()) : mismatch("delivery", `the message in ~${user}/Maildir/new`, r.stderr.trim());
}

async function verifyServer({ plan, outputs }: Target, options: Options, secrets: SshSecrets): Promise<ServerReport> {
    if (!outputs) return { name: plan.name, checks: [failed("deployed", "not in the stack's outputs: run pulumi up")] };
    const sshTarget = `${plan.ssh.user}@${plan.ssh.host}:${plan.ssh.port}`;
    // SSH and SMTP in parallel: an unreachable host costs one timeout, not two.
    const connecting = connectSsh(plan.ssh, secrets, plan.name);
    connecting.catch(() => undefined); // handled below, after the SMTP checks: not an unhandled rejection meanwhile
    const targets = smtpTargets(outputs.smtpEndpoints, plan.ssh.host);
    const where = { smtpEndpoint: targets.session, ...(targets.notFromHere.length > 0 ? { notFromHere: targets.notFromHere } : {}) };
    const { checks: first, subject } = await smtpChecks(plan, outputs, targets.session, options);
    const smtp = [...first, ...(await endpointChecks(plan, targets.others, options.sourceAddress))];
    if (plan.settings.imap) {
        // IMAP on the addresses whose port 25 this workstation may check: never the server's loopback from another machine.
        const reachable = [targets.session, ...targets.others].filter((e): e is string => e !== undefined).map(parseEndpoint).filter((e) => e.port === 25).map((e) => e.host);
        smtp.push(...await imapChecks(reachable, plan.settings.hostname,
            { sha256: outputs.certificateSha256, authorityPem: outputs.certificateAuthorityPem }, options.sourceAddress));
    }
    let ssh: NodeSSH;
    const checks: Check[] = [];
    try {
        const connected = await connecting;
        ssh = connected.connection;
        checks.push(passed("ssh", `${sshTarget}, host key as in ${connected.keySource}`));
    } catch (error) {
        return { name: plan.name, ...where, checks: [failed("ssh", `${sshTarget}: ${(error as Error).message}`), ...smtp] };
    }
    // A phase that breaks (a command timing out) is one cross; the others still run.
    const phase = async (name: string, run: () => Promise<Check[]>) => {
        try {
            checks.push(...(await run()));
        } catch (error) {
            checks.push(failed(name, (error as Error).message));
        }
    };
    try {
        await phase("host checks", () => hostChecks(ssh, plan, outputs));
        checks.push(...smtp);
        await phase("relay refused", () => relayChecks(ssh, plan));
        const user = options.send;
        if (user) await phase("delivery", async () => [await deliveryCheck(ssh, plan, user, subject)]);
    } finally {
        ssh.dispose();
    }
    return { name: plan.name, ...where, checks };
}

// ---- --changes: what the next pulumi up would change, read from the host.

interface ServerChanges { name: string; changes?: Change[]; error?: string }

async function changesOf({ plan, outputs }: Target, secrets: SshSecrets): Promise<ServerChanges> {
    let ssh: NodeSSH;
    try {
        ssh = (await connectSsh(plan.ssh, secrets, plan.name)).connection;
    } catch (error) {
        return { name: plan.name, error: `ssh ${plan.ssh.user}@${plan.ssh.host}:${plan.ssh.port}: ${(error as Error).message}` };
    }
    try {
        const s = parseHostReport((await runScript(ssh, plan.ssh.user, hostReportScript(), "reading the host")).stdout);
        const text = (name: string) => (s[name]?.status === 0 ? s[name].output : undefined);
        const changes = plannedChanges(plan.settings, {
            postconf: text("postconf"), compatibilityLevel: text("compatibilityLevel"),
            aliases: text("aliases"), mailname: text("mailname"), virtualAliases: text("virtualAliases"),
            dovecotVersion: text("dovecotVersion"), dovecotConf: text("dovecotConf"), doveconf: text("doveconf"), certPem: text("certPem"),
        }, outputs?.certificatePem);
        return { name: plan.name, changes };
    } catch (error) {
        return { name: plan.name, error: (error as Error).message };
    } finally {
        ssh.dispose();
    }
}

function formatChanges(stack: string, servers: ServerChanges[]): string {
    const width = Math.max(0, ...servers.flatMap((s) => (s.changes ?? []).map((c) => c.file.length)));
    return servers.flatMap((s) => {
        if (s.error !== undefined) return [`${s.name} (stack ${stack}): cannot read the host: ${s.error}`];
        const changes = s.changes ?? [];
        return [
            `${s.name} (stack ${stack}): ${changes.length === 0 ? "nothing" : `${changes.length} change${changes.length === 1 ? "" : "s"}`} on the next pulumi up`,
            ...changes.map((c) => `  ${c.file.padEnd(width)}  ${describeChange(c)}`),
        ];
    }).join("\n") + "\n";
}

async function main(): Promise<number> {
    const options = parseArgs(process.argv.slice(2));
    const { targets, secrets } = readStack(options);
    if (options.changes) {
        const servers: ServerChanges[] = [];
        for (const target of targets) servers.push(await changesOf(target, secrets));
        process.stdout.write(options.json ? `${JSON.stringify({ stack: options.stack, servers }, null, 2)}\n` : formatChanges(options.stack, servers));
        return servers.some((s) => s.error !== undefined) ? 1 : 0;
    }
    const servers: ServerReport[] = [];
    for (const target of targets) servers.push(await verifyServer(target, options, secrets));
    const result = report(options.stack, servers);
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
    return result.failed === 0 ? 0 : 1;
}

if (require.main === module) {
    main().then(
        (code) => (process.exitCode = code),
        (error: Error) => {
            process.stderr.write(`verify: ${error instanceof UsageError ? error.message : error.stack}\n`);
            process.exitCode = 2;
        },
    );
}
