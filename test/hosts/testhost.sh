#!/usr/bin/env bash
# testhost.sh: disposable Debian test hosts for the pulumi-postfix end-to-end tests.
#
# A "host" is a Debian root file system (debootstrap minbase) unpacked into a folder, with its
# own loopback address (ADDR/32 on lo) and an sshd that listens only on ADDR:22. It shares the
# machine's network namespace and kernel. Two kinds:
#   chroot   proc/dev/devpts mounted, sshd started in a chroot; no systemd runs inside
#   boot     (--boot) booted by systemd-nspawn: systemd is PID 1 and starts sshd, postfix, ...
#            like on a real server; `reboot` powers it off and boots the same root again
#
# Usage:
#   testhost.sh rootfs SUITE [--boot]        build/cache the root fs tarball; prints its path
#   testhost.sh up NAME SUITE ADDR [--boot]  start host NAME (ADDR = 127.x.y.z); prints host JSON
#   testhost.sh exec NAME -- CMD...          run CMD as root inside host NAME (status passed through)
#   testhost.sh reboot NAME                  power a booted host off and boot it again
#   testhost.sh down NAME                    stop and remove host NAME (idempotent)
#   testhost.sh down-all                 down every host under the hosts dir
#   testhost.sh list                     list hosts (name suite address state)
#
# Environment:
#   PULUMI_POSTFIX_CACHE   cache dir (default $HOME/.cache/pulumi-postfix); tarballs in rootfs/
#   PULUMI_POSTFIX_HOSTS   hosts dir (default /tmp/pulumi-postfix-hosts)
#   PULUMI_POSTFIX_MIRROR  Debian mirror URI (default: taken from this machine's apt sources)
#
# Only `up` writes to stdout (one JSON object) and `rootfs` (the tarball path) and `list`;
# all progress and diagnostics go to stderr.
set -eu
set -o pipefail

CACHE_DIR=${PULUMI_POSTFIX_CACHE:-$HOME/.cache/pulumi-postfix}
HOSTS_DIR=${PULUMI_POSTFIX_HOSTS:-/tmp/pulumi-postfix-hosts}

# Packages installed into the image by debootstrap.
ROOTFS_PACKAGES=openssh-server,sudo,iproute2,procps,ca-certificates
# A booted image also has an init system, and journald's reader.
BOOT_PACKAGES=systemd-sysv,dbus
# Packages only downloaded into /var/cache/apt/archives (the product installs them). A booted
# image also holds Debian's default MTA, which tests install to see it replaced (a separate
# download: exim4 and postfix conflict).
PREFETCH_PACKAGES="postfix postfix-doc dovecot-core"
PREFETCH_BOOT_PACKAGES="exim4-daemon-light"

SSH_PORT=22
UP_WAIT_SECONDS=20
BOOT_WAIT_SECONDS=90
PATH_INSIDE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'testhost: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() { date +%s%3N; }
elapsed() { # START_MS -> "12.3s"
    local d=$(( $(now_ms) - $1 ))
    printf '%d.%ds' $((d / 1000)) $(((d % 1000) / 100))
}

usage() {
    sed -n 's/^#   \(testhost\.sh .*\)/\1/p' "$0" >&2
    exit 2
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (mounts, chroot, ip addr)"
}

check_suite() {
    case "$1" in
        bookworm | trixie) ;;
        *) die "unsupported suite '$1' (bookworm | trixie)" ;;
    esac
}

check_name() {
    [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || die "bad host name '$1' (lowercase letters, digits, '-')"
}

check_addr() {
    local a=$1 o
    [[ "$a" =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "address '$a' is not a 127.x.y.z loopback address"
    for o in "${BASH_REMATCH[@]:1}"; do
        [ "$o" -le 255 ] || die "bad address '$a'"
    done
    [ "$a" != 127.0.0.1 ] || die "127.0.0.1 is the machine's own address; use another 127.x.y.z"
}

json_str() { # JSON string literal
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# ---------------------------------------------------------------------------------------------
# Mirror: from this machine's apt sources (deb822 .sources first, then sources.list).
detect_mirror() {
    if [ -n "${PULUMI_POSTFIX_MIRROR:-}" ]; then
        printf '%s\n' "$PULUMI_POSTFIX_MIRROR"
        return
    fi
    local codename uri f
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release; set PULUMI_POSTFIX_MIRROR"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # A stanza with Types: deb whose Suites contain the bare codename.
        uri=$(awk -v cn="$codename" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; suites = ""; uris = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/) types = " " substr($i, 7) " "
                    else if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
                    else if ($i ~ /^URIs:/) uris = substr($i, 6)
                }
                if (types ~ /[ \t]deb[ \t]/ && suites ~ ("[ \t]" cn "[ \t]") && uris != "") {
                    split(uris, u, /[ \t]+/)
                    for (j in u) if (u[j] != "") { print u[j]; exit }
                }
            }' "$f")
        if [ -n "$uri" ]; then
            printf '%s\n' "$uri"
            return
        fi
    done
    if [ -f /etc/apt/sources.list ]; then
        uri=$(awk -v cn="$codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == cn) { print $i; exit }
            }' /etc/apt/sources.list)
        if [ -n "$uri" ]; then
            printf '%s\n' "$uri"
            return
        fi
    fi
    die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set PULUMI_POSTFIX_MIRROR"
}

# ---------------------------------------------------------------------------------------------
# Mount helpers.

# Mount points at or below DIR, deepest first (from /proc/self/mountinfo).
mounts_under() {
    local dir=$1
    awk -v d="$dir" '{ p = $5; gsub(/\\040/, " ", p); if (p == d || index(p, d "/") == 1) print p }' \
        /proc/self/mountinfo | sort -r
}

unmount_all_under() {
    local dir=$1 m i
    for i in 1 2 3; do
        while IFS= read -r m; do
            [ -n "$m" ] || continue
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
        done < <(mounts_under "$dir")
        [ -z "$(mounts_under "$dir")" ] && return 0
    done
    return 1
}

# rm -rf, but never while anything is mounted below (a bound /dev would be emptied).
safe_rm_tree() {
    local dir=$1
    [ -e "$dir" ] || return 0
    unmount_all_under "$dir" || die "mounts remain under $dir; not removing it"
    rm -rf --one-file-system "$dir"
}

# ---------------------------------------------------------------------------------------------
# Root file system image. Everything that defines the image's content is in build_rootfs and the
# package variables above; their text is hashed into the cache key.
build_rootfs() { # SUITE DIR MIRROR
    local suite=$1 dir=$2 mirror=$3
    debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$suite" "$dir" "$mirror" >&2
    # tar records the root's mode; a 0700 root breaks postfix (postfix user cannot traverse /).
    chmod 755 "$dir"
    printf '#!/bin/sh\n# testhost: no service starts from package scripts\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    printf 'deb %s %s main\n' "$mirror" "$suite" >"$dir/etc/apt/sources.list"
    chroot "$dir" env -i PATH="$PATH_INSIDE" apt-get update >&2
    # shellcheck disable=SC2086  # word list
    chroot "$dir" env -i PATH="$PATH_INSIDE" DEBIAN_FRONTEND=noninteractive \
        apt-get install --download-only -y $PREFETCH_PACKAGES >&2
    # Non-root login user with passwordless sudo.
    chroot "$dir" useradd --create-home --shell /bin/bash deploy
    printf 'deploy ALL=(ALL) NOPASSWD:ALL\n' >"$dir/etc/sudoers.d/deploy"
    chmod 0440 "$dir/etc/sudoers.d/deploy"
    # Per-host keys are made by `up`; no stale runtime state in the image.
    rm -f "$dir"/etc/ssh/ssh_host_*
    rm -rf "${dir:?}"/run/* "${dir:?}"/tmp/*
    [ ! -e "$dir/run/systemd/system" ] || die "image has /run/systemd/system"
}

# The booted image: the chroot image with an init system, whose package scripts do start their
# services (no policy-rc.d), as on a real server.
build_boot_rootfs() { # SUITE DIR MIRROR
    local dir=$2 ROOTFS_PACKAGES=$ROOTFS_PACKAGES,$BOOT_PACKAGES
    build_rootfs "$@"
    rm -f "$dir/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2086  # word list
    chroot "$dir" env -i PATH="$PATH_INSIDE" DEBIAN_FRONTEND=noninteractive \
        apt-get install --download-only -y $PREFETCH_BOOT_PACKAGES >&2
    # No login prompts on the pipe console; the journal kept on disk, so that what happened
    # before a reboot can be read after it.
    ln -sf /dev/null "$dir/etc/systemd/system/console-getty.service"
    ln -sf /dev/null "$dir/etc/systemd/system/getty@tty1.service"
    install -d -m 2755 "$dir/var/log/journal"
}

rootfs_key() { # SUITE MIRROR KIND
    {
        declare -f build_rootfs
        printf '%s\n' "$ROOTFS_PACKAGES" "$PREFETCH_PACKAGES" "$1" "$2"
        if [ "$3" = boot ]; then
            declare -f build_boot_rootfs
            printf '%s\n' "$BOOT_PACKAGES" "$PREFETCH_BOOT_PACKAGES"
        fi
    } | sha256sum | cut -c1-12
}

# The image's name: SUITE for a chroot host, SUITE-boot for a booted one.
image_name() { # SUITE KIND
    if [ "$2" = boot ]; then printf '%s-boot' "$1"; else printf '%s' "$1"; fi
}

# Ensure the tarball exists; sets ROOTFS_TARBALL.
ensure_rootfs() { # SUITE KIND
    local suite=$1 kind=$2 image mirror key dir tarball lock tmpdir tmptar t0 f
    check_suite "$suite"
    image=$(image_name "$suite" "$kind")
    mirror=$(detect_mirror)
    key=$(rootfs_key "$suite" "$mirror" "$kind")
    dir=$CACHE_DIR/rootfs
    tarball=$dir/$image-$key.tar.gz
    ROOTFS_TARBALL=$tarball
    if [ -f "$tarball" ]; then
        log "rootfs $image: cached $tarball"
        return 0
    fi
    need_root
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install -y debootstrap)"
    mkdir -p "$dir"
    lock=$dir/.$image.lock
    exec 9>"$lock"
    flock 9
    if [ -f "$tarball" ]; then # built by a concurrent call while we waited
        exec 9>&-
        log "rootfs $image: cached $tarball"
        return 0
    fi
    t0=$(now_ms)
    log "rootfs $image: building $tarball from $mirror"
    tmpdir=$(mktemp -d "$dir/build-$image.XXXXXX")
    tmptar=$tarball.tmp.$$
    # shellcheck disable=SC2064  # expand now: the values are fixed
    trap "safe_rm_tree '$tmpdir'; rm -f '$tmptar'" EXIT
    if [ "$kind" = boot ]; then
        build_boot_rootfs "$suite" "$tmpdir" "$mirror"
    else
        build_rootfs "$suite" "$tmpdir" "$mirror"
    fi
    unmount_all_under "$tmpdir" || die "mounts remain under $tmpdir"
    log "rootfs $image: packing"
    tar --numeric-owner --one-file-system -C "$tmpdir" -czf "$tmptar" .
    mv -f "$tmptar" "$tarball"
    safe_rm_tree "$tmpdir"
    trap - EXIT
    # Drop images of this suite with another key (old package list or build steps).
    for f in "$dir/$image"-????????????.tar.gz; do
        [ "$f" = "$tarball" ] || rm -f "$f"
    done
    exec 9>&-
    log "rootfs $image: built in $(elapsed "$t0"), $(du -h "$tarball" | cut -f1)"
}

# --boot as the last argument: the booted kind.
kind_of() { # LAST-ARG
    if [ "$1" = --boot ]; then printf 'boot'; else printf 'chroot'; fi
}

cmd_rootfs() {
    [ $# -eq 1 ] || { [ $# -eq 2 ] && [ "$2" = --boot ]; } || usage
    local t0 kind
    kind=$(kind_of "${2:-}")
    t0=$(now_ms)
    ensure_rootfs "$1" "$kind"
    log "rootfs $(image_name "$1" "$kind"): ready in $(elapsed "$t0")"
    printf '%s\n' "$ROOTFS_TARBALL"
}

# ---------------------------------------------------------------------------------------------
# Hosts.

host_dir() { printf '%s/%s' "$HOSTS_DIR" "$1"; }

# PIDs whose root directory is ROOT or below it (postfix daemons chroot further).
pids_in_root() {
    local root=$1 pat
    pat=$(printf '%s' "$root" | sed 's/[][*?\\]/\\&/g') # glob-escape for -lname
    # find, not a readlink per process: forks are slow on a loaded machine.
    { find /proc -mindepth 2 -maxdepth 2 -name root \( -lname "$pat" -o -lname "$pat/*" \) 2>/dev/null || true; } |
        cut -d/ -f3
}

sshd_pid() { # ROOT -> pid of the listening sshd, if alive
    local root=$1 pid
    pid=$(cat "$root/run/sshd.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] || return 1
    printf '%s\n' "$pid"
}

lo_has_addr() {
    ip -4 -o addr show dev lo | awk '{print $4}' | grep -qxF "$1/32"
}

port_open() { # ADDR PORT
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# Start a detached process: new session, stdio on /dev/null, no other inherited fds.
# spawn_detached wait CMD...: return CMD's exit status (for daemons that fork themselves);
# spawn_detached nowait CMD...: return at once.
spawn_detached() {
    local mode=$1
    shift
    (
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        if [ "$mode" = wait ]; then
            exec setsid -f -w "$@" </dev/null >/dev/null 2>&1
        fi
        exec setsid -f "$@" </dev/null >/dev/null 2>&1
    )
}

# sshd in the chroot, in its own UTS namespace (so `hostname` inside says NAME, postfix's
# myhostname default). Ready = sshd wrote its pid file (it does so after binding) and ADDR:22
# accepts.
start_chroot_sshd() { # NAME ROOT
    local name=$1 root=$2 addr i
    addr=$(cat "$(host_dir "$name")/address")
    # shellcheck disable=SC2016  # expanded by the inner sh
    # sshd daemonizes before it binds: a non-zero status here is an early error only.
    spawn_detached wait unshare --uts sh -c 'hostname "$1" && exec chroot "$2" /usr/sbin/sshd -E /var/log/sshd.log' \
        sh "$name" "$root" || {
        tail -n 5 "$root/var/log/sshd.log" >&2 2>/dev/null || true
        die "sshd did not start"
    }
    for ((i = 0; i < UP_WAIT_SECONDS * 5; i++)); do
        if sshd_pid "$root" >/dev/null && port_open "$addr" "$SSH_PORT"; then return 0; fi
        # sshd gone (e.g. "Cannot bind any address"): stop waiting.
        if [ "$i" -ge 5 ] && [ -z "$(pids_in_root "$root")" ]; then break; fi
        sleep 0.2
    done
    tail -n 5 "$root/var/log/sshd.log" >&2 2>/dev/null || true
    die "sshd not listening on $addr:$SSH_PORT"
}

# The systemd-nspawn process of a booted host, if it runs.
nspawn_pid() { # HOST_DIR
    local pid
    pid=$(cat "$1/nspawn.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ] || return 1
    printf '%s\n' "$pid"
}

# PID 1 of a booted host (its systemd), as the machine sees it.
init_pid() { # HOST_DIR
    local pid child
    pid=$(nspawn_pid "$1") || return 1
    child=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null)
    [ -n "$child" ] || return 1
    printf '%s\n' "$child"
}

# Boots the host's root with systemd as PID 1 (shared network: sshd and postfix bind the host's
# own loopback address), then waits until sshd answers. The console goes to HOST_DIR/console.log.
boot_host() { # HOST_DIR
    local hd=$1 name addr i
    name=${hd##*/}
    addr=$(cat "$hd/address")
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing (apt-get install -y systemd-container)"
    # --register=no --keep-unit: this machine has no systemd or D-Bus of its own to register with.
    # shellcheck disable=SC2016  # expanded by the inner sh
    spawn_detached nowait sh -c 'echo $$ >"$1/nspawn.pid"; exec systemd-nspawn -D "$1/root" --boot --machine="$2" \
        --register=no --keep-unit --console=pipe >>"$1/console.log" 2>&1' sh "$hd" "$name"
    for ((i = 0; i < BOOT_WAIT_SECONDS * 5; i++)); do
        if [ "$i" -ge 10 ] && ! nspawn_pid "$hd" >/dev/null; then
            tail -n 20 "$hd/console.log" >&2 || true
            die "systemd-nspawn exited while booting $name"
        fi
        if port_open "$addr" "$SSH_PORT"; then return 0; fi
        sleep 0.2
    done
    tail -n 20 "$hd/console.log" >&2 || true
    die "$name: sshd not listening on $addr:$SSH_PORT after ${BOOT_WAIT_SECONDS}s"
}

# A clean power-off: SIGTERM asks systemd-nspawn to halt the container; KILL after 60 s.
power_off() { # HOST_DIR
    local hd=$1 pid i
    pid=$(nspawn_pid "$hd") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        nspawn_pid "$hd" >/dev/null || return 0
        sleep 0.1
    done
    log "warning: $hd did not halt within 60s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

cmd_reboot() {
    [ $# -eq 1 ] || usage
    local name=$1 hd t0
    check_name "$name"
    need_root
    t0=$(now_ms)
    hd=$(host_dir "$name")
    [ "$(cat "$hd/kind" 2>/dev/null)" = boot ] || die "'$name' is not a booted host"
    hd=$(cd "$hd" && pwd -P)
    power_off "$hd"
    log "reboot $name: halted in $(elapsed "$t0")"
    boot_host "$hd"
    log "reboot $name: up again in $(elapsed "$t0")"
}

cmd_up() {
    [ $# -eq 3 ] || { [ $# -eq 4 ] && [ "$4" = --boot ]; } || usage
    local name=$1 suite=$2 addr=$3 kind hd root key t0 pub pid ssh_opts json
    kind=$(kind_of "${4:-}")
    check_name "$name"
    check_suite "$suite"
    check_addr "$addr"
    need_root
    t0=$(now_ms)
    hd=$(host_dir "$name")
    [ ! -e "$hd" ] || die "host '$name' already exists at $hd (run: $0 down $name)"
    if lo_has_addr "$addr"; then die "$addr is already on lo (another host?)"; fi
    ensure_rootfs "$suite" "$kind"

    mkdir -p "$HOSTS_DIR"
    mkdir -m 0755 "$hd"
    hd=$(cd "$hd" && pwd -P)
    root=$hd/root
    key=$hd/id_ed25519
    printf '%s\n' "$suite" >"$hd/suite"
    printf '%s\n' "$kind" >"$hd/kind"
    # From here on, any failure tears the half-made host down.
    # shellcheck disable=SC2064
    trap "log 'up failed; cleaning up'; cmd_down '$name' || true" EXIT

    mkdir -m 0755 "$root"
    tar --numeric-owner -xpzf "$ROOTFS_TARBALL" -C "$root"
    log "up $name: unpacked in $(elapsed "$t0")"

    # Identity.
    printf '%s\n' "$name" >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n%s\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$addr" "$name" >"$root/etc/hosts"

    # Kernel file systems (a booted host gets its own from systemd-nspawn). /dev is a private
    # bind (mounts below it must not reach the machine's /dev); devpts is a new instance so ptys
    # inside are the host's own.
    if [ "$kind" = chroot ]; then
        mount -t proc proc "$root/proc"
        mount --bind /dev "$root/dev"
        mount --make-private "$root/dev"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
    fi

    ip addr add "$addr/32" dev lo
    # Recorded only once added: `down` removes the address it finds here.
    printf '%s\n' "$addr" >"$hd/address"

    # Keys: fresh host keys; a client key outside the chroot, authorized for root and deploy.
    chroot "$root" /usr/bin/ssh-keygen -A >&2
    ssh-keygen -q -t ed25519 -N '' -C "testhost-$name" -f "$key"
    chmod 0600 "$key"
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$key.pub" "$root/root/.ssh/authorized_keys"
    install -d -m 0700 "$root/home/deploy/.ssh"
    install -m 0600 "$key.pub" "$root/home/deploy/.ssh/authorized_keys"
    chroot "$root" chown -R deploy:deploy /home/deploy/.ssh
    pub=$(awk '{print $1" "$2}' "$root/etc/ssh/ssh_host_ed25519_key.pub")
    printf '%s %s\n' "$addr" "$pub" >"$hd/known_hosts"

    # sshd: only on ADDR:22.
    cat >"$root/etc/ssh/sshd_config.d/testhost.conf" <<EOF
# written by testhost.sh
ListenAddress $addr:$SSH_PORT
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
EOF
    install -d -m 0755 "$root/run/sshd"
    chroot "$root" /usr/sbin/sshd -t >&2 || die "sshd -t failed"
    if [ "$kind" = boot ]; then
        # systemd starts sshd (ssh.service), logging to the same file as on a chroot host.
        install -d -m 0755 "$root/etc/systemd/system/ssh.service.d"
        # shellcheck disable=SC2016  # $SSHD_OPTS is for systemd to expand
        printf '[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -E /var/log/sshd.log $SSHD_OPTS\n' \
            >"$root/etc/systemd/system/ssh.service.d/testhost.conf"
        boot_host "$hd"
        log "up $name: booted in $(elapsed "$t0")"
        pid=$(nspawn_pid "$hd")
    else
        start_chroot_sshd "$name" "$root"
        pid=$(sshd_pid "$root")
    fi
    ssh_opts=(-i "$key" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes
        -o UserKnownHostsFile="$hd/known_hosts" -o ConnectTimeout=5 -o LogLevel=ERROR)
    ssh "${ssh_opts[@]}" "root@$addr" true </dev/null || die "ssh root@$addr failed"
    ssh "${ssh_opts[@]}" "deploy@$addr" sudo -n true </dev/null || die "ssh deploy@$addr sudo -n failed"

    json=$(printf '{"name":%s,"suite":%s,"kind":%s,"address":%s,"port":%d,"rootDir":%s,"privateKeyPath":%s,"knownHostsPath":%s,"users":["root","deploy"],"hostPublicKey":%s}' \
        "$(json_str "$name")" "$(json_str "$suite")" "$(json_str "$kind")" "$(json_str "$addr")" "$SSH_PORT" \
        "$(json_str "$root")" "$(json_str "$key")" "$(json_str "$hd/known_hosts")" "$(json_str "$pub")")
    printf '%s\n' "$json" >"$hd/host.json"
    trap - EXIT
    log "up $name: $suite ($kind) on $addr:$SSH_PORT (pid $pid) in $(elapsed "$t0")"
    printf '%s\n' "$json"
}

cmd_exec() {
    if [ $# -lt 3 ] || [ "$2" != "--" ]; then usage; fi
    local name=$1 hd root pid
    shift 2
    check_name "$name"
    need_root
    hd=$(host_dir "$name")
    [ -d "$hd/root" ] || die "no host '$name'"
    root=$(cd "$hd/root" && pwd -P)
    local envv=(env -i PATH="$PATH_INSIDE" HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM="${TERM:-dumb}")
    if [ "$(cat "$hd/kind" 2>/dev/null)" = boot ]; then
        # Inside the booted system: its mounts, process tree (systemctl, journalctl) and name.
        pid=$(init_pid "$hd") || die "host '$name' is not running"
        exec nsenter -t "$pid" --mount --uts --ipc --pid -- "${envv[@]}" "$@"
    fi
    if pid=$(sshd_pid "$root"); then
        exec nsenter -t "$pid" --uts chroot "$root" "${envv[@]}" "$@"
    fi
    exec chroot "$root" "${envv[@]}" "$@"
}

cmd_down() {
    [ $# -eq 1 ] || usage
    local name=$1 hd root addr pids i t0 trash
    check_name "$name"
    need_root
    t0=$(now_ms)
    hd=$(host_dir "$name")
    if [ ! -e "$hd" ]; then
        log "down $name: not up"
        return 0
    fi
    hd=$(cd "$hd" && pwd -P)
    root=$hd/root
    addr=$(cat "$hd/address" 2>/dev/null || true)

    # A booted host halts first, as a server powering off.
    power_off "$hd"

    # Processes: TERM, up to 5 s, then KILL (repeat: something may still be forking).
    pids=$(pids_in_root "$root")
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pids=$(pids_in_root "$root")
            [ -n "$pids" ] || break
            sleep 0.1
        done
        for ((i = 0; i < 20; i++)); do
            pids=$(pids_in_root "$root")
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
            sleep 0.1
        done
        [ -z "$pids" ] || log "warning: processes remain in $root: $pids"
    fi

    log "down $name: processes stopped at $(elapsed "$t0")"
    # Mounts: devpts, dev, proc (and anything else below the host), lazily if busy.
    unmount_all_under "$hd" || die "mounts remain under $hd"
    log "down $name: unmounted at $(elapsed "$t0")"

    if [ -n "$addr" ] && lo_has_addr "$addr"; then
        ip addr del "$addr/32" dev lo
    fi
    # The folder: rename it away now (the name is free at once), delete it in the background
    # (deleting a host with postfix installed took 10-25 s on a loaded machine).
    unmount_all_under "$hd" || die "mounts remain under $hd; not removing it"
    trash=$(mktemp -d "$HOSTS_DIR/.trash.XXXXXX")
    mv "$hd" "$trash/"
    spawn_detached nowait nice -n 10 rm -rf --one-file-system "$trash"
    log "down $name: done in $(elapsed "$t0")"
}

cmd_down_all() {
    [ $# -eq 0 ] || usage
    local d
    [ -d "$HOSTS_DIR" ] || return 0
    for d in "$HOSTS_DIR"/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        cmd_down "${d##*/}"
    done
    # Left-overs of interrupted background deletions.
    for d in "$HOSTS_DIR"/.trash.*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        if unmount_all_under "$d"; then spawn_detached nowait nice -n 10 rm -rf --one-file-system "$d"; fi
    done
}

cmd_list() {
    [ $# -eq 0 ] || usage
    local d name root state
    [ -d "$HOSTS_DIR" ] || return 0
    for d in "$HOSTS_DIR"/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        name=${d##*/}
        root=$(cd "$d" && pwd -P)/root
        if sshd_pid "$root" >/dev/null || nspawn_pid "$d" >/dev/null; then state=up; else state=down; fi
        printf '%s\t%s\t%s\t%s\n' "$name" "$(cat "$d/suite" 2>/dev/null || echo '?')" \
            "$(cat "$d/address" 2>/dev/null || echo '?')" "$state"
    done
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    case "$cmd" in
        rootfs) cmd_rootfs "$@" ;;
        up) cmd_up "$@" ;;
        exec) cmd_exec "$@" ;;
        reboot) cmd_reboot "$@" ;;
        down) cmd_down "$@" ;;
        down-all) cmd_down_all "$@" ;;
        list) cmd_list "$@" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
