#!/usr/bin/env bash
# Puts pulumi-resource-pulumi-nodejs beside the engine's pulumi, as Pulumi's releases ship it: the
# engine starts it for every dynamic resource of a Node.js program (the component's ServerState),
# and fails without it ("no resource plugin 'pulumi-resource-pulumi-nodejs' found"). It is a
# five-line sh script of the Pulumi SDK's Go module (sdk/v3@<version>/nodejs/dist/), taken from
# the Go module cache or the module proxy at the CLI's version.
#
# A step of its own, not part of build.sh: build.sh's text is part of its cache key, and this file
# changes no binary it builds, so a warm engine cache stays warm. scripts/pulumi.sh runs it on
# every call (with the file in place, it only checks it is there).
#
# Usage: dynamic-provider-shim.sh BIN_DIR      (BIN_DIR: what build.sh --print-bin-dir prints)
set -eu

bin_dir=$1
shim=pulumi-resource-pulumi-nodejs
[ -x "$bin_dir/$shim" ] && exit 0

# The CLI's version, as build.sh recorded it beside the binaries.
version=$(sed -n 's/^pulumi=v//p' "$bin_dir/../.complete")
[ -n "$version" ] || {
	echo "dynamic-provider-shim.sh: no CLI version in $bin_dir/../.complete" >&2
	exit 1
}
command -v go >/dev/null 2>&1 || PATH=/usr/local/go/bin:$PATH
# Only the Go module proxy, as build.sh: never a VCS host.
GOPROXY=$(go env GOPROXY | sed 's/[,|]direct$//')
export GOPROXY
module="github.com/pulumi/pulumi/sdk/v3@v$version"
dir=$(cd / && go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$dir/nodejs/dist/$shim" ] || {
	echo "dynamic-provider-shim.sh: $module has no nodejs/dist/$shim (module directory: ${dir:-none})" >&2
	exit 1
}
# Renamed into place: several wrappers may start at once.
tmp="$bin_dir/$shim.tmp.$$"
install -m 0755 "$dir/nodejs/dist/$shim" "$tmp"
mv -f "$tmp" "$bin_dir/$shim"
