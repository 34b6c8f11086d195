#!/bin/sh
# The mail users' passwords for port 587, as Dovecot's passwd-file: `user:{SHA512-CRYPT}$6$...`.
# The passwords arrive on standard input and only their hashes are written, by openssl (the
# password on its standard input, never on a command line). A password whose hash is already in
# the live file keeps that hash (same salt), so an unchanged password leaves the file unchanged.
# The file then goes through write-file.sh, like every file the component owns.
#
# Usage: mail-passwords.sh write PATH STATE   stdin: one `user password` line per user
#        mail-passwords.sh remove PATH STATE  (no mail user has a password any more)
set -eu
# User names are validated words; nothing is globbed.
set -f
here=$(dirname "$0")

if [ "$1" = remove ]; then
    exec sh "$here/write-file.sh" remove mail-passwords "$2" "$3"
fi
dest=$2
state=$3
umask 077
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# The hash of USER in the live file, without its scheme prefix; empty when there is none.
live_hash() { # user
    [ -f "$dest" ] || return 0
    sed -n "s/^$1:{SHA512-CRYPT}\\([^:]*\\).*/\\1/p" "$dest" | head -n 1
}

echo "# Managed by pulumi-postfix: local changes are overwritten on the next change." >"$out"
while IFS= read -r line; do
    [ -n "$line" ] || continue
    user=${line%% *}
    password=${line#* }
    hash=$(live_hash "$user")
    if [ -n "$hash" ]; then
        salt=$(printf '%s' "$hash" | cut -d '$' -f 3)
        again=$(printf '%s\n' "$password" | openssl passwd -6 -salt "$salt" -stdin)
        if [ "$again" != "$hash" ]; then hash=""; fi
    fi
    if [ -z "$hash" ]; then hash=$(printf '%s\n' "$password" | openssl passwd -6 -stdin); fi
    printf '%s:{SHA512-CRYPT}%s\n' "$user" "$hash" >>"$out"
done
sh "$here/write-file.sh" write mail-passwords "$dest" 0640 "$state" <"$out"
