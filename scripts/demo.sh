#!/usr/bin/env bash
# npm run demo:      a disposable Debian 12 host on this machine (chroot, 127.0.30.2) and the
#                    real `pulumi up` of a `demo` stack onto it; the host stays up afterwards.
# npm run demo:down: destroys the stack and removes the host.
# Needs root (the host is a chroot with its own loopback address).
set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
host=demo
address=127.0.30.2
testhost="bash $repo/test/hosts/testhost.sh"
# The demo's state stays in ./.pulumi; its passphrase is not a secret worth keeping.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-demo}"
unset SSH_AUTH_SOCK
pulumi() { bash "$repo/scripts/pulumi.sh" "$@" --stack demo --non-interactive; }

case "${1:-up}" in
up)
    bash "$repo/scripts/setup.sh"
    $testhost up "$host" bookworm "$address" >/dev/null
    info="${PULUMI_POSTFIX_HOSTS:-/tmp/pulumi-postfix-hosts}/$host/host.json"
    key=$(sed -n 's/.*"privateKeyPath":"\([^"]*\)".*/\1/p' "$info")
    # The host's key as a first `ssh` login would have recorded it: a known_hosts file of its own,
    # since a new demo host has new keys.
    known_hosts=$(sed -n 's/.*"knownHostsPath":"\([^"]*\)".*/\1/p' "$info")
    salt=$(sed -n 's/^encryptionsalt: .*/&/p' stacks/Pulumi.demo.yaml 2>/dev/null || true)
    cat >stacks/Pulumi.demo.yaml <<YAML
${salt}
config:
  postfix:domain: home.lan
  postfix:trustedNetworks: [127.0.30.0/24]
  postfix:mailUsers: [fribeiro]
  postfix:aliases: {postmaster: root, root: fribeiro}
  # A demo host never delivers outside: outbound mail is held in the queue.
  postfix:extraParameters: {defer_transports: smtp, maillog_file: /var/log/postfix.log}
  postfix:servers:
    - name: server
      hostname: server.home.lan
      listenAddresses: [$address]
      ssh: {host: $address, user: root, privateKeyPath: $key, knownHostsFile: $known_hosts}
YAML
    pulumi stack select 2>/dev/null || pulumi stack init --secrets-provider passphrase
    pulumi up --yes
    pulumi stack output --json
    cat <<TEXT

The demo server runs on $address (Debian 12 in a chroot). Try:
  swaks --server $address --local-interface 127.0.30.50 --to fribeiro@home.lan     # a LAN client sends mail
  swaks --server $address --local-interface 127.0.99.1 --to x@example.invalid --quit-after RCPT   # outsiders are refused
  bash test/hosts/testhost.sh exec $host -- ls /home/fribeiro/Maildir/new
  bash scripts/pulumi.sh preview --diff --stack demo                                # nothing to change
Remove it with: npm run demo:down
TEXT
    ;;
down)
    pulumi destroy --yes 2>/dev/null || true
    pulumi stack rm --yes --force 2>/dev/null || true
    rm -f stacks/Pulumi.demo.yaml
    $testhost down "$host"
    ;;
*)
    echo "usage: demo.sh up|down" >&2
    exit 2
    ;;
esac
