#!/bin/bash
# The last step of every deployment that changed something. Postfix is started when it is down,
# else restarted or reloaded when a file step asked for it (each leaves its request in STATE).
# Then the deploy check: postfix runs, each listen address answers 220 on each port, and a client
# outside the trusted networks cannot relay (relay-probe.sh, the same probe `npm run verify` runs,
# given on standard input). When all pass, one line says what was done and checked. A failed check
# rolls the server back to the last configuration that passed, restarts postfix and checks it
# again, then fails `pulumi up`: every check has its line, and one sentence says what was done.
# Nothing is ever sent.
#
# Usage: service.sh apply STATE CHANGES PORTS AUTH FILES ADDRESS...   stdin: relay-probe.sh
#        service.sh stop                                   (the component is destroyed)
#   STATE    the folder where file steps leave "reload" or "restart"
#   CHANGES  a digest of what the file steps printed: there so that this step runs after any of
#            them ran, and runs again after a failed run of its own (the engine then keeps the
#            digest from before)
#   PORTS    the SMTP ports, space-separated ("25 587")
#   AUTH     dovecot (port 587's logins: Dovecot started when down, reloaded or restarted when
#            its configuration changed, and checked), dovecot+imap (the same, and IMAP answers on
#            143 on every address) or none
#   FILES    the paths of the stack's file steps, space-separated: a pending copy of any other
#            file (its step left the stack, as Dovecot's does with submission off) is dropped
#   ADDRESS  the listen addresses (IPv6 in brackets); PORTS, AUTH and ADDRESS are what the new
#            configuration serves: after a rollback the check reads them from the restored one
set -eu

# Postfix 3.7 (Debian 12) prints errors only to a terminal: script(1) gives it one, so failures say why.
with_terminal() {
    local out
    if ! out=$(script -qec "$*" /dev/null 2>&1); then
        printf '%s\n' "$out" | tr -d '\r' >&2
        return 1
    fi
}
# systemctl under systemd; postfix(1) itself in containers and chroots.
if [ -d /run/systemd/system ]; then
    control() { systemctl "$1" postfix; }
else
    control() {
        case "$1" in
            restart) with_terminal postfix stop && with_terminal postfix start ;;
            *) with_terminal postfix "$1" ;;
        esac
    }
fi
running() { postfix status >/dev/null 2>&1; }

# Dovecot, as the auth service of port 587.
DOVECOT_SOCKET=/var/spool/postfix/private/auth
dovecot_running() { [ -f /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; }
dovecot_control() { # start|reload|restart
    if [ -d /run/systemd/system ]; then
        systemctl "$1" dovecot
    elif [ "$1" = start ]; then
        dovecot
    elif [ "$1" = restart ]; then
        doveadm stop
        # The master leaves its pid file when it has closed its listeners (10 s at most).
        for _ in $(seq 1 50); do dovecot_running || break; sleep 0.2; done
        dovecot
    else
        doveadm reload
    fi
}

if [ "$1" = stop ]; then
    if running; then control stop; fi
    exit 0
fi

state=$2
ports=$4
auth=$5
files=$6
shift 6
# Read before postfix is touched: script(1) would hand standard input to postfix.
probe_script=$(cat)
addresses=("$@")
started_at=$(date +%s%N)

# The rollback's records, kept by write-file.sh in STATE: good/KIND@PATH is a file as it was
# before its first change since the last check that passed (KIND@PATH.absent: it did not exist);
# pending/KIND@PATH is content of the stack that a failed check rolled back, installed again by
# the next run. PATH has its slashes as %.
path_of() { # entry -> /etc/postfix/main.cf
    local entry=${1##*/}
    entry=${entry#*@}
    entry=${entry%.absent}
    printf '%s' "$entry" | tr % /
}
# What postfix reads besides the file itself.
rebuild() { # kind path
    case "$1" in
        aliases) newaliases ;;
        virtual) postmap "hash:$2" ;;
        dovecot-conf) if dovecot_running; then dovecot_control reload </dev/null >/dev/null 2>&1; fi ;;
    esac
}
# Only one script at a time edits main.cf (write-file.sh and relay-probe.sh take the same lock).
lock_main_cf() {
    mkdir -p "$state"
    exec 8>"$state/main-cf.lock"
    flock -w 60 8 || { echo "pulumi-postfix: another pulumi-postfix run or npm run verify holds the main.cf lock: waited 60 s" >&2; exit 1; }
}
unlock_main_cf() { exec 8>&-; }
# A file restored or installed: dated 2 s back, so that postfix reads it at once (see write-file.sh).
put() { # from to
    cp -p "$1" "$2"
    touch -d "@$(($(date +%s) - 2))" "$2"
}

# The stack's content that a failed check rolled back comes back first, to be checked again.
install_pending() {
    local entry kind path
    for entry in "$state"/pending/*@*; do
        [ -e "$entry" ] || continue
        (umask 077; mkdir -p "$state/good")
        kind=${entry##*/}
        kind=${kind%%@*}
        path=$(path_of "$entry")
        # Only for a step still in the stack: the others' content is no longer wanted.
        case " $files " in
            *" $path "*) ;;
            *) rm -f "$entry"; continue ;;
        esac
        if [ ! -e "$state/good/${entry##*/}" ] && [ ! -e "$state/good/${entry##*/}.absent" ]; then
            if [ -f "$path" ]; then cp -p "$path" "$state/good/${entry##*/}"; else : >"$state/good/${entry##*/}.absent"; fi
        fi
        put "$entry" "$path"
        rm -f "$entry"
        rebuild "$kind" "$path"
        touch "$state/restart"
        reinstalled="${reinstalled:+$reinstalled, }$path"
    done
}

# Every file changed since the last check that passed goes back to what it was; the stack's
# content goes to pending/, for the next run to try again.
roll_back() {
    local entry name kind path
    for entry in "$state"/good/*@*; do
        [ -e "$entry" ] || continue
        (umask 077; mkdir -p "$state/pending")
        name=${entry##*/}
        name=${name%.absent}
        kind=${name%%@*}
        path=$(path_of "$entry")
        if [ -f "$path" ]; then mv -f "$path" "$state/pending/$name"; fi
        case "$entry" in
            *.absent) rm -f "$path" ;;
            *) put "$entry" "$path" ;;
        esac
        rm -f "$entry"
        rebuild "$kind" "$path" || true
        restored="${restored:+$restored, }$path"
    done
}

# What the restored configuration serves, for the check after a rollback: its listen addresses
# (when main.cf lists addresses; "all" or a name keeps the new ones, which it covers) and port 587
# with Dovecot only when its master.cf has the submission service.
restored_endpoints() {
    local value item items listed=()
    value=$(postconf -h inet_interfaces 2>/dev/null) || return 0
    IFS=', ' read -r -a items <<<"$value"
    for item in "${items[@]}"; do
        case "$item" in
            '') ;;
            \[*\]|[0-9]*.*[0-9]) listed+=("$item") ;;
            *) listed=(); break ;;
        esac
    done
    if [ "${#listed[@]}" -gt 0 ]; then addresses=("${listed[@]}"); fi
    local port kept=""
    for port in $ports; do [ "$port" = 587 ] || kept="$kept $port"; done
    if [ -n "$(postconf -M submission/inet 2>/dev/null)" ]; then
        ports="${kept# } 587" auth=dovecot
        # IMAP is the stack's only when its own restored Dovecot file serves it (an admin's IMAP is not ours to check).
        local path
        for path in $files; do
            case "$path" in /etc/dovecot/*) if grep -qs '^service imap-login' "$path"; then auth=dovecot+imap; fi ;; esac
        done
    else
        ports=${kept# } auth=none
    fi
}

# Postfix started when down, else as asked; a failure is a failed check, not the end.
apply() { # restart|reload|start
    local out
    if [ "$1" != start ] && ! running; then set -- start; fi
    if out=$(control "$1" 2>&1); then return 0; fi
    report FAIL "postfix $1 failed: $(printf '%s' "$out" | tr '\n' ' ')"
    return 1
}
# Dovecot started when down, reloaded when its configuration changed; a failure is a failed check.
apply_dovecot() {
    local verb="" out
    if ! dovecot_running; then verb=start; elif [ -e "$state/dovecot-restart" ]; then verb=restart; elif [ -e "$state/dovecot-reload" ]; then verb=reload; fi
    [ -n "$verb" ] || return 0
    # Into a file, not a pipe: the daemon Dovecot leaves behind would hold a pipe open for ever.
    out=$(mktemp)
    if dovecot_control "$verb" </dev/null >"$out" 2>&1; then
        rm -f "$out"
        dovecot_action=" (dovecot ${verb}ed)"
        # A reload restarts Dovecot's auth service: each running smtpd would lose its connection
        # to it and fail its next login once. A postfix reload replaces them after their session.
        if [ "$verb" != start ] && [ "$action" != restarted ] && [ "$action" != started ]; then control reload >/dev/null 2>&1 || true; fi
        return 0
    fi
    report FAIL "dovecot $verb failed: $(tr '\n' ' ' <"$out")"
    rm -f "$out"
    return 1
}

failures=0
lines=""
report() { # ok|FAIL, what
    lines="$lines$1 $2"$'\n'
    if [ "$1" != ok ]; then failures=$((failures + 1)); fi
}
reply() { # the last line of the next SMTP reply (10 s at most)
    local line
    while IFS= read -r -t 10 line <&3; do
        line=${line%$'\r'}
        case "$line" in [0-9][0-9][0-9]-*) ;; *) echo "$line"; return 0 ;; esac
    done
    echo 'no reply'
}

# IMAP's greeting on 143 (10 s at most), then LOGOUT.
imap_banner() { # host
    local line
    exec 4<>"/dev/tcp/$1/143" || return 0
    IFS= read -r -t 10 line <&4 || line=""
    printf 'a LOGOUT\r\n' >&4 || true
    exec 4>&- 4<&-
    printf '%s' "${line%$'\r'}"
}

# The deploy check: postfix runs, 220 on every address and port, and no relay for an outsider.
check() {
    local address host port banner probe xclient rcpt before after status why errors service rule
    answered=""
    if running; then report ok 'postfix is running'; else report FAIL 'postfix is not running'; fi
    if [ "$auth" != none ]; then
        # smtpd reaches Dovecot through its socket, a moment after Dovecot starts.
        for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$DOVECOT_SOCKET" ] && break; sleep 0.5; done
        if dovecot_running && [ -S "$DOVECOT_SOCKET" ]; then
            report ok "dovecot is running and listens on $DOVECOT_SOCKET"
            auth_checked="dovecot auth listening, "
        else
            report FAIL "dovecot (the logins of port 587) is not running or not listening on $DOVECOT_SOCKET"
        fi
    fi
    # Port 587's From: rule answers as Postfix will ask it, when the live master.cf has it.
    service=$(postconf -M pulumi-sender-check/unix 2>/dev/null || true)
    if [ -n "$service" ]; then
        if rule=$(python3 "${service##* }" probe "$(postconf -h queue_directory)/private/pulumi-sender-check" 2>&1); then
            report ok "port 587's From: rule refuses a From: the login does not own: $rule"
            auth_checked="${auth_checked:-}From: rule answering, "
        else
            report FAIL "port 587's From: rule (${service##* }) did not answer as it should: $(printf '%s' "$rule" | tr '\n' ' ')"
        fi
    fi
    for address in "${addresses[@]}"; do
        host=${address#[}
        host=${host%]}
        for port in $ports; do
            if ! exec 3<>"/dev/tcp/$host/$port"; then
                report FAIL "$address:$port does not answer"
                continue
            fi
            banner=$(reply)
            case "$banner" in 220*) report ok "$address:$port answers: $banner" ;; *) report FAIL "$address:$port answers: $banner" ;; esac
            answered="${answered:+$answered, }$address:$port"
            printf 'QUIT\r\n' >&3
            reply >/dev/null
            exec 3>&- 3<&-
        done
    done
    if [ "$auth" = dovecot+imap ]; then
        for address in "${addresses[@]}"; do
            host=${address#[}
            host=${host%]}
            banner=$(imap_banner "$host")
            case "$banner" in
                "* OK "*) report ok "$address:143 answers: ${banner%% \[*} (IMAP)"; answered="${answered:+$answered, }$address:143" ;;
                *) report FAIL "$address:143 (IMAP) answers: ${banner:-nothing}" ;;
            esac
        done
    fi
    errors=$(mktemp)
    if probe=$(bash -c "$probe_script" relay-probe "${addresses[0]}" 2>"$errors"); then
        value() { printf '%s\n' "$probe" | sed -n "s/^$1=//p"; }
        xclient=$(value xclient)
        rcpt=$(value rcpt)
        case "$xclient|$rcpt" in
            # 4xx too: Debian's own main.cf (restored after a failed first deployment) defers instead of refusing.
            220*'|5'* | 220*'|4'*) report ok "an outside client cannot relay: $rcpt"; refusal=${rcpt%% *} ;;
            220*) report FAIL "OPEN RELAY: an outside client got '$rcpt' for an outside recipient" ;;
            *) report FAIL "could not pose as an outside client (XCLIENT answered '$xclient')" ;;
        esac
        read -r before after <<<"$(value main_cf)"
        if [ -z "$before" ] || [ "$before" != "$after" ]; then report FAIL "main.cf was not restored after the relay probe"; fi
        if [ -n "$(value left)" ]; then report FAIL "the relay probe could not withdraw XCLIENT: $(value left)"; fi
    else
        status=$?
        why=$(tr '\n' ' ' <"$errors")
        report FAIL "relay probe: ${why:-it exited $status with no message}"
    fi
    rm -f "$errors"
}

lock_main_cf
install_pending
unlock_main_cf
if ! running; then
    verb=start action=started
elif [ -e "$state/restart" ]; then
    verb=restart action=restarted
elif [ -e "$state/reload" ]; then
    verb=reload action=reloaded
else
    verb="" action="left running (no reload needed)"
fi
if { [ -z "$verb" ] || apply "$verb"; } && { [ "$auth" = none ] || apply_dovecot; }; then check; fi
if [ "$failures" -eq 0 ]; then
    rm -rf "$state/restart" "$state/reload" "$state/dovecot-reload" "$state/dovecot-restart" "$state/good" "$state/pending"
    echo "postfix $action${dovecot_action:-}${reinstalled:+ (again with $reinstalled)}; checks passed: postfix running, ${auth_checked:-}220 on ${answered:-}, relay refused ($refusal)"
    exit 0
fi

# Failed: back to the last configuration that passed, checked again. The stack's configuration is
# kept in pending/ (and this step fails, so the engine runs it again next time): the state never
# says the rejected configuration is live, and the next pulumi up tries it again.
printf '%s' "$lines"
failed=$failures
lock_main_cf
roll_back
unlock_main_cf
if [ -z "${restored:-}" ]; then
    echo "pulumi-postfix: the server failed $failed check(s) after the deployment (above); no file had changed since the last check that passed, so there is nothing to roll back" >&2
    exit 1
fi
rm -f "$state/restart" "$state/reload" "$state/dovecot-reload" "$state/dovecot-restart"
restored_endpoints
failures=0 lines=""
if apply restart && { [ "$auth" = none ] || apply_dovecot; }; then check; fi
live_ms=$((($(date +%s%N) - started_at) / 1000000))
if [ "$failures" -eq 0 ]; then
    echo "rolled back at $(date -u '+%H:%M:%S') UTC, $live_ms ms after the service step started: restored $restored; checks passed again"
    echo "pulumi-postfix: the server failed $failed check(s) after the deployment (above), so it was rolled back to the last configuration that passed, which passes again. Fix the stack and run pulumi up again" >&2
    exit 1
fi
printf 'after the rollback:\n%s' "$lines"
echo "pulumi-postfix: the server failed $failed check(s) after the deployment, and the configuration from before it, restored ($restored), fails too (above): the host changed on its own? Nothing more is rolled back; fix the host, then pulumi up" >&2
exit 1
