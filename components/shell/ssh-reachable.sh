#!/bin/sh
# Runs on the workstation, before any step opens an SSH session to the server: the server's SSH
# service must complete a key exchange within PROBE_TIMEOUT seconds, in at most PROBE_ATTEMPTS
# attempts one second apart. The command provider bounds only the TCP connect of each dial, so a
# host that accepts TCP but never speaks SSH would otherwise hold `pulumi up` forever.
# The key the server shows must be PROBE_HOST_KEY, the one every step's own connection verifies
# (from ssh.hostKey or known_hosts, named by PROBE_KEY_SOURCE): a changed key is reported here,
# in words, before any step has sent anything.
#
# Environment: PROBE_HOST, PROBE_PORT, PROBE_TIMEOUT, PROBE_ATTEMPTS, PROBE_HOST_KEY, PROBE_KEY_SOURCE.
# Its one argument is a label for the error the command provider prints; it is not used.
set -eu

fail() {
    echo "pulumi-postfix: $PROBE_HOST port $PROBE_PORT: $*" >&2
    exit 1
}

command -v ssh-keyscan >/dev/null 2>&1 || fail "ssh-keyscan (OpenSSH client) is needed on this workstation to check the server first"

# The trusted key's type, so that one connection is enough.
case "$PROBE_HOST_KEY" in
ecdsa-*) key_type=ecdsa ;;
*) key_type=${PROBE_HOST_KEY%% *} key_type=${key_type#ssh-} ;;
esac

attempt=1
while :; do
    started=$(date +%s)
    if keys=$(ssh-keyscan -T "$PROBE_TIMEOUT" -t "$key_type" -p "$PROBE_PORT" "$PROBE_HOST" 2>/dev/null) && [ -n "$keys" ]; then
        break
    fi
    if [ $(($(date +%s) - started)) -ge "$PROBE_TIMEOUT" ]; then
        why="accepted the connection but sent no SSH greeting and key within ${PROBE_TIMEOUT}s"
    else
        why="refused the connection or could not be reached"
    fi
    if [ "$attempt" -ge "$PROBE_ATTEMPTS" ]; then
        fail "no SSH server answered ($PROBE_ATTEMPTS attempts; the last one $why). Check ssh.host and ssh.port, and that sshd runs on the server; nothing was changed on it"
    fi
    attempt=$((attempt + 1))
    sleep 1
done

fingerprint() { # "type base64" -> "SHA256:... (ED25519)"
    printf '%s\n' "$1" | ssh-keygen -lf - 2>/dev/null | awk '{print $2" "$NF}'
}
seen=$(printf '%s\n' "$keys" | sed -n '1s/^[^ ]* \([^ ]* [^ ]*\).*/\1/p')
if [ "$seen" != "$PROBE_HOST_KEY" ]; then
    fail "$(printf '%s\n' \
        "HOST KEY CHANGED: the server shows $(fingerprint "$seen"), but $PROBE_KEY_SOURCE has $(fingerprint "$PROBE_HOST_KEY")." \
        "  Someone may be intercepting the connection (a machine in the middle), or the server was reinstalled." \
        "  Nothing was sent to it. If the change is expected, compare the new key on the server's own console" \
        "  (ssh-keygen -lf /etc/ssh/ssh_host_${key_type}_key.pub), then replace the old one in $PROBE_KEY_SOURCE.")"
fi
echo "SSH answered at $PROBE_HOST port $PROBE_PORT with the known host key (attempt $attempt)"
