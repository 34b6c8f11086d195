#!/bin/sh
# Puts the host scripts in DIR, a folder named by their content's hash, before any other step:
# each step then runs its script by path, so a failure shows the step's own lines and not the
# script. A DIR that exists is complete: it is renamed into place only when whole.
#
# Usage: install-scripts.sh install DIR   stdin: one line per script, "NAME BASE64"
#        install-scripts.sh remove DIR    (another version replaced it, or the component is destroyed)
set -eu

dir=$2
if [ "$1" = remove ]; then
    rm -rf "$dir"
    exit 0
fi
if [ -d "$dir" ]; then
    echo "scripts already in place: $dir"
    exit 0
fi
mkdir -p "${dir%/*}"
tmp=$(mktemp -d "$dir.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
count=0
while read -r name data; do
    case "$name" in
        "" | *[!A-Za-z0-9._-]* | .*) echo "pulumi-postfix: unexpected script name in the bundle: $name" >&2; exit 1 ;;
    esac
    printf '%s' "$data" | base64 -d >"$tmp/$name"
    chmod 0644 "$tmp/$name"
    count=$((count + 1))
done
chmod 0755 "$tmp"
mv "$tmp" "$dir"
trap - EXIT
echo "$count scripts installed in $dir"
