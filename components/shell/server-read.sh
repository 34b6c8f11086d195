#!/bin/sh
# A refresh's read of the server (the component's ServerState): what the deployment depends on,
# as it is now. Reads only; changes nothing, logs nothing. Sent as text over the one SSH
# connection of a refresh (not from the scripts folder: a rebuilt server has none).
#
# Usage: server-read.sh      stdin: what to read, one item a line:
#   dir PATH        prints  dir PATH present|missing
#   file PATH       prints  file PATH SHA256 MODE OWNER:GROUP    or  file PATH missing
#   package NAME    prints  package NAME installed|missing
#   user NAME       prints  user NAME present|missing
#   service NAME    prints  service NAME running|stopped         (postfix, dovecot)
#   deployed PATH   prints  deployed NAME VERSION for each line of PATH, the versions the last
#                   install step rendered for (nothing when PATH is missing)
# then, whatever was asked: `release` (Debian's), `postfix` and `dovecot` (their versions, when
# installed), and last `postconf` followed by `postconf -n`, when postfix and main.cf are there.
set -eu
# Names and paths are the component's own words: never globbed.
set -f

running() { # pid file
    [ -s "$1" ] || return 1
    # Postfix pads its pid with spaces, Dovecot does not.
    pid=$(sed -n '1{s/[[:space:]]//g;p;}' "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

while read -r what name; do
    case "$what" in
        dir)
            if [ -d "$name" ]; then echo "dir $name present"; else echo "dir $name missing"; fi ;;
        file)
            if [ -f "$name" ]; then
                # stat prints the mode without leading zeros (644): printed as the component writes it (0644).
                printf 'file %s %s %04d %s\n' "$name" "$(sha256sum <"$name" | cut -d ' ' -f 1)" "$(stat -c %a "$name")" "$(stat -c %U:%G "$name")"
            else
                echo "file $name missing"
            fi ;;
        package)
            # shellcheck disable=SC2016 # dpkg-query expands ${Status} itself
            if [ "$(dpkg-query -W -f '${Status}' "$name" 2>/dev/null || true)" = "install ok installed" ]; then
                echo "package $name installed"
            else
                echo "package $name missing"
            fi ;;
        user)
            if id -u "$name" >/dev/null 2>&1; then echo "user $name present"; else echo "user $name missing"; fi ;;
        service)
            case "$name" in
                postfix) pidfile=$(postconf -h queue_directory 2>/dev/null || echo /var/spool/postfix)/pid/master.pid ;;
                dovecot) pidfile=/run/dovecot/master.pid ;;
                *) echo "pulumi-postfix: unknown service $name" >&2; exit 1 ;;
            esac
            if running "$pidfile"; then echo "service $name running"; else echo "service $name stopped"; fi ;;
        deployed)
            if [ -f "$name" ]; then sed -n 's/^\([a-z][a-z0-9-]*\) \([0-9][0-9A-Za-z.+~-]*\)$/deployed \1 \2/p' "$name"; fi ;;
        "") ;;
        *) echo "pulumi-postfix: unexpected request: $what" >&2; exit 1 ;;
    esac
done

echo "release $(cat /etc/debian_version 2>/dev/null || echo unknown)"
if command -v postconf >/dev/null 2>&1 && [ -f /etc/postfix/main.cf ]; then
    echo "postfix $(postconf -h mail_version)"
    if command -v dovecot >/dev/null 2>&1; then echo "dovecot $(dovecot --version | cut -d ' ' -f 1)"; fi
    echo postconf
    postconf -n
elif command -v dovecot >/dev/null 2>&1; then
    echo "dovecot $(dovecot --version | cut -d ' ' -f 1)"
fi
