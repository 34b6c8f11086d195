// What the next `pulumi up` will change on a server that is already there (set up by hand, or
// drifted): the rendered main.cf parameters and files, compared with what the host has now.
// Pure: the host's side arrives as text read over SSH (`npm run verify -- --changes`).
import { mainCfDrift, parsePostconf } from "./checks";
import { renderedDovecotConf, userChanges } from "./dovecot";
import { renderAliases, renderMailname, renderVirtualAliases } from "./files";
import { formatValue, mainCfParameters } from "./main-cf";
import { PATHS } from "./paths";
import { Settings } from "./settings";

export interface Change {
    /** The file: `/etc/postfix/main.cf`, `/etc/aliases`, ... */
    file: string;
    /** main.cf: the parameter. Other files: absent (the change is a line). */
    parameter?: string;
    /** The value or line now on the host; absent when it will be added. */
    from?: string;
    /** The value or line after `pulumi up`; absent when it will be removed. */
    to?: string;
}

/** What the host has now; `undefined`: the file (or postfix) is not there. */
export interface HostState {
    /** `postconf -n`. */
    postconf?: string;
    /** `postconf -h compatibility_level`: Debian's level, which the deployment keeps. */
    compatibilityLevel?: string;
    aliases?: string;
    mailname?: string;
    virtualAliases?: string;
    /** `dovecot --version`, the component's conf.d file, `doveconf -n`, and the certificate at the guide's path. */
    dovecotVersion?: string;
    dovecotConf?: string;
    doveconf?: string;
    certPem?: string;
}

/** A server's managed configuration: main.cf as parameters, and the other files' text. */
export interface ManagedConfig {
    parameters: Record<string, string>;
    aliases: string;
    mailname: string;
    virtualAliases: string;
}

/** What the stack renders for this host (Debian's compatibility level kept, as the deployment does). */
export function renderedConfig(settings: Settings, host: HostState): ManagedConfig {
    // Before postfix is installed, Debian's level is not known yet: shown as what it will be.
    const compatibilityLevel = host.compatibilityLevel?.trim() || "(Debian's default, kept)";
    return {
        parameters: Object.fromEntries(mainCfParameters(settings, { compatibilityLevel }).map(([name, value]) => [name, formatValue(value)])),
        aliases: renderAliases(settings),
        mailname: renderMailname(settings),
        virtualAliases: renderVirtualAliases(settings),
    };
}

/** Every change from the host's state to `wanted`: main.cf parameter by parameter, then the other files line by line. */
export function changesTo(wanted: ManagedConfig, host: HostState): Change[] {
    const live = host.postconf === undefined ? {} : parsePostconf(host.postconf);
    const changes: Change[] = mainCfDrift(wanted.parameters, live).map((d) => ({ file: PATHS.mainCf, parameter: d.name, from: d.seen, to: d.expected }));
    for (const [file, rendered, now] of [
        [PATHS.aliases, wanted.aliases, host.aliases],
        [PATHS.mailname, wanted.mailname, host.mailname],
        [PATHS.virtualAliases, wanted.virtualAliases, host.virtualAliases],
    ] as const) {
        changes.push(...lineChanges(file, now, rendered));
    }
    return changes;
}

/**
 * What the next `pulumi up` changes on this host: the managed files, then Dovecot's file and what
 * changes for the people who use the host's Dovecot and certificate (`stackCertPem`: the
 * certificate the stack deployed, when it did).
 */
export function plannedChanges(settings: Settings, host: HostState, stackCertPem?: string): Change[] {
    const dovecotConf = renderedDovecotConf(settings, /^\d[\w.]*/.exec(host.dovecotVersion?.trim() ?? "")?.[0]);
    return [
        ...changesTo(renderedConfig(settings, host), host),
        ...(dovecotConf === undefined ? [] : lineChanges(PATHS.dovecotConf, host.dovecotConf, dovecotConf)),
        ...userChanges(settings, host, stackCertPem),
    ];
}

/** Lines that go and lines that come (order kept within each); nothing when the file is the same. */
function lineChanges(file: string, now: string | undefined, rendered: string): Change[] {
    if (now === rendered) return [];
    const before = now === undefined ? [] : lines(now);
    const after = lines(rendered);
    const removed = before.filter((line) => !after.includes(line)).map((line) => ({ file, from: line }));
    const added = after.filter((line) => !before.includes(line)).map((line) => ({ file, to: line }));
    // Same lines, another order or spacing: the file is still rewritten.
    return removed.length + added.length > 0 ? [...removed, ...added] : [{ file, from: "(same lines, other order or spacing)", to: "(as rendered)" }];
}

const lines = (text: string) => text.split("\n").filter((line) => line !== "");

/** One line per change, as `verify --changes` prints them. */
export function describeChange(c: Change): string {
    if (c.parameter !== undefined) {
        if (c.from === undefined) return `+ ${c.parameter} = ${c.to}`;
        if (c.to === undefined) return `- ${c.parameter} = ${c.from}`;
        return `~ ${c.parameter} = ${c.from}  ->  ${c.to}`;
    }
    if (c.from !== undefined && c.to !== undefined) return `~ ${c.from}  ->  ${c.to}`;
    return c.from !== undefined ? `- ${c.from}` : `+ ${c.to}`;
}
