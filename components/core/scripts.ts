// The shell scripts the component runs on the host, one per step. Each is idempotent, POSIX sh,
// `set -eu`, and passes shellcheck (see test/unit/scripts.test.ts). File contents and keys never
// appear here: they arrive on standard input.
import { PATHS } from "./paths";
import { script, shq } from "./shell";

/** Postfix 3.7 (Debian 12) prints errors only to a terminal: script(1) gives it one, so failures say why. */
const WITH_TERMINAL = [
    "with_terminal() {",
    '    if ! out=$(script -qec "$*" /dev/null 2>&1); then',
    "        printf '%s\\n' \"$out\" | tr -d '\\r' >&2",
    "        return 1",
    "    fi",
    "}",
];

/** The packages the install step installs: postfix, and the SASL mechanisms a smarthost login needs. */
export function packagesFor(smarthostLogin: boolean): string[] {
    return ["postfix", "postfix-doc", ...(smarthostLogin ? ["libsasl2-modules"] : [])];
}

/** A file the component owns on the host, and what its change means for postfix. */
export interface ManagedFile {
    path: string;
    mode: "0600" | "0644";
    /** Builds the candidate `$new` from stdin; default: stdin is the content. */
    produce?: readonly string[];
    /** Runs on the candidate `$new` (staged copy of main.cf in `$stage`) before it goes live; may set `effect=restart`. */
    check?: readonly string[];
    /** Runs once the new file is live. */
    after?: readonly string[];
    /** `false`: postfix notices the change itself (lookup tables), no reload is requested. */
    reload?: false;
}

const MAIN_CF_CHECK = [
    'cp -p /etc/postfix/master.cf "$stage/master.cf"',
    'cp -p "$new" "$stage/main.cf"',
    'if ! with_terminal postfix -c "$stage" check; then',
    "    echo \"pulumi-postfix: postfix refused the new main.cf (above); the live configuration is unchanged\" >&2",
    "    exit 1",
    "fi",
    "# Listener changes need a stop and start: a reload keeps the old sockets.",
    'if [ "$(postconf -c /etc/postfix -h inet_interfaces inet_protocols 2>/dev/null || true)" != "$(postconf -c "$stage" -h inet_interfaces inet_protocols)" ]; then',
    "    effect=restart",
    "fi",
];

// Mail to an alias whose user does not exist is accepted, then bounced: refuse such a file.
// `listTargets`: lists the targets of the candidate file; `isAlias`: true when local name `$target`
// is an alias.
const targetsCheck = (listTargets: string, isAlias: string) => [
    'missing=""',
    `for target in $(${listTargets} | tr ',' ' '); do`,
    '    case "$target" in *@*) continue ;; esac',
    `    if ! ${isAlias} && ! getent passwd "$target" >/dev/null; then`,
    '        missing="$missing $target"',
    "    fi",
    "done",
    'if [ -n "$missing" ]; then',
    "    echo \"pulumi-postfix: $dest points to users that do not exist on the host:$missing (add them to mailUsers)\" >&2",
    "    exit 1",
    "fi",
];
const ALIASES_CHECK = targetsCheck("sed -n 's/^[^#][^:]*:[[:space:]]*//p' \"$new\"", 'grep -qs "^$target:" "$new"');
// The alias names come as the script's arguments, not from /etc/aliases: the two files are
// written side by side, and a name new in both must pass.
const VIRTUAL_CHECK = targetsCheck("sed -n 's/^[^#][^[:space:]]*[[:space:]]*//p' \"$new\"", 'case " $* " in *" $target "*) true ;; *) false ;; esac');

// Our services (renderMasterServices) are applied to a copy of the live master.cf: Debian's own
// entries stay as the release ships them, and ours are exactly what stdin says.
const MASTER_CF_PRODUCE = [
    "spec=$(cat)",
    'cp -p /etc/postfix/main.cf "$stage/main.cf"',
    'cp -p "$dest" "$stage/master.cf"',
    'postconf -c "$stage" -MX submission/inet',
    "printf '%s\\n' \"$spec\" | while IFS= read -r line; do",
    '    case "$line" in',
    '        "") ;;',
    '        "service "*) postconf -c "$stage" -M "${line#service }" ;;',
    '        "parameter "*) postconf -c "$stage" -P "${line#parameter }" ;;',
    '        *) echo "pulumi-postfix: unexpected master.cf line: $line" >&2; exit 1 ;;',
    "    esac",
    "done",
    'cp "$stage/master.cf" "$new"',
];

const MASTER_CF_CHECK = [
    'if ! with_terminal postfix -c "$stage" check; then',
    "    echo \"pulumi-postfix: postfix refused the new master.cf (above); the live configuration is unchanged\" >&2",
    "    exit 1",
    "fi",
];

// Lookup tables: postmap builds the database; postfix processes notice it changed by themselves.
const POSTMAP = ['postmap "hash:$dest"'];

export const MANAGED_FILES = {
    mainCf: { path: PATHS.mainCf, mode: "0644", check: MAIN_CF_CHECK },
    aliases: { path: PATHS.aliases, mode: "0644", check: ALIASES_CHECK, after: ["newaliases"] },
    mailname: { path: PATHS.mailname, mode: "0644" },
    tlsKey: { path: PATHS.tlsKey, mode: "0600" },
    tlsCert: { path: PATHS.tlsCert, mode: "0644" },
    masterCf: { path: PATHS.masterCf, mode: "0644", produce: MASTER_CF_PRODUCE, check: MASTER_CF_CHECK },
    // A reload makes the new map count from the next connection on.
    virtualAliases: { path: PATHS.virtualAliases, mode: "0644", check: VIRTUAL_CHECK, after: POSTMAP },
    // umask: the database holds the password too, and must never be readable by others, even briefly.
    // The SMTP client reads the map at each delivery; the flush retries what a wrong password held.
    saslPasswd: {
        path: PATHS.saslPasswd, mode: "0600", reload: false,
        after: ["(umask 077; postmap \"hash:$dest\")", 'chmod 0600 "$dest.db"', "postqueue -f 2>/dev/null || true"],
    },
    relayCa: { path: PATHS.relayCa, mode: "0644" },
} satisfies Record<string, ManagedFile>;

/**
 * The one "write this file if it differs" mechanism. Reads the content from stdin; when it differs
 * from the live file, checks it, keeps the old one as `<path>.previous`, renames the new one into
 * place (atomic) and leaves a reload (or restart) request for the service step.
 */
export function writeFileScript(file: ManagedFile, stateDir: string = PATHS.stateDir): string {
    return script(
        `dest=${shq(file.path)}`,
        ...(file.reload === false ? [] : [`state=${shq(stateDir)}`]),
        ...WITH_TERMINAL,
        'dir=$(dirname "$dest")',
        `[ -d "$dir" ] || { mkdir -p "$dir"; chmod ${file.mode === "0600" ? "0700" : "0755"} "$dir"; }`,
        'new=$(mktemp "$dest.XXXXXX")',
        "stage=$(mktemp -d)",
        'trap \'rm -rf "$new" "$stage"\' EXIT',
        ...(file.produce ?? ['cat >"$new"']),
        "# Postfix re-reads a main.cf changed less than 2 s ago until it is that old (an editor may still",
        "# be writing it): this file is complete before it is checked or renamed into place, so it is",
        "# dated 2 s back, and postfix check and the reload read it at once.",
        'touch -d "@$(($(date +%s) - 2))" "$new"',
        'if [ -f "$dest" ] && cmp -s "$new" "$dest"; then',
        '    echo "unchanged: $dest"',
        "    exit 0",
        "fi",
        ...(file.reload === false ? [] : ["effect=reload"]),
        ...(file.check ?? []),
        `chmod ${file.mode} "$new"`,
        'chown 0:0 "$new"',
        // A secret (0600) leaves no old copy behind.
        ...(file.mode === "0600" ? [] : ['if [ -f "$dest" ]; then cp -p "$dest" "$dest.previous"; fi']),
        'mv -f "$new" "$dest"',
        ...(file.after ?? []),
        ...(file.reload === false
            ? ['echo "changed: $dest"']
            : [
                'mkdir -p "$state"',
                'touch "$state/$effect"',
                // The time makes each run's line its own: the service step follows these lines, so it
                // runs again even when a file goes back to what it was before a failed run.
                'echo "changed: $dest ($effect requested) at $(date -u \'+%Y-%m-%d %H:%M:%S UTC\')"',
            ]),
    );
}

export function removeFileScript(file: ManagedFile): string {
    return script(`rm -f ${shq(file.path)} ${shq(`${file.path}.previous`)} ${shq(`${file.path}.db`)}`);
}

/** Reads the line the install step ends with: `postfix 3.7.11 installed (21 packages), compatibility_level 3.6`. */
export function parseHostFacts(stdout: string): { compatibilityLevel: string; mailVersion: string } {
    const facts = /^postfix (\S+) .*, compatibility_level ([0-9][0-9.]*)$/m.exec(stdout);
    const [, mailVersion, compatibilityLevel] = facts ?? [];
    if (!compatibilityLevel || !mailVersion) {
        throw new Error(`pulumi-postfix: unexpected output from the install step: ${JSON.stringify(stdout)}`);
    }
    return { compatibilityLevel, mailVersion };
}
