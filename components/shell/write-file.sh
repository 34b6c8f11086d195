#!/bin/sh
# The one "write this file if it differs" mechanism, for every file the component owns. The
# content arrives on standard input; when it differs from the live file, it is checked as its
# kind asks, the old file is kept as PATH.previous (not for a 0600 secret), the new one is renamed
# into place (atomic), and a reload (or restart) is requested from the service step, which
# follows the one line this prints.
#
# The first time the component writes PATH, the file found there (the admin's, such as the guide's
# certificate) is kept in STATE/original/, whatever its kind; `remove` puts it back, or removes the
# file when there was none.
#
# Usage: write-file.sh write KIND PATH MODE STATE [ALIAS...]   stdin: the content
#        write-file.sh remove KIND PATH STATE                 (the component is destroyed)
#   KIND   plain; main-cf (postfix check of a staged copy; a listener change asks for a restart);
#          master-cf (stdin: our services, applied to a copy of the live master.cf, then checked);
#          aliases, virtual (every local target must be a user, or an alias: ALIAS... are the
#          alias names, as /etc/aliases is written beside the virtual map); sasl-passwd (postfix
#          reads it at each delivery: no reload); dovecot-conf (a conf.d file: doveconf reads a
#          staged copy of the whole configuration with it; asks for a Dovecot reload, or a restart
#          when the listen addresses change); mail-passwords (hashes, group dovecot; Dovecot reads the
#          file again at the next login: no reload)
#   MODE   0644, 0640 or 0600
#   STATE  the folder where the service step finds the reload and restart requests, and the
#          records it rolls back with (good/, pending/)
set -eu
# Targets are split on spaces and commas, never globbed.
set -f

# Where the file found before the component's first write is kept: PATH with its slashes as %.
original_of() { # state path
    printf '%s/original/%s' "$1" "$(printf '%s' "$2" | tr / %)"
}
# A running Dovecot reads its configuration, and the files it names, again (the admin's IMAP
# serves the restored certificate, or loses the component's additions).
reload_dovecot() { # path
    [ -f /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null || return 0
    case "$1" in /etc/dovecot/*) ;; *) doveconf -n 2>/dev/null | grep -qF "$1" || return 0 ;; esac
    doveadm reload </dev/null >/dev/null 2>&1 || true
}

if [ "$1" = remove ]; then
    kind=$2
    dest=$3
    kept=$(original_of "$4" "$dest")
    rm -f "$dest.previous" "$dest.db"
    if [ -f "$kept" ]; then
        cp -p "$kept" "$dest"
        echo "restored: $dest (as it was before the component)"
    else
        rm -f "$dest"
    fi
    case "$kind" in dovecot-conf | plain) reload_dovecot "$dest" ;; esac
    # The component's own folder goes when its last file does.
    case "$dest" in /usr/local/lib/pulumi-postfix/*) rmdir "${dest%/*}" 2>/dev/null || true ;; esac
    exit 0
fi
kind=$2
dest=$3
mode=$4
state=$5
shift 5

# Postfix 3.7 (Debian 12) prints errors only to a terminal: script(1) gives it one, so failures say why.
with_terminal() {
    if ! out=$(script -qec "$*" /dev/null 2>&1); then
        printf '%s\n' "$out" | tr -d '\r' >&2
        return 1
    fi
}
refuse() { # why
    echo "pulumi-postfix: $1" >&2
    exit 1
}
# One lock for main.cf, the same relay-probe.sh takes: a probe's change and restore never
# interleave with this compare, check and rename. Held until exit.
lock_main_cf() {
    lock=/var/lib/pulumi-postfix/main-cf.lock
    lock_wait=60
    mkdir -p "${lock%/*}"
    exec 9>"$lock"
    flock -w "$lock_wait" 9 || refuse "another pulumi-postfix run or npm run verify holds the main.cf lock: waited $lock_wait s"
}

# Our services (renderMasterServices) are applied to a copy of the live master.cf: Debian's own
# entries stay as the release ships them, and ours are exactly what stdin says.
produce_master_cf() {
    spec=$(cat)
    cp -p /etc/postfix/main.cf "$stage/main.cf"
    cp -p "$dest" "$stage/master.cf"
    postconf -c "$stage" -MX submission/inet pulumi-sender-check/unix
    printf '%s\n' "$spec" | while IFS= read -r line; do
        case "$line" in
            "") ;;
            "service "*) postconf -c "$stage" -M "${line#service }" ;;
            "parameter "*) postconf -c "$stage" -P "${line#parameter }" ;;
            *) refuse "unexpected master.cf line: $line" ;;
        esac
    done
    cp "$stage/master.cf" "$new"
}

check_main_cf() {
    cp -p /etc/postfix/master.cf "$stage/master.cf"
    cp -p "$new" "$stage/main.cf"
    with_terminal postfix -c "$stage" check || refuse "postfix refused the new main.cf (above); the live configuration is unchanged"
    # Listener changes need a stop and start: a reload keeps the old sockets.
    if [ "$(postconf -c /etc/postfix -h inet_interfaces inet_protocols 2>/dev/null || true)" != "$(postconf -c "$stage" -h inet_interfaces inet_protocols)" ]; then
        effect=restart
    fi
}

# Mail to an alias whose user does not exist is accepted, then bounced: refuse such a file.
check_targets() { # the targets of the candidate file, one list; the alias names are in $aliases
    missing=""
    for target in $(tr ',' ' '); do
        case "$target" in *@*) continue ;; esac
        case " $aliases " in *" $target "*) continue ;; esac
        if ! getent passwd "$target" >/dev/null; then missing="$missing $target"; fi
    done
    [ -z "$missing" ] || refuse "$dest points to users that do not exist on the host:$missing (add them to mailUsers)"
}

# The whole Dovecot configuration as it will be, staged: the live one with the new conf.d file, and
# Debian's dovecot.conf back in place of a whole file an earlier version of the component wrote
# there (which included no conf.d, so none of the admin's settings).
stage_dovecot_conf() {
    main=/etc/dovecot/dovecot.conf
    cp -a /etc/dovecot "$stage/dovecot"
    cp -p "$new" "$stage/dovecot/conf.d/${dest##*/}"
    debian_main=""
    if head -n 1 "$main" 2>/dev/null | grep -q '^# Managed by pulumi-postfix'; then
        debian_main=$stage/debian-dovecot.conf
        if [ -f /usr/share/dovecot/dovecot.conf ]; then
            cp /usr/share/dovecot/dovecot.conf "$debian_main"
        elif [ -f "$main.previous" ] && ! head -n 1 "$main.previous" | grep -q '^# Managed by pulumi-postfix'; then
            cp "$main.previous" "$debian_main"
        else
            # Debian 12's dovecot.conf without its comments.
            printf '%s\n' '!include_try /usr/share/dovecot/protocols.d/*.protocol' 'dict {' '}' \
                '!include conf.d/*.conf' '!include_try local.conf' >"$debian_main"
        fi
        cp "$debian_main" "$stage/dovecot/dovecot.conf"
    fi
}

dir=$(dirname "$dest")
if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    if [ "$mode" = 0600 ]; then chmod 0700 "$dir"; else chmod 0755 "$dir"; fi
fi
new=$(mktemp "$dest.XXXXXX")
stage=$(mktemp -d)
trap 'rm -rf "$new" "$stage"' EXIT
if [ "$kind" = master-cf ]; then produce_master_cf; else cat >"$new"; fi
# Postfix re-reads a main.cf changed less than 2 s ago until it is that old (an editor may still
# be writing it): this file is complete before it is checked or renamed into place, so it is
# dated 2 s back, and postfix check and the reload read it at once.
touch -d "@$(($(date +%s) - 2))" "$new"
if [ "$kind" = main-cf ]; then lock_main_cf; fi
# The rollback's records (see service.sh): good/ keeps each file as it was before its first change
# since the last deploy check that passed; pending/ keeps what a failed check rolled back. Either
# way, once this content is live, a pending copy of this file is stale. The credentials are not
# part of it: no check depends on them and nothing reloads for them.
entry="$kind@$(printf '%s' "$dest" | tr / %)"
rm -f "$state/pending/$entry"
kept=$(original_of "$state" "$dest")
if [ ! -e "$kept" ] && [ ! -e "$kept.absent" ]; then
    (umask 077; mkdir -p "$state/original")
    if [ -f "$dest" ]; then cp -p "$dest" "$kept"; else : >"$kept.absent"; fi
fi
if [ "$kind" = mail-passwords ]; then owner=root:dovecot; else owner=root:root; fi
if [ -f "$dest" ] && cmp -s "$new" "$dest"; then
    if [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ]; then
        echo "unchanged: $dest"
        exit 0
    fi
    # The content is right and only its mode or owner drifted (a key made readable by all): set
    # them back in place. Nothing reads the file's mode again, so nothing reloads.
    chmod "$mode" "$dest"
    chown "$owner" "$dest"
    echo "changed: $dest (mode $mode, owner $owner set again) at $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    exit 0
fi

effect=reload
case "$kind" in
    main-cf) check_main_cf ;;
    master-cf) with_terminal postfix -c "$stage" check || refuse "postfix refused the new master.cf (above); the live configuration is unchanged" ;;
    aliases)
        aliases=$(sed -n 's/^\([^#][^:]*\):.*/\1/p' "$new" | tr '\n' ' ')
        sed -n 's/^[^#][^:]*:[[:space:]]*//p' "$new" | check_targets ;;
    virtual)
        aliases="$*"
        sed -n 's/^[^#][^[:space:]]*[[:space:]]*//p' "$new" | check_targets ;;
    dovecot-conf)
        effect=dovecot-reload
        stage_dovecot_conf
        if ! out=$(doveconf -c "$stage/dovecot/dovecot.conf" -n 2>&1 >/dev/null); then
            printf '%s\n' "$out" >&2
            refuse "Dovecot refused the configuration with the new $dest (above); the live configuration is unchanged"
        fi
        # New listen addresses need a stop and start: a reload keeps the old sockets.
        if [ "$(doveconf -h listen 2>/dev/null || true)" != "$(doveconf -c "$stage/dovecot/dovecot.conf" -h listen)" ]; then
            effect=dovecot-restart
        fi ;;
esac
chmod "$mode" "$new"
chown "$owner" "$new"
# Credentials are not rolled back (see above).
if [ "$kind" != sasl-passwd ] && [ "$kind" != mail-passwords ]; then
    (umask 077; mkdir -p "$state/good")
    if [ ! -e "$state/good/$entry" ] && [ ! -e "$state/good/$entry.absent" ]; then
        if [ -f "$dest" ]; then cp -p "$dest" "$state/good/$entry"; else : >"$state/good/$entry.absent"; fi
    fi
fi
# Dovecot reads the password file again when its time (whole seconds) or its size changed, and a
# user's new hash has the old one's size: the new file gets a time the old one does not have. (A
# reload would cut the auth connection of every running smtpd: the next login would fail once.)
if [ "$kind" = mail-passwords ] && [ -f "$dest" ]; then
    while [ "$(date +%s)" -le "$(stat -c %Y "$dest")" ]; do sleep 0.2; done
    touch "$new"
fi
# Secrets and password hashes leave no old copy behind.
if [ "$mode" = 0644 ] && [ -f "$dest" ]; then cp -p "$dest" "$dest.previous"; fi
mv -f "$new" "$dest"
if [ "$kind" = dovecot-conf ] && [ -n "$debian_main" ]; then
    chmod 0644 "$debian_main"
    mv -f "$debian_main" "$main"
    echo "restored Debian's $main (it includes conf.d/ again)"
fi

case "$kind" in
    aliases) newaliases ;;
    # Lookup tables: postmap builds the database. A reload makes the new map count from the next
    # connection on. (Rebuilt in place: no moment without the map for mail being received.)
    virtual) postmap "hash:$dest" ;;
    # The credentials' database is built new under umask 077: postmap would rewrite an old one in
    # place, keeping its mode, and a hand-made 0644 one would hold the new password world-readable.
    # The SMTP client reads the map at each delivery; the flush retries what a wrong password held.
    sasl-passwd)
        rm -f "$dest.db"
        (umask 077; postmap "hash:$dest")
        chmod 0600 "$dest.db"
        postqueue -f 2>/dev/null || true
        echo "changed: $dest"
        exit 0 ;;
    # Dovecot reads the file again at the next login (see above): nothing reloads.
    mail-passwords)
        echo "changed: $dest"
        exit 0 ;;
esac
mkdir -p "$state"
touch "$state/$effect"
# The time makes each run's line its own: the service step follows these lines, so it runs again
# even when a file goes back to what it was before a failed run.
echo "changed: $dest ($effect requested) at $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
