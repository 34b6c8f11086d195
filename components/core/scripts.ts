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

/**
 * Installs the packages once, answering debconf from stdin, and creates the missing mail users
 * (no password, no login shell; never deletes one): what every file step needs on the host, in
 * one SSH session. Prints one line per user created, then what the host runs.
 */
export function installScript(aptLockTimeoutSeconds: number, packages: readonly string[] = packagesFor(false), users: readonly string[] = []): string {
    return script(
        "export DEBIAN_FRONTEND=noninteractive",
        `lock=${shq(aptLockTimeoutSeconds)}`,
        `set -- ${packages.map(shq).join(" ")}`,
        "installed() { # the packages",
        "    # shellcheck disable=SC2016 # dpkg-query expands ${Status} itself",
        "    [ \"$(dpkg-query -W -f '${Status}\\n' \"$@\" 2>/dev/null | grep -c '^install ok installed$')\" = $# ]",
        "}",
        'log=$(mktemp)',
        'trap \'rm -f "$log"\' EXIT',
        "# apt's output is shown only when it fails; otherwise one line says what happened.",
        "apt_install() { # the packages",
        '    if apt-get -q -y -o DPkg::Lock::Timeout="$lock" install "$@" >"$log" 2>&1; then return 0; fi',
        '    cat "$log" >&2',
        "    return 1",
        "}",
        "apt_update() {",
        '    if apt-get -q -o DPkg::Lock::Timeout="$lock" update >"$log" 2>&1; then return 0; fi',
        '    cat "$log" >&2',
        "    return 1",
        "}",
        "# A run cut short (apt killed with the connection, a reboot) leaves dpkg \"interrupted\": every",
        "# apt-get refuses to run until dpkg --configure -a. dpkg does not wait for its lock itself: while",
        "# another apt run holds it (that run is then what dpkg --audit sees), retry up to the same bound.",
        "repair_dpkg() {",
        '    [ -n "$(dpkg --audit 2>/dev/null)" ] || return 0',
        '    deadline=$(($(date +%s) + lock))',
        '    until out=$(LC_ALL=C dpkg --configure -a </dev/null 2>&1); do',
        '        case "$out" in *lock*locked*) ;; *) printf \'%s\\n\' "$out" >&2; return 1 ;; esac',
        '        if [ "$(date +%s)" -ge "$deadline" ]; then printf \'%s\\n\' "$out" >&2; return 1; fi',
        "        sleep 1",
        "    done",
        '    printf \'%s\\n\' "$out"',
        "}",
        "outcome=\"already installed\"",
        "if ! installed \"$@\"; then",
        "    # Before debconf-set-selections: a running postinst holds the debconf database too.",
        "    if ! repair_dpkg; then",
        '        echo "pulumi-postfix: dpkg was interrupted and dpkg --configure -a failed (above; waited up to ${lock}s for the dpkg lock)" >&2',
        "        exit 1",
        "    fi",
        "    debconf-set-selections",
        "    # Another failure is most often stale package lists: refresh once, then try again. Not after a",
        "    # lock timeout: the bound is the user's, and a refresh would wait for the same lock again.",
        '    if ! apt_install "$@" && { grep -Eq "^E: .*lock" "$log" || ! { apt_update && apt_install "$@"; }; }; then',
        '        echo "pulumi-postfix: could not install postfix (apt waited up to ${lock}s for the dpkg lock; see its message above)" >&2',
        "        exit 1",
        "    fi",
        "    # A wait for another apt run is worth a line: it says why the step took longer.",
        "    waited=$(tr '\\r' '\\n' <\"$log\" | grep -m1 -o 'Could not get lock .* It is held by process [0-9]* ([^)]*)' || true)",
        '    if [ -n "$waited" ]; then echo "apt waited for the dpkg lock: $waited"; fi',
        "    count=$(sed -n 's/.* \\([0-9]*\\) newly installed.*/\\1/p' \"$log\")",
        "    removed=$(sed -n 's/^Removing \\([^ ]*\\) .*/\\1/p' \"$log\" | sort -u | tr '\\n' ' ')",
        "    outcome=\"installed (${count:-0} packages${removed:+; removed ${removed% }})\"",
        "fi",
        ...(users.length === 0 ? [] : [
            `for user in ${users.map(shq).join(" ")}; do`,
            '    if ! id -u "$user" >/dev/null 2>&1; then',
            "        useradd --create-home --shell /usr/sbin/nologin --comment 'mail user (pulumi-postfix)' \"$user\"",
            '        echo "created user $user"',
            "    fi",
            "done",
        ]),
        "# One line for the display; parseHostFacts reads the version and compatibility level from it.",
        "echo \"postfix $(postconf -h mail_version) $outcome, compatibility_level $(postconf -h compatibility_level)\"",
    );
}

export function uninstallScript(): string {
    // remove, not purge: the queue, /etc/postfix and delivered mail stay.
    return script(
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get -q -y remove postfix postfix-doc",
        `rm -rf ${shq(PATHS.stateDir)}`,
    );
}

/** Creates missing mail accounts: no password, no login shell. Never deletes one. */
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
