#!/usr/bin/env bash
# Runs the compiled end-to-end suites (dist/test/e2e/*.test.js), two at a time where they can
# share the machine: every test host shares its network, and a chroot host's services listen only
# on its own loopback addresses, so chroot suites run side by side. A suite whose source says
# `// Runs alone:` (hosts booted with systemd, whose package scripts start Debian's postfix,
# exim4 or Dovecot on every address) runs with nothing beside it, before the others.
# Each suite's output is printed whole when it ends; last, one line per suite. Longest first,
# by the seconds of this machine's last run (kept in the cache, outside the repository).
#   bash scripts/e2e.sh [SUITE.test.js...]      E2E_JOBS=N  suites side by side (default 2)
set -eu

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}
timings=$cache_root/e2e-seconds
jobs=${E2E_JOBS:-2}
case "$jobs" in '' | *[!0-9]* | 0) echo "e2e.sh: E2E_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$#" -gt 0 ]; then suites=("$@"); else suites=("$repo"/dist/test/e2e/*.test.js); fi

# Runs one suite, prints its output in one piece, records its seconds and status.
run_one() { # SUITE.test.js
    local suite=$1 name t0 status
    name=$(basename "$suite" .test.js)
    t0=$(date +%s)
    status=0
    bash "$repo/scripts/node.sh" node --test --test-concurrency=1 "$suite" >"$work/$name.log" 2>&1 || status=$?
    echo "$name $(($(date +%s) - t0)) $status" >"$work/$name.result"
    flock "$work/print.lock" cat "$work/$name.log"
}

# Longest first: this machine's last seconds, else the repository's (test/e2e/suite-seconds.txt), else 0.
ordered() { # SUITE...
    local suite name
    for suite in "$@"; do
        name=$(basename "$suite" .test.js)
        echo "$( (grep -h -m1 "^$name " "$timings" "$repo/test/e2e/suite-seconds.txt" 2>/dev/null || echo "- 0") | head -n 1 | cut -d ' ' -f 2) $suite"
    done | sort -rn | cut -d ' ' -f 2-
}

alone=()
beside=()
for suite in "${suites[@]}"; do
    [ -f "$suite" ] || { echo "e2e.sh: no such suite: $suite" >&2; exit 2; }
    if grep -qs '^// Runs alone:' "$repo/test/e2e/$(basename "$suite" .test.js).test.ts"; then
        alone+=("$suite")
    else
        beside+=("$suite")
    fi
done

export -f run_one
export repo work
start=$(date +%s)
for suite in "${alone[@]}"; do run_one "$suite"; done
if [ "${#beside[@]}" -gt 0 ]; then
    # shellcheck disable=SC2016 # $1 is the inner shell's
    ordered "${beside[@]}" | xargs -d '\n' -P "$jobs" -n 1 bash -c 'run_one "$1"' run_one
fi

echo "e2e.sh: ${#alone[@]} suites alone, ${#beside[@]} by $jobs side by side, $(($(date +%s) - start)) s in all:"
failed=0
mkdir -p "$cache_root"
touch "$timings"
for result in "$work"/*.result; do
    read -r name seconds status <"$result"
    if [ "$status" = 0 ]; then echo "  ok   $name ($seconds s)"; else echo "  FAIL $name ($seconds s, exit $status)"; failed=1; fi
    { grep -v "^$name " "$timings" || true; echo "$name $seconds"; } >"$timings.tmp" && mv "$timings.tmp" "$timings"
done
exit "$failed"
