#!/usr/bin/env bash
# Runs the locally built Pulumi CLI (see tools/pulumi-engine/) fully offline:
#   npm run pulumi -- <args>      or      bash scripts/pulumi.sh <args>
# Builds the engine first if needed (a cached build takes about a second).
# The stack passphrase is the caller's business: set PULUMI_CONFIG_PASSPHRASE
# or PULUMI_CONFIG_PASSPHRASE_FILE.
set -eu

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}

bin_dir=$(bash "$repo_root/tools/pulumi-engine/build.sh" --quiet --print-bin-dir)
# The dynamic provider's plugin, which Pulumi's releases ship beside the CLI (the component's ServerState).
bash "$repo_root/tools/pulumi-engine/dynamic-provider-shim.sh" "$bin_dir"

# Engine binaries first (the language host and providers are then found as
# "ambient" plugins), then a Node.js of 22 or newer (scripts/node.sh) for the program.
node_dir=$(bash "$repo_root/scripts/node.sh" --print-bin-dir)
export PATH="$bin_dir:$node_dir:$PATH"

# Never reach for pulumi.com / get.pulumi.com / the registry.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DISABLE_REGISTRY_RESOLVE=true

export PULUMI_HOME="${PULUMI_HOME:-$cache_root/pulumi-home}"
# The backend: PULUMI_BACKEND_URL, else what `pulumi login` stored in this Pulumi home, else this
# repository's ./.pulumi (gitignored), so that the demo and the tests need no login.
if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! grep -q '"current": *"[^"]' "$PULUMI_HOME/credentials.json" 2>/dev/null; then
	mkdir -p "$repo_root/.pulumi"
	export PULUMI_BACKEND_URL="file://$repo_root/.pulumi"
fi

# The providers go into PULUMI_HOME's plugin cache, at the versions the npm SDKs ask for, as
# `pulumi plugin install` would put them: the engine then uses them as installed plugins
# instead of warning about each one it finds on PATH.
sdk_version() { # npm package -> its version in node_modules
	sed -n 's/^ *"version": "\([^"]*\)",*$/\1/p' "$repo_root/node_modules/$1/package.json" | head -n 1
}
for provider in command tls; do
	version=$(sdk_version "@pulumi/$provider")
	installed="$PULUMI_HOME/plugins/resource-$provider-v$version/pulumi-resource-$provider"
	if ! cmp -s "$bin_dir/pulumi-resource-$provider" "$installed"; then
		"$bin_dir/pulumi" plugin install resource "$provider" "$version" --file "$bin_dir/pulumi-resource-$provider" --reinstall >/dev/null
	fi
done
export PULUMI_IGNORE_AMBIENT_PLUGINS=true

exec "$bin_dir/pulumi" "$@"
