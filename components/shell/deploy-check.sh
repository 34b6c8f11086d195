#!/bin/bash
# The deploy check, the last step of every deployment that changed something: postfix runs, each
# listen address answers 220 on each port, and a client outside the trusted networks cannot
# relay (relay-probe.sh, the same probe `npm run verify` runs, given on standard input). Any
# failure fails `pulumi up`: then every check has its line; when all pass, one line says so.
# Nothing is ever sent.
#
# Usage: deploy-check.sh RUN PORTS ADDRESS...   stdin: relay-probe.sh
#   RUN    what the service step printed: only there so that this step runs after every run of it
#   PORTS  the SMTP ports, space-separated ("25 587")
set -eu

shift # RUN
ports=$1
shift
probe_script=$(cat)
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
    report FAIL "relay probe: $(tr '\n' ' ' <"$errors")"
fi

if [ "$failures" -gt 0 ]; then
    printf '%s' "$lines"
    echo "pulumi-postfix: the server failed $failures check(s) after the deployment (above)" >&2
    exit 1
fi
echo "checks passed: postfix running, 220 on ${answered:-}, relay refused ($refusal)"
