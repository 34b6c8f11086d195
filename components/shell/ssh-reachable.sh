#!/bin/sh
# Runs on the workstation, before any step opens an SSH session to the server: the server's SSH
# service must complete a key exchange within PROBE_TIMEOUT seconds, in at most PROBE_ATTEMPTS
# attempts one second apart. The command provider bounds only the TCP connect of each dial, so a
# host that accepts TCP but never speaks SSH would otherwise hold `pulumi up` forever.
# With PROBE_HOST_KEY set, the key the server shows must be that one.
#
# Environment: PROBE_HOST, PROBE_PORT, PROBE_TIMEOUT, PROBE_ATTEMPTS, PROBE_HOST_KEY (may be empty).
# Its one argument is a label for the error the command provider prints; it is not used.
set -eu

fail() {
    echo "pulumi-postfix: $PROBE_HOST port $PROBE_PORT: $*" >&2
    exit 1
}

command -v ssh-keyscan >/dev/null 2>&1 || fail "ssh-keyscan (OpenSSH client) is needed on this workstation to check the server first"

# The pinned key's type, so that one connection is enough; without a pin, the type every
# Debian sshd offers.
key_type=ed25519
if [ -n "$PROBE_HOST_KEY" ]; then
    key_type=${PROBE_HOST_KEY%% *}
    key_type=${key_type#ssh-}
fi

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

if [ -n "$PROBE_HOST_KEY" ]; then
    pinned=$(printf '%s\n' "$PROBE_HOST_KEY" | cut -d ' ' -f 1-2)
    seen=$(printf '%s\n' "$keys" | cut -d ' ' -f 2-3)
    [ "$seen" = "$pinned" ] || fail "the server's host key is not ssh.hostKey (it shows: $seen). Nothing was changed on it"
fi
echo "SSH answered at $PROBE_HOST port $PROBE_PORT (attempt $attempt)"
