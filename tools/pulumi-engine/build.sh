#!/usr/bin/env bash
# Builds the Pulumi engine this project runs, the same binaries a user installs:
#   pulumi                   the CLI, from the Go modules github.com/pulumi/pulumi/pkg/v3 and sdk/v3
#                            (wrapper module cli/: pkg/v3's own go.mod cannot be built with go install)
#   pulumi-language-nodejs   upstream, from ../shared/upstream (pulumi v3.259.0)
#   pulumi-resource-command  upstream, from ../shared/upstream (pulumi-command v1.2.1)
#   pulumi-resource-tls      upstream, from ../shared/upstream (pulumi-tls v5.5.1)
#   pulumi-language-yaml     upstream, from ../shared/upstream (pulumi-yaml commit 294c561f47f4)
# The Go module proxy refuses the four plugins' own modules, so their pristine sources come as
# tarballs (checked against the sha256 sums below, unpacked into a temporary directory, built with
# only the go.mod edits upstream's own monorepo layout needs, versions stamped as upstream's
# release builds do). Nothing of theirs is copied into this repository.
#
# Output: ${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}/engine/<key>/bin/, where <key> is
# the CLI version, the Go version and a hash of this script, cli/go.mod, cli/go.sum and the
# tarballs' sums: the same inputs are a cache hit, any change a fresh build.
#
# Options:
#   --quiet          print nothing on success (build logs are shown on failure)
#   --print-bin-dir  print the bin directory on stdout when done
# Environment:
#   PULUMI_POSTFIX_CACHE     cache root (default ~/.cache/pulumi-postfix)
#   PULUMI_POSTFIX_UPSTREAM  the tarballs' directory (default ../shared/upstream beside the repo)
#   PULUMI_ENGINE_REBUILD=1  ignore a cached build
set -eu

PULUMI_VERSION=3.274.1 # the CLI: pkg/v3 and sdk/v3; keep equal to cli/go.mod
LANGUAGE_NODEJS_VERSION=3.259.0
COMMAND_VERSION=1.2.1
TLS_VERSION=5.5.1
# pulumi-yaml has no tag at this commit: its version is the Go pseudo-version of the commit (the
# one pulumi-tls v5.5.1 requires), stamped with a "v" as goreleaser stamps {{.Tag}}.
YAML_COMMIT=294c561f47f4
YAML_VERSION=1.37.1-0.20260717123218-$YAML_COMMIT

# The upstream sources, by content. A tarball that differs is refused.
UPSTREAM_SUMS="c8ccb336ecd0f34c85d6fd98572e343fa07f6a25cd1ea1a70a9566537ee1b0e9  pulumi-command-v1.2.1.tar.xz
5287f76388add0b74f83d0fced9e390ce560a22473fdc26909f31bf094de14b3  pulumi-dotnet-6a2eb2585b50.tar.xz
59cfe59edc508c35d8a76f65c44a2c2b9293510d742c754b110fb79085fab1a9  pulumi-tls-v5.5.1.tar.xz
081156ec931248474fead7213a7b85e9a821a8515b534b77628ac08c10d84a5e  pulumi-v3.259.0.tar.xz
1cee119ff330fc9a5334396817293b4922cd72dca597ffcc163db517b2be61a5  pulumi-yaml-294c561f47f4.tar.xz
b54653c9c5340a1487a046c38121417c95aa612709442d661d501e3f75eefc6f  terraform-provider-tls-d72d90e1b47b.tar.xz"

quiet=0
print_bin_dir=0
for arg in "$@"; do
	case "$arg" in
	--quiet) quiet=1 ;;
	--print-bin-dir) print_bin_dir=1 ;;
	*)
		echo "usage: $0 [--quiet] [--print-bin-dir]" >&2
		exit 2
		;;
	esac
done

say() { if [ "$quiet" = 0 ]; then echo "$@" >&2; fi; }

engine_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$engine_dir/../.." && pwd)
cache_root=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}
upstream=${PULUMI_POSTFIX_UPSTREAM:-$repo_root/../shared/upstream}

command -v go >/dev/null 2>&1 || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null 2>&1 || {
	echo "build.sh: 'go' not found (expected /usr/local/go/bin/go)" >&2
	exit 1
}

# Only the Go module proxy; never fall back to fetching from VCS hosts (drop "direct").
GOPROXY=$(go env GOPROXY | sed 's/[,|]direct$//')
export GOPROXY CGO_ENABLED=0

go_version=$(go env GOVERSION)
goos_arch="$(go env GOOS)-$(go env GOARCH)"
inputs_hash=$(cat "$engine_dir/build.sh" "$engine_dir/cli/go.mod" "$engine_dir/cli/go.sum" <(printf '%s\n' "$UPSTREAM_SUMS") | sha256sum | cut -c1-12)
key="pulumi-v${PULUMI_VERSION}_${go_version}_${goos_arch}_${inputs_hash}"
key_dir="$cache_root/engine/$key"
bin_dir="$key_dir/bin"
binaries="pulumi pulumi-language-nodejs pulumi-language-yaml pulumi-resource-command pulumi-resource-tls"

done_msg() { if [ "$print_bin_dir" = 1 ]; then echo "$bin_dir"; fi; }

cached() {
	[ -f "$key_dir/.complete" ] || return 1
	local bin
	for bin in $binaries; do [ -x "$bin_dir/$bin" ] || return 1; done
}

summary() {
	say "  pulumi                   v$PULUMI_VERSION (pkg/v3 + sdk/v3 from the Go module proxy)"
	say "  pulumi-language-nodejs   v$LANGUAGE_NODEJS_VERSION (upstream source)"
	say "  pulumi-language-yaml     v$YAML_VERSION (upstream source)"
	say "  pulumi-resource-command  v$COMMAND_VERSION (upstream source)"
	say "  pulumi-resource-tls      v$TLS_VERSION (upstream source)"
	if [ "$quiet" = 0 ]; then (cd "$bin_dir" && ls -l) | sed 's/^/  /' >&2; fi
}

if [ "${PULUMI_ENGINE_REBUILD:-0}" != 1 ] && cached; then
	say "pulumi engine: cached in $bin_dir"
	summary
	done_msg
	exit 0
fi

# One build at a time per cache (tests may start several wrappers at once).
mkdir -p "$cache_root/engine"
exec 9>"$cache_root/engine/.lock"
flock 9
if [ "${PULUMI_ENGINE_REBUILD:-0}" != 1 ] && cached; then
	done_msg
	exit 0
fi

# Always announce a real build, even with --quiet: a cold one takes a while.
echo "pulumi engine: building $key (cold: about 10-15 minutes on 2 cores)" >&2
start=$(date +%s)
mkdir -p "$key_dir"
tmp_bin="$key_dir/bin.tmp.$$"
src=$(mktemp -d)
log="$key_dir/build.log"
: >"$log"
rm -rf "$tmp_bin"
mkdir -p "$tmp_bin"
trap 'rm -rf "$tmp_bin" "$src"' EXIT
trap 'exit 130' INT TERM # still runs the EXIT cleanup

fail() {
	echo "build.sh: $1; log: $log" >&2
	tail -n 40 "$log" >&2
	exit 1
}

# The tarballs: exactly these contents, or no build.
[ -d "$upstream" ] || fail "upstream sources not found in $upstream (set PULUMI_POSTFIX_UPSTREAM)"
(cd "$upstream" && printf '%s\n' "$UPSTREAM_SUMS" | sha256sum --check --strict) >>"$log" 2>&1 ||
	fail "an upstream tarball in $upstream does not match its sha256"
while read -r _ tarball; do
	tar -xJf "$upstream/$tarball" -C "$src" || fail "cannot unpack $tarball"
done <<<"$UPSTREAM_SUMS"

build() { # build <binary> <module dir> <package> <ldflags> [GOFLAGS]
	local bin=$1 dir=$2 pkg=$3 ldflags=$4 goflags=${5:--mod=readonly -buildvcs=false} t0
	t0=$(date +%s)
	say "  building $bin ..."
	(cd "$dir" && GOFLAGS="$goflags" go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp_bin/$bin" "$pkg") </dev/null >>"$log" 2>&1 ||
		fail "building $bin failed"
	say "  built $bin ($(du -h "$tmp_bin/$bin" | cut -f1), $(($(date +%s) - t0))s)"
}

build pulumi "$engine_dir/cli" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
	"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"

# The language host's go.mod points pkg/v3 and sdk/v3 at the monorepo around it; the tarball
# holds only the host, so use the served modules of the same release.
host_dir="$src/pulumi-v$LANGUAGE_NODEJS_VERSION/sdk/nodejs/cmd/pulumi-language-nodejs"
(cd "$host_dir" &&
	go mod edit -dropreplace github.com/pulumi/pulumi/pkg/v3 -dropreplace github.com/pulumi/pulumi/sdk/v3 \
		-require "github.com/pulumi/pulumi/pkg/v3@v$LANGUAGE_NODEJS_VERSION" \
		-require "github.com/pulumi/pulumi/sdk/v3@v$LANGUAGE_NODEJS_VERSION" &&
	GOFLAGS=-mod=mod go mod tidy) >>"$log" 2>&1 || fail "preparing pulumi-language-nodejs failed"
build pulumi-language-nodejs "$host_dir" . \
	"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LANGUAGE_NODEJS_VERSION"

# The YAML language host: every module it requires is served (its pkg/v3 and sdk/v3 are the
# released v3.253.0), so its go.mod builds unchanged.
build pulumi-language-yaml "$src/pulumi-yaml-$YAML_COMMIT" ./cmd/pulumi-language-yaml \
	"-X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$YAML_VERSION"

build pulumi-resource-command "$src/pulumi-command-v$COMMAND_VERSION/provider" ./cmd/pulumi-resource-command \
	"-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION"

# The tls provider (Terraform bridge) needs three modules the proxy refuses: they are tarballs
# too. Its embedded schema is a copy of the committed one, as upstream's Makefile makes it.
tls_dir="$src/pulumi-tls-v$TLS_VERSION/provider"
tf_tls="$src/terraform-provider-tls-d72d90e1b47b"
(cd "$tls_dir" &&
	cp cmd/pulumi-resource-tls/schema.json cmd/pulumi-resource-tls/schema-embed.json &&
	go mod edit -replace "github.com/hashicorp/terraform-provider-tls=$tf_tls" \
		-replace "github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3=$src/pulumi-dotnet-6a2eb2585b50/pulumi-language-dotnet" \
		-replace "github.com/pulumi/pulumi-yaml=$src/pulumi-yaml-$YAML_COMMIT" &&
	(cd shim && go mod edit -replace "github.com/hashicorp/terraform-provider-tls=$tf_tls")) >>"$log" 2>&1 ||
	fail "preparing pulumi-resource-tls failed"
build pulumi-resource-tls "$tls_dir" ./cmd/pulumi-resource-tls \
	"-X github.com/pulumi/pulumi-tls/provider/v5/pkg/version.Version=$TLS_VERSION" "-buildvcs=false"

rm -rf "$bin_dir"
mv "$tmp_bin" "$bin_dir"
{
	echo "key=$key"
	echo "pulumi=v$PULUMI_VERSION"
	echo "language-nodejs=v$LANGUAGE_NODEJS_VERSION"
	echo "language-yaml=v$YAML_VERSION"
	echo "command=v$COMMAND_VERSION"
	echo "tls=v$TLS_VERSION"
	echo "go=$go_version"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$key_dir/.complete"

say "pulumi engine: built in $(($(date +%s) - start))s into $bin_dir"
summary
done_msg
