#!/bin/bash
# The relay probe: can a client outside the trusted networks relay through this server? Run as
# root on the server, by both the deployment's check and `npm run verify`.
#
# The probe connects from the server itself to ADDRESS port 25 and poses as an outside client
# (192.0.2.1, TEST-NET-1) with XCLIENT, which postfix allows only for the hosts it names in
# smtpd_authorized_xclient_hosts: this server's own ADDRESS and 127.0.0.1, and only for the
# moment of the probe (the EXIT trap withdraws it, even when the connection is cut). It asks to
# relay to an address under .invalid and quits after RCPT: nothing is ever sent.
#
# Usage: relay-probe.sh ADDRESS   (bash: SMTP over /dev/tcp)
# Prints key=value lines:
#   xclient=<XCLIENT reply>  rcpt=<RCPT reply (MAIL's when that refused), or "(not asked)">
#   main_cf=<sha256 before> <sha256 after>   (the trap's report: main.cf byte-identical again?)
#   left=<line>      only when the XCLIENT permission is still in main.cf
#   reload=failed    only when postfix could not reload after the permission was withdrawn
# Exits 1 with the reason on stderr when it cannot probe (postfix down, XCLIENT set by the user,
# main.cf locked by another run for more than 60 s).
set -eu

address=$1
# The bare address for /dev/tcp; in a Postfix host list an IPv6 address goes in brackets, or its
# colons make it read as a lookup table (type:name).
host=${address#[}
host=${host%]}
case "$host" in *:*) listed="[$host]" ;; *) listed=$host ;; esac
param=smtpd_authorized_xclient_hosts
main_cf=/etc/postfix/main.cf

if ! postfix status >/dev/null 2>&1; then
    echo "postfix is not running" >&2
    exit 1
fi
# One lock for main.cf, the same write-file.sh takes: from here to the end of the restore, no
# deployment writes main.cf and no other probe (npm run verify) changes it. Held until exit.
lock=/var/lib/pulumi-postfix/main-cf.lock
lock_wait=60
mkdir -p "${lock%/*}"
exec 9>"$lock"
if ! flock -w "$lock_wait" 9; then
    echo "another pulumi-postfix run or npm run verify holds the main.cf lock: waited $lock_wait s" >&2
    exit 1
fi
if postconf -n | grep -q "^$param ="; then
    echo "$param is set in main.cf: the relay probe will not touch it" >&2
    exit 1
fi

# Postfix re-reads a main.cf changed less than 2 s ago until it is that old (an editor may still
# be writing it). postconf renames its complete file into place, so it is dated 2 s back and the
# reload reads it at once.
settle() { touch -d "@$(($(date +%s) - 2))" "$main_cf"; }
main_cf_sha256() { sha256sum <"$main_cf" | cut -d' ' -f1; }
before=$(main_cf_sha256)
restore() {
    postconf -X "$param"
    settle
    postfix reload >/dev/null 2>&1 || echo "reload=failed"
    echo "main_cf=$before $(main_cf_sha256)"
    postconf -n | sed -n "/^$param =/s/^/left=/p"
}
trap restore EXIT
trap 'exit 1' HUP INT TERM
postconf -e "$param=$listed 127.0.0.1"
settle
if ! postfix reload >/dev/null 2>&1; then
    echo "postfix reload failed once $param allowed the probe (the mail log says why)" >&2
    exit 1
fi

reply() { # the last line of the next SMTP reply (10 s at most)
    local line
    while IFS= read -r -t 10 line <&3; do
        line=${line%$'\r'}
        case "$line" in [0-9][0-9][0-9]-*) ;; *) echo "$line"; return 0 ;; esac
    done
    echo "no reply"
}
say() { printf '%s\r\n' "$1" >&3; }
probe() { # prints "xclient|rcpt"
    local xclient rcpt='(not asked)'
    if ! exec 3<>"/dev/tcp/$host/25"; then
        echo "no connection to $host port 25|$rcpt"
        return 0
    fi
    reply >/dev/null
    say 'EHLO relay-check.invalid'; reply >/dev/null
    say 'XCLIENT ADDR=192.0.2.1 NAME=relay-check.invalid'; xclient=$(reply)
    case "$xclient" in 220*)
        say 'EHLO relay-check.invalid'; reply >/dev/null
        say 'MAIL FROM:<probe@relay-check.invalid>'; rcpt=$(reply)
        case "$rcpt" in 5*) ;; *) say 'RCPT TO:<probe@relay-check.invalid>'; rcpt=$(reply) ;; esac ;;
    esac
    say QUIT; reply >/dev/null
    exec 3>&- 3<&-
    echo "$xclient|$rcpt"
}
# An smtpd process started before the reload may take the connection and refuse XCLIENT: again.
for _ in $(seq 30); do
    result=$(probe)
    case "$result" in 220*) break ;; esac
    sleep 0.1
done
echo "xclient=${result%%|*}"
echo "rcpt=${result#*|}"
