#!/bin/sh
# The install step: the packages once, debconf answered from standard input, then the missing
# mail users (no password, no login shell; never deletes one). What every file step needs on the
# host, in one SSH session. Prints one line per user created, then one line that says what the
# host runs; apt's own output only when it fails. The packages it installed (not those the host
# already had) are listed in STATE/installed-packages, and with what apt installed for them in
# STATE/installed-with: `remove` removes the first only, and keeps one that a package outside the
# second needs.
#
# Usage: install.sh install LOCK_TIMEOUT STATE PACKAGES [USERS]   stdin: debconf answers
#        install.sh remove STATE                                (the component is destroyed)
#   LOCK_TIMEOUT  seconds to wait for another apt run's dpkg lock (aptLockTimeoutSeconds)
#   PACKAGES      the packages, space-separated; USERS the mail users, space-separated
#   STATE         the folder where file steps leave reload requests
set -eu
export DEBIAN_FRONTEND=noninteractive
# Package and user names are validated words: split on spaces, never globbed.
set -f

installed() { # the packages
    # shellcheck disable=SC2016 # dpkg-query expands ${Status} itself
    [ "$(dpkg-query -W -f '${Status}\n' "$@" 2>/dev/null | grep -c '^install ok installed$')" = $# ]
}

if [ "$1" = remove ]; then
    state=$2
    ours="" with=""
    if [ -f "$state/installed-packages" ]; then ours=$(tr '\n' ' ' <"$state/installed-packages"); fi
    if [ -f "$state/installed-with" ]; then with=$(tr '\n' ' ' <"$state/installed-with"); fi
    remove=""
    for package in $ours; do
        installed "$package" || continue
        # Kept when removing it would take a package the component did not install (dovecot-imapd
        # the admin added needs dovecot-core).
        others=$(apt-get -s remove "$package" 2>/dev/null | sed -n 's/^Remv \([^ ]*\) .*/\1/p' | while read -r taken; do
            case " $ours $with " in *" $taken "*) ;; *) echo "$taken" ;; esac
        done)
        if [ -n "$others" ]; then
            echo "kept $package: $(printf '%s' "$others" | tr '\n' ' ')needs it"
        else
            remove="$remove $package"
        fi
    done
    case " $remove " in
        *" dovecot-core "*) if [ ! -d /run/systemd/system ] && command -v doveadm >/dev/null; then doveadm stop 2>/dev/null || true; fi ;;
    esac
    if [ -n "$remove" ]; then
        # remove, not purge: the queue, /etc/postfix and delivered mail stay.
        # shellcheck disable=SC2086 # one word per package
        apt-get -q -y remove $remove
    fi
    rm -rf "$state"
    exit 0
fi

lock=$2
state=$3
packages=$4
users=${5:-}
# shellcheck disable=SC2086 # one word per package
set -- $packages

log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt_install() { # the packages
    if apt-get -q -y -o DPkg::Lock::Timeout="$lock" install "$@" >"$log" 2>&1; then return 0; fi
    cat "$log" >&2
    return 1
}
apt_update() {
    if apt-get -q -o DPkg::Lock::Timeout="$lock" update >"$log" 2>&1; then return 0; fi
    cat "$log" >&2
    return 1
}
# A run cut short (apt killed with the connection, a reboot) leaves dpkg "interrupted": every
# apt-get refuses to run until dpkg --configure -a. dpkg does not wait for its lock itself: while
# another apt run holds it (that run is then what dpkg --audit sees), retry up to the same bound.
# A cut in the middle of an unpack also leaves that package half-installed, which no configure
# repairs: apt installs it again (from its cache, else the mirror), then dpkg configures the rest.
configure_all() { # sets out
    deadline=$(($(date +%s) + lock))
    until out=$(LC_ALL=C dpkg --configure -a </dev/null 2>&1); do
        case "$out" in *lock*locked*) ;; *) return 1 ;; esac
        if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
        sleep 1
    done
}
half_installed() { # the packages dpkg must unpack again, one line
    # shellcheck disable=SC2016 # dpkg-query expands the fields itself
    dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\n' 2>/dev/null | awk 'substr($1, 2, 1) == "H" || substr($1, 3, 1) == "R" { print $2 }' | tr '\n' ' '
}
repair_dpkg() {
    [ -n "$(dpkg --audit 2>/dev/null)" ] || return 0
    if ! configure_all; then
        broken=$(half_installed)
        if [ -z "$broken" ]; then printf '%s\n' "$out" >&2; return 1; fi
        # shellcheck disable=SC2086 # one word per package
        if ! apt-get -q -y -o DPkg::Lock::Timeout="$lock" install --reinstall $broken >"$log" 2>&1; then
            printf '%s\n' "$out" >&2
            cat "$log" >&2
            return 1
        fi
        echo "reinstalled what an interrupted dpkg left half-installed: $broken"
        if ! configure_all; then printf '%s\n' "$out" >&2; return 1; fi
    fi
    printf '%s\n' "$out"
}

# Every installed package, one name a line, sorted.
installed_list() {
    # shellcheck disable=SC2016 # dpkg-query expands ${Status} itself
    dpkg-query -W -f '${Status} ${Package}\n' 2>/dev/null | sed -n 's/^install ok installed //p' | sort
}

outcome="already installed"
if ! installed "$@"; then
    had=$(mktemp)
    installed_list >"$had"
    missing=""
    for package in "$@"; do installed "$package" || missing="$missing $package"; done
    # Before debconf-set-selections: a running postinst holds the debconf database too.
    if ! repair_dpkg; then
        echo "pulumi-postfix: dpkg was interrupted and dpkg --configure -a failed (above; waited up to ${lock}s for the dpkg lock)" >&2
        exit 1
    fi
    debconf-set-selections
    # Another failure is most often stale package lists: refresh once, then try again. Not after a
    # lock timeout: the bound is the user's, and a refresh would wait for the same lock again.
    if ! apt_install "$@" && { grep -Eq "^E: .*lock" "$log" || ! { apt_update && apt_install "$@"; }; }; then
        echo "pulumi-postfix: could not install postfix (apt waited up to ${lock}s for the dpkg lock; see its message above)" >&2
        exit 1
    fi
    # A wait for another apt run is worth a line: it says why the step took longer.
    waited=$(tr '\r' '\n' <"$log" | grep -m1 -o 'Could not get lock .* It is held by process [0-9]* ([^)]*)' || true)
    if [ -n "$waited" ]; then echo "apt waited for the dpkg lock: $waited"; fi
    count=$(sed -n 's/.* \([0-9]*\) newly installed.*/\1/p' "$log")
    removed=$(sed -n 's/^Removing \([^ ]*\) .*/\1/p' "$log" | sort -u | tr '\n' ' ')
    outcome="installed (${count:-0} packages${removed:+; removed ${removed% }})"
    mkdir -p "$state"
    # shellcheck disable=SC2086 # one word per package
    printf '%s\n' $missing >>"$state/installed-packages"
    installed_list | comm -13 "$had" - >>"$state/installed-with"
    rm -f "$had"
fi

for user in $users; do
    if ! id -u "$user" >/dev/null 2>&1; then
        useradd --create-home --shell /usr/sbin/nologin --comment 'mail user (pulumi-postfix)' "$user"
        echo "created user $user"
    fi
done

# One line for the display; parseHostFacts reads the version and compatibility level from it, and
# Dovecot's version (port 587's auth service), whose configuration differs between 2.3 and 2.4.
postfix_version=$(postconf -h mail_version)
dovecot_version=""
if command -v dovecot >/dev/null; then dovecot_version=$(dovecot --version | cut -d ' ' -f 1); fi
echo "postfix $postfix_version $outcome, compatibility_level $(postconf -h compatibility_level)"
if [ -n "$dovecot_version" ]; then echo "dovecot $dovecot_version"; fi
# The versions this deployment rendered for, for a refresh to compare with what runs later (an
# admin's upgrade to the next Debian: the install step then runs again and prints the new ones).
mkdir -p "$state"
{ echo "postfix $postfix_version"; if [ -n "$dovecot_version" ]; then echo "dovecot $dovecot_version"; fi; } >"$state/deployed-versions"
