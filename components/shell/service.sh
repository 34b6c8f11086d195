#!/bin/bash
# The last step of every deployment that changed something. Postfix is started when it is down,
# else restarted or reloaded when a file step asked for it (each leaves its request in STATE).
# Then the deploy check: postfix runs, each listen address answers 220 on each port, and a client
# outside the trusted networks cannot relay (relay-probe.sh, the same probe `npm run verify` runs,
# given on standard input). A failed check fails `pulumi up`: then every check has its line; when
# all pass, one line says what was done and checked. Nothing is ever sent.
#
# Usage: service.sh apply STATE CHANGES PORTS ADDRESS...   stdin: relay-probe.sh
#        service.sh stop                                   (the component is destroyed)
#   STATE    the folder where file steps leave "reload" or "restart"
#   CHANGES  a digest of what the file steps printed: there so that this step runs after any of
#            them ran, and runs again after a failed run of its own (the engine then keeps the
#            digest from before)
#   PORTS    the SMTP ports, space-separated ("25 587")
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

if [ "$1" = stop ]; then
    if running; then control stop; fi
    exit 0
fi

state=$2
ports=$4
shift 4
# Read before postfix is touched: script(1) would hand standard input to postfix.
probe_script=$(cat)
if ! running; then
    control start
    action=started
elif [ -e "$state/restart" ]; then
    control restart
    action=restarted
elif [ -e "$state/reload" ]; then
    control reload
    action=reloaded
else
    action="left running (no reload needed)"
fi
rm -f "$state/restart" "$state/reload"

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

if postfix status >/dev/null 2>&1; then report ok 'postfix is running'; else report FAIL 'postfix is not running'; fi
for address in "$@"; do
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

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
if probe=$(bash -c "$probe_script" relay-probe "$1" 2>"$errors"); then
    value() { printf '%s\n' "$probe" | sed -n "s/^$1=//p"; }
    xclient=$(value xclient)
    rcpt=$(value rcpt)
    case "$xclient|$rcpt" in
        220*'|5'*) report ok "an outside client cannot relay: $rcpt"; refusal=${rcpt%% *} ;;
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

if [ "$failures" -gt 0 ]; then
    printf '%s' "$lines"
    echo "pulumi-postfix: the server failed $failures check(s) after the deployment (above)" >&2
    exit 1
fi
echo "postfix $action; checks passed: postfix running, 220 on ${answered:-}, relay refused ($refusal)"
