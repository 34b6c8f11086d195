// Drift: what a deployed server must look like (from the settings and the rendered files), what a
// refresh read there (components/shell/server-read.sh), and which steps must run again to put it
// back. Pure: the host's side arrives as the text the read script prints.
import { createHash } from "node:crypto";
import { mainCfDrift, parsePostconf } from "./checks";
import { renderAliases, renderMailname, renderVirtualAliases } from "./files";
import { formatValue, mainCfParameters } from "./main-cf";
import { MANAGED_FILES, ManagedFile } from "./scripts";
import { PATHS } from "./paths";
import type { Settings } from "./settings";

/** A managed file as it is (or must be): its content's digest when the workstation knows the content, its mode and owner. */
export type FileFact = { sha256?: string; mode: string; owner: string } | "missing";

/**
 * What a deployment depends on, one property per kind of thing, each keyed by what it names (a
 * file's path, a package, a main.cf parameter): a drifted file shows in a preview under its path.
 */
export interface ServerFacts {
    /** The folder of the host scripts every step runs. */
    scripts: Record<string, "present" | "missing">;
    files: Record<string, FileFact>;
    /** main.cf's parameters, as `postconf -n` shows them, but Debian's `compatibility_level` (kept as installed). */
    mainCf: Record<string, string>;
    /** "installed", "missing", or, after an upgrade to another Postfix or Dovecot series, "installed X.Y, deployed with A.B". */
    packages: Record<string, string>;
    users: Record<string, "present" | "missing">;
    services: Record<string, "running" | "stopped">;
}

/** What the read found, besides the facts: the versions the configuration depends on. */
export interface ServerVersions {
    /** `/etc/debian_version`. */
    debianRelease: string;
    postfix?: string;
    dovecot?: string;
}

/** A file the component writes, and the step that writes it. */
export interface ExpectedFile {
    path: string;
    step: string;
    /** The rendered content's digest; absent when the content is made on the host (master.cf, password hashes). */
    sha256?: string;
    mode: string;
    owner: string;
}

/**
 * The files the steps write, each with its step: the digest where the workstation knows the
 * content. Made on the host (our services in Debian's master.cf, the password hashes) or holding a
 * password: mode and owner only. main.cf: its parameters instead (expectedMainCf).
 */
export function managedFiles(settings: Settings, made: { keyPem: string; certPem: string; logins: boolean; senderCheck?: string }): ExpectedFile[] {
    const file = (step: string, managed: ManagedFile, content?: string): ExpectedFile => ({
        path: managed.path, step, mode: managed.mode, owner: managed === MANAGED_FILES.mailPasswords ? "root:dovecot" : "root:root",
        ...(content === undefined ? {} : { sha256: createHash("sha256").update(content).digest("hex") }),
    });
    const relay = settings.relayHost;
    return [
        file("tls-key", MANAGED_FILES.tlsKey, made.keyPem),
        file("tls-cert", MANAGED_FILES.tlsCert, made.certPem),
        file("mailname", MANAGED_FILES.mailname, renderMailname(settings)),
        file("virtual-aliases", MANAGED_FILES.virtualAliases, renderVirtualAliases(settings)),
        file("aliases", MANAGED_FILES.aliases, renderAliases(settings)),
        file("main-cf", MANAGED_FILES.mainCf),
        file("master-cf", MANAGED_FILES.masterCf),
        ...(relay?.username ? [file("sasl-passwd", MANAGED_FILES.saslPasswd)] : []),
        ...(relay?.caCertificatePem ? [file("relay-ca", MANAGED_FILES.relayCa, relay.caCertificatePem)] : []),
        ...(made.logins ? [file("sender-check", MANAGED_FILES.senderCheck, made.senderCheck),
            file("dovecot-conf", MANAGED_FILES.dovecotConf), file("mail-passwords", MANAGED_FILES.mailPasswords)] : []),
    ];
}

/** What the steps that run after install must see; the main.cf parameters without Debian's level. */
export function expectedFacts(settings: Settings, e: { scriptsDir: string; files: ExpectedFile[]; packages: string[]; services: string[] }): ServerFacts {
    return {
        scripts: { [e.scriptsDir]: "present" },
        files: Object.fromEntries(e.files.map((f) => [f.path, f.sha256 === undefined ? { mode: f.mode, owner: f.owner } : { sha256: f.sha256, mode: f.mode, owner: f.owner }])),
        mainCf: expectedMainCf(settings),
        packages: Object.fromEntries(e.packages.map((name) => [name, "installed"])),
        users: Object.fromEntries(settings.mailUsers.map((name) => [name, "present"])),
        services: Object.fromEntries(e.services.map((name) => [name, "running"])),
    };
}

/** The level Debian wrote is the host's: every other parameter is the settings'. */
const KEPT_FROM_HOST = "compatibility_level";

export function expectedMainCf(settings: Settings): Record<string, string> {
    return Object.fromEntries(mainCfParameters(settings, { compatibilityLevel: "" })
        .filter(([name]) => name !== KEPT_FROM_HOST)
        .map(([name, value]) => [name, formatValue(value)]));
}

/** server-read.sh's output, parsed. */
export interface ServerRead {
    dirs: Record<string, boolean>;
    files: Record<string, { sha256: string; mode: string; owner: string } | undefined>;
    packages: Record<string, boolean>;
    users: Record<string, boolean>;
    services: Record<string, boolean>;
    versions: ServerVersions;
    /** The versions the last install step rendered for (recorded on the host by install.sh). */
    deployedVersions: { postfix?: string; dovecot?: string };
    /** `postconf -n`; absent when postfix or main.cf is not there. */
    postconf?: string;
}

/** What server-read.sh is asked on its standard input: one item a line. */
export function readRequest(expected: ServerFacts): string {
    return [
        ...Object.keys(expected.scripts).map((path) => `dir ${path}`),
        ...Object.keys(expected.files).map((path) => `file ${path}`),
        ...Object.keys(expected.packages).map((name) => `package ${name}`),
        ...Object.keys(expected.users).map((name) => `user ${name}`),
        ...Object.keys(expected.services).map((name) => `service ${name}`),
        `deployed ${PATHS.stateDir}/${DEPLOYED_VERSIONS}`,
        "",
    ].join("\n");
}

export function parseServerRead(stdout: string): ServerRead {
    const read: ServerRead = { dirs: {}, files: {}, packages: {}, users: {}, services: {}, versions: { debianRelease: "unknown" }, deployedVersions: {} };
    const lines = stdout.split("\n");
    const postconfAt = lines.indexOf("postconf");
    for (const line of postconfAt < 0 ? lines : lines.slice(0, postconfAt)) {
        const [what, name, ...rest] = line.split(" ");
        const state = rest.join(" ");
        switch (what) {
            case "dir": read.dirs[name] = state === "present"; break;
            case "file": {
                if (state === "missing") { read.files[name] = undefined; break; }
                const [sha256, mode, owner] = rest;
                if (!/^[0-9a-f]{64}$/.test(sha256 ?? "") || !/^[0-7]{4}$/.test(mode ?? "") || !owner) throw unexpected(line);
                read.files[name] = { sha256, mode, owner };
                break;
            }
            case "package": read.packages[name] = state === "installed"; break;
            case "user": read.users[name] = state === "present"; break;
            case "service": read.services[name] = state === "running"; break;
            case "release": read.versions.debianRelease = [name, ...rest].join(" "); break;
            case "postfix": read.versions.postfix = name; break;
            case "dovecot": read.versions.dovecot = name; break;
            case "deployed": if (name === "postfix" || name === "dovecot") read.deployedVersions[name] = state; break;
            case "": break;
            default: throw unexpected(line);
        }
    }
    if (postconfAt >= 0) read.postconf = lines.slice(postconfAt + 1).join("\n");
    return read;
}

const unexpected = (line: string) => new Error(`pulumi-postfix: unexpected line from the server read: ${JSON.stringify(line)}`);

/** Shown for a parameter the settings write and main.cf no longer has. */
export const NOT_SET = "(not set)";

/**
 * The facts as the host has them, in the expected facts' shape and order: equal to `expected`
 * exactly when nothing drifted. main.cf as `npm run verify` compares it (spacing aside); a
 * parameter added by hand appears after the managed ones.
 */
export function observedFacts(expected: ServerFacts, read: ServerRead): ServerFacts {
    const files: Record<string, FileFact> = {};
    for (const [path, want] of Object.entries(expected.files)) {
        const seen = read.files[path];
        files[path] = seen === undefined ? "missing"
            : want !== "missing" && want.sha256 === undefined ? { mode: seen.mode, owner: seen.owner } : seen;
    }
    const mainCf: Record<string, string> = {};
    if (read.postconf !== undefined) {
        const live = parsePostconf(read.postconf);
        delete live[KEPT_FROM_HOST];
        const drift = new Map(mainCfDrift(expected.mainCf, live).map((d) => [d.name, d.seen]));
        for (const [name, value] of Object.entries(expected.mainCf)) mainCf[name] = drift.has(name) ? drift.get(name) ?? NOT_SET : value;
        for (const [name, seen] of drift) if (!(name in expected.mainCf) && seen !== undefined) mainCf[name] = seen;
    }
    const each = <T extends string>(names: Record<string, unknown>, seen: Record<string, boolean>, yes: T, no: T) =>
        Object.fromEntries(Object.keys(names).map((name) => [name, seen[name] ? yes : no])) as Record<string, T>;
    return {
        scripts: each(expected.scripts, read.dirs, "present", "missing"),
        files,
        mainCf,
        packages: Object.fromEntries(Object.entries(each(expected.packages, read.packages, "installed", "missing"))
            .map(([name, state]) => [name, state === "installed" ? upgraded(name, read) ?? state : state])),
        users: each(expected.users, read.users, "present", "missing"),
        services: each(expected.services, read.services, "running", "stopped"),
    };
}

/** Where install.sh records the versions its run rendered for, in the state folder. */
export const DEPLOYED_VERSIONS = "deployed-versions";
/** The package whose series (major.minor) the rendered configuration depends on: main.cf and master.cf follow Postfix's, Dovecot's file Dovecot's. */
const SERIES_OF: Record<string, "postfix" | "dovecot"> = { postfix: "postfix", "dovecot-core": "dovecot" };
const series = (version: string) => version.split(".").slice(0, 2).join(".");

/**
 * "installed X.Y, deployed with A.B" when the package runs another series than the last install
 * step rendered for (Debian upgraded under the stack); undefined otherwise, also when nothing was
 * recorded (a deployment from before the record). A point release (a security update) is no drift.
 */
function upgraded(name: string, read: ServerRead): string | undefined {
    const program = SERIES_OF[name];
    const now = program && read.versions[program];
    const then = program && read.deployedVersions[program];
    if (!now || !then || series(now) === series(then)) return undefined;
    return `installed ${series(now)}, deployed with ${series(then)}`;
}

/** JSON with sorted keys: two facts are the same when their texts are. */
export function canonical(value: unknown): string {
    return JSON.stringify(value, (_key, v) => v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);
}

export const FACT_KEYS = ["scripts", "files", "mainCf", "packages", "users", "services"] as const;

/** The facts of a resource's properties (inputs or outputs), nothing else. */
export function factsOf(properties: Partial<ServerFacts>): ServerFacts {
    return Object.fromEntries(FACT_KEYS.map((key) => [key, properties[key] ?? {}])) as unknown as ServerFacts;
}

/** The kinds of facts (`files`, `mainCf`, ...) that differ. */
export function differingFacts(a: ServerFacts, b: ServerFacts): string[] {
    return FACT_KEYS.filter((key) => canonical(a[key]) !== canonical(b[key]));
}

/**
 * The steps that must run again so that the host has `deployed` again, given what it has
 * (`observed`): the step of each drifted file (`fileSteps`: path to step), main-cf for a
 * parameter, install for a package or a mail user, the scripts step for their folder, the
 * service step for a stopped service. Sorted.
 */
export function driftedSteps(deployed: ServerFacts, observed: ServerFacts, fileSteps: Record<string, string>, mainCfPath: string): string[] {
    const steps = new Set<string>();
    const differs = (a: unknown, b: unknown) => canonical(a) !== canonical(b);
    if (differs(deployed.scripts, observed.scripts)) steps.add("scripts");
    for (const path of new Set([...Object.keys(deployed.files), ...Object.keys(observed.files)])) {
        if (differs(deployed.files[path], observed.files[path]) && fileSteps[path]) steps.add(fileSteps[path]);
    }
    if (differs(deployed.mainCf, observed.mainCf) && fileSteps[mainCfPath]) steps.add(fileSteps[mainCfPath]);
    if (differs(deployed.packages, observed.packages) || differs(deployed.users, observed.users)) steps.add("install");
    if (differs(deployed.services, observed.services)) steps.add("service");
    return [...steps].sort();
}

/** Each drifted step's repair count one higher: the count is part of the step's command, so the step runs again. */
export function bumpRepairs(repairs: Record<string, number>, steps: readonly string[]): Record<string, number> {
    const next = { ...repairs };
    for (const step of steps) next[step] = (next[step] ?? 0) + 1;
    return next;
}

/**
 * A step's command with its repair count: unchanged while the count is 0 (a deployment from
 * before drift repair sees no change), else with a shell comment the login shell ignores, which
 * makes the command differ, so the command provider runs it again (an update, not a replacement:
 * a replacement would also run the old step's delete, such as removing postfix).
 */
export function withRepairCount(command: string, count: number | undefined): string {
    return count ? `${command} # repair ${count}: drift seen by a refresh` : command;
}
