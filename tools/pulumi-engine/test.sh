#!/usr/bin/env bash
# Runs the Go tests of our own engine modules (language host, providers, providerkit).
set -eu
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v go >/dev/null 2>&1 || PATH=/usr/local/go/bin:$PATH
export GOFLAGS="-mod=readonly -buildvcs=false"
# The command provider would otherwise try the developer's SSH agent.
unset SSH_AUTH_SOCK
for module in */go.mod; do
	dir=$(dirname "$module")
	compgen -G "$dir/*_test.go" >/dev/null || continue
	(cd "$dir" && go vet ./... && go test -count=1 ./...)
done
