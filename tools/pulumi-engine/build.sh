#!/usr/bin/env bash
# Builds the Pulumi engine binaries this project uses, from Go modules only:
#   pulumi                   CLI, github.com/pulumi/pulumi/pkg/v3 (wrapper module cli/)
#   pulumi-language-nodejs   our own language host (language-nodejs/)
#   pulumi-resource-command  provider-command/ (if present)
#   pulumi-resource-tls      provider-tls/     (if present)
# (the providers share the local module providerkit/, via a go.mod replace)
# into ${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}/engine/<key>/bin/.
# <key> = pinned versions + Go version + a hash of our wrapper sources, so an
# unchanged tree is a cache hit and any source change gives a fresh build.
#
# Options:
#   --quiet          print nothing on success (build logs are shown on failure)
#   --print-bin-dir  print the bin directory on stdout when done
# Environment:
#   PULUMI_POSTFIX_CACHE     cache root (default ~/.cache/pulumi-postfix)
#   PULUMI_ENGINE_PROVIDERS  providers to build if present (default "command tls")
#   PULUMI_ENGINE_REBUILD=1  ignore a cached build
set -eu

PULUMI_VERSION=3.274.1 # pkg/v3 and sdk/v3; keep equal to cli/go.mod

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
cache_root=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}
providers=${PULUMI_ENGINE_PROVIDERS-command tls}

command -v go >/dev/null 2>&1 || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null 2>&1 || {
	echo "build.sh: 'go' not found (expected /usr/local/go/bin/go)" >&2
	exit 1
}

# Only the Go module proxy; never fall back to fetching from VCS hosts (drop "direct").
# go.sum files are committed, so -mod=readonly makes drift an error.
GOPROXY=$(go env GOPROXY | sed 's/[,|]direct$//')
export GOPROXY
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0

go_version=$(go env GOVERSION)
goos_arch="$(go env GOOS)-$(go env GOARCH)"

# Wrapper modules to build: "<dir> <binary>" per line.
modules="cli pulumi
language-nodejs pulumi-language-nodejs"
for p in $providers; do
	# A provider counts as present once its module has go.mod and Go files.
	if [ -f "$engine_dir/provider-$p/go.mod" ] && compgen -G "$engine_dir/provider-$p/*.go" >/dev/null; then
		modules="$modules
provider-$p pulumi-resource-$p"
	fi
done

# The module dirs to hash: each module to build plus the local modules it uses
# through a "replace ... => ../<dir>" directive (the providers' providerkit/).
source_dirs() {
	echo "$modules" | while read -r dir _; do
		echo "$dir"
		sed -n 's|.*=>[[:space:]]*\.\./\([A-Za-z0-9._-]*\)[[:space:]]*$|\1|p' "$engine_dir/$dir/go.mod"
	done | LC_ALL=C sort -u
}

# Hash our own sources (paths relative to engine_dir, so the repo location
# does not matter) plus this script, whose flags shape the output.
source_hash() {
	(
		cd "$engine_dir"
		source_dirs | while read -r dir; do
			find "$dir" -type f \( -name go.mod -o -name go.sum -o -name '*.go' \
				-o -name '*.json' -o -name '*.yaml' \) -not -name '*_test.go' -not -path '*/.*' -print
		done | LC_ALL=C sort | while read -r f; do
			printf '%s\n' "$f"
			cat "$f"
		done
		cat build.sh
	) | sha256sum | cut -c1-12
}

key="pulumi-v${PULUMI_VERSION}_${go_version}_${goos_arch}_$(source_hash)"
key_dir="$cache_root/engine/$key"
bin_dir="$key_dir/bin"

done_msg() {
	if [ "$print_bin_dir" = 1 ]; then echo "$bin_dir"; fi
}

cached() {
	[ -f "$key_dir/.complete" ] || return 1
	local dir bin
	while read -r dir bin; do
		[ -x "$bin_dir/$bin" ] || return 1
	done <<<"$modules"
}

summary() {
	say "  pulumi                   v$PULUMI_VERSION (pkg/v3 + sdk/v3 v$PULUMI_VERSION, wrapper cli/)"
	say "  pulumi-language-nodejs   $PULUMI_VERSION (our own stand-in, language-nodejs/)"
	local dir bin
	while read -r dir bin; do
		case "$dir" in provider-*) say "$(printf '  %-24s (from %s/)' "$bin" "$dir")" ;; esac
	done <<<"$modules"
	if [ "$quiet" = 0 ]; then
		(cd "$bin_dir" && ls -l) | sed 's/^/  /' >&2
	fi
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
echo "pulumi engine: building $key (the first CLI build takes 10-25 minutes)" >&2
start=$(date +%s)
tmp_bin="$key_dir/bin.tmp.$$"
rm -rf "$tmp_bin"
mkdir -p "$tmp_bin"
log="$key_dir/build.log"
: >"$log"
trap 'rm -rf "$tmp_bin"' EXIT
trap 'exit 130' INT TERM # still runs the EXIT cleanup

build() { # build <module dir> <binary> <package> [ldflags...]
	local dir=$1 bin=$2 pkg=$3 t0
	shift 3
	t0=$(date +%s)
	say "  building $bin from $dir/ ..."
	if ! (cd "$engine_dir/$dir" && go build -trimpath -ldflags "-s -w $*" -o "$tmp_bin/$bin" "$pkg") </dev/null >>"$log" 2>&1; then
		echo "build.sh: building $bin failed; log: $log" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	say "  built $bin ($(du -h "$tmp_bin/$bin" | cut -f1), $(($(date +%s) - t0))s)"
}

while read -r dir bin; do
	case "$dir" in
	cli)
		build cli pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
			"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
		;;
	language-nodejs)
		build language-nodejs pulumi-language-nodejs . "-X main.version=$PULUMI_VERSION"
		;;
	*)
		build "$dir" "$bin" .
		;;
	esac
done <<<"$modules"

rm -rf "$bin_dir"
mv "$tmp_bin" "$bin_dir"
trap - EXIT
{
	echo "key=$key"
	echo "pulumi=v$PULUMI_VERSION"
	echo "go=$go_version"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$key_dir/.complete"

say "pulumi engine: built in $(($(date +%s) - start))s into $bin_dir"
summary
done_msg
