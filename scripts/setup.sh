#!/usr/bin/env bash
# Installs what the tests and the demo need on a Debian machine (run as root): the test-host
# tools, SMTP clients and shellcheck from apt; checks that Go is there for the offline engine.
# The tests' Node.js (22 or newer) comes from scripts/node.sh, fetched here once when the
# machine's is older; the npm packages from `npm ci`.
set -eu

# libio-socket-inet6-perl: swaks over IPv6 (the ::1 tests). python3, sslscan, gnutls-bin: the mail
# clients suite (smtplib checking certificates, a TLS scan, a second TLS implementation). strace:
# the safety suite records every program a deployment starts.
packages="debootstrap systemd-container openssh-client postgresql swaks libio-socket-inet6-perl shellcheck openssl iproute2 util-linux procps ca-certificates python3 sslscan gnutls-bin strace"
missing=""
for package in $packages; do
    dpkg-query -W -f '${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -q $missing >/dev/null
fi

PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
    echo "setup: Go 1.25 or newer is needed to build the offline Pulumi engine (tools/pulumi-engine)" >&2
    exit 1
fi

bash "$(dirname "${BASH_SOURCE[0]}")/node.sh" --print-bin-dir >/dev/null
