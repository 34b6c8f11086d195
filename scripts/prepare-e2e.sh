#!/usr/bin/env bash
# Before the end-to-end tests: the engine (tools/pulumi-engine/build.sh) and the four test-host
# images (test/hosts/testhost.sh rootfs), built at the same time when missing. The engine build
# is CPU-bound and debootstrap mostly waits on the mirror, so on a fresh machine this saves the
# images' time (about 15 minutes); with warm caches it takes about a second.
set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

bash "$repo/tools/pulumi-engine/build.sh" --quiet >"$logs/engine.log" 2>&1 &
engine=$!
(
    for image in "bookworm" "trixie" "bookworm --boot" "trixie --boot"; do
        # shellcheck disable=SC2086 # suite and flag
        bash "$repo/test/hosts/testhost.sh" rootfs $image >/dev/null || exit 1
    done
) >"$logs/images.log" 2>&1 &
images=$!

status=0
if ! wait "$engine"; then
    echo "prepare-e2e: the engine build failed:" >&2
    tail -n 40 "$logs/engine.log" >&2
    status=1
fi
if ! wait "$images"; then
    echo "prepare-e2e: a test-host image failed to build:" >&2
    tail -n 40 "$logs/images.log" >&2
    status=1
fi
grep -h "built in\|pulumi engine: built" "$logs/engine.log" "$logs/images.log" >&2 || true
exit "$status"
