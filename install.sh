#!/usr/bin/env bash
# install.sh: install (or remove) custos on this host. Run as root.
#
#   ./install.sh [--prefix DIR] [--user NAME]...      build, install, assign
#   ./install.sh --binaries DIR ...                   install prebuilt binaries
#   ./install.sh --uninstall [--purge] [--prefix DIR]
#
# What an installation is, and why each piece looks the way it does:
#
#   PREFIX/bin/custos-shell  root:root 4755      setuid root, like login, su and
#                            sudo. Its privileged stage (src/recorder/
#                            privilege.rs lists every act) takes the user's
#                            terminal, contains the session in a cgroup, and
#                            then drops for good: the recorder to `custos`, so
#                            the user can neither signal, trace nor read it,
#                            the shell to the user.
#   PREFIX/bin/custos        root:root 0711      every other subcommand. Not
#                            readable by users: the kernel then marks every
#                            process exec'd from it not dumpable, so a user
#                            cannot ptrace the approvals pane (custos approve
#                            and its launcher run as the user) and change
#                            what it runs.
#   /etc/custos/custos.toml  root:root 0644      the only config a privileged
#                            shell reads; written once, never overwritten.
#   /var/lib/custos          custos:custos 0700  the spool: recordings and
#                            session locks, out of every user's reach.
#   /var/lib/custos/host.key custos:custos 0600  the host's ed25519 key that
#                            signs every recording chunk ([evidence] key);
#                            made once by `custos keygen`, kept on reinstall.
#                            host.key.pub beside it is the public half.
#   /var/lib/custos-install  root:root 0700      install.sh's own state: the
#                            login shells it replaced, for --uninstall.
#   /etc/bash.bashrc         three lines at the top (removed by --uninstall)
#                            that load the command gate into a bash of a
#                            session without a terminal that skips BASH_ENV.
#   /etc/systemd/system/custos-upload.{service,timer}  root:root 0644
#                            every 5 minutes, `custos upload --once` as the
#                            custos user delivers what the spool still holds
#                            (only where systemd runs; see install/).
#
# The install state is deliberately not inside the spool: uninstall feeds it
# to `usermod -s` as root, and the spool belongs to `custos`, which could
# then rename the directory and choose any user's (root's) next shell.
#
# custos-shell is NOT added to /etc/shells. chsh lets a user pick only a
# shell listed there, and Debian's chsh refuses outright to change a login
# shell that is not listed (its PAM stack starts with pam_shells, and chsh
# itself treats an unlisted shell as restricted). So an unlisted custos-shell
# is what stops users from moving their own login away from the recorder.
# Logins do not need the listing: sshd only checks that the shell exists and
# is executable, and Debian's sshd, login and su PAM stacks do not include
# pam_shells. (If a site adds pam_shells to /etc/pam.d/sshd, logins of
# recorded users fail; `custos doctor` warns if the shell is listed.)
#
# Idempotent: running it again reinstalls the binaries, keeps the config,
# and remembers each user's original shell only once.

set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

prefix=/usr/local
binaries=
users=()
uninstall=false
purge=false

readonly service=custos
readonly config_dir=/etc/custos
readonly config_file=$config_dir/custos.toml
readonly spool=/var/lib/custos
readonly state_dir=/var/lib/custos-install
readonly previous_shells=$state_dir/previous-shells
readonly unit_dir=/etc/systemd/system
readonly units=(custos-upload.service custos-upload.timer)

usage() {
    cat <<EOF
Usage: $prog [OPTIONS]

Install custos: custos-shell (setuid root; the recorder runs as '$service') and custos
into PREFIX/bin, the default configuration into $config_file (never
overwritten), and the spool $spool. Ends with 'custos doctor'.

Options:
  --prefix DIR     install into DIR/bin (default: /usr/local)
  --binaries DIR   use prebuilt custos and custos-shell from DIR instead of
                   running 'cargo build --release --locked'
  --user NAME      make custos-shell NAME's login shell (repeatable); the
                   previous shell is remembered for --uninstall
  --uninstall      restore remembered login shells and remove the binaries;
                   keeps $config_dir and $spool
  --purge          with --uninstall: also remove $config_dir, $spool,
                   the install state and the '$service' user and group
  -h, --help       show this help
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 1
}

log() {
    echo "$prog: $*"
}

while (($#)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --binaries) binaries=${2:?--binaries needs a directory}; shift 2 ;;
        --binaries=*) binaries=${1#*=}; shift ;;
        --user) users+=("${2:?--user needs a name}"); shift 2 ;;
        --user=*) users+=("${1#*=}"); shift ;;
        --uninstall) uninstall=true; shift ;;
        --purge) purge=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[[ $prefix == /* ]] || die "--prefix must be an absolute path: $prefix"
prefix=${prefix%/}
bindir=$prefix/bin
shell_path=$bindir/custos-shell
if $purge && ! $uninstall; then
    die "--purge only goes with --uninstall"
fi
(( $(id -u) == 0 )) || die "must run as root (it creates a service user and a setuid binary)"

login_shell_of() {
    getent passwd "$1" | cut -d: -f7
}

# -------------------------------------------------------------- uninstall

restore_shells() {
    [[ -f $previous_shells ]] || return 0
    local name shell current keep=()
    while IFS=: read -r name shell; do
        [[ -n $name ]] || continue
        current=$(login_shell_of "$name" || true)
        if [[ -z $current ]]; then
            log "user $name no longer exists; forgetting its previous shell"
        elif [[ $current != */custos-shell ]]; then
            log "user $name's shell is now $current, not custos-shell; left alone"
        elif [[ $shell != /* ]]; then
            log "ignoring a malformed entry for $name: $shell"
            keep+=("$name:$shell")
        else
            usermod -s "$shell" "$name"
            log "restored $name's login shell: $shell"
        fi
    done <"$previous_shells"
    if ((${#keep[@]})); then
        printf '%s\n' "${keep[@]}" >"$previous_shells"
    else
        rm -f "$previous_shells"
    fi
}

warn_stranded_users() {
    # Users whose login shell custos-shell became without install.sh: after
    # removal their logins fail, which is the safe side (no unrecorded shell).
    local stranded
    stranded=$(getent passwd | awk -F: -v s="$shell_path" '$7 == s { print $1 }')
    if [[ -n $stranded ]]; then
        echo "$prog: warning: these users still have $shell_path as login shell and cannot log in until it is changed:" >&2
        local u
        for u in $stranded; do
            echo "    usermod -s /bin/bash $u" >&2
        done
    fi
}

have_systemd() {
    [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

remove_units() {
    if have_systemd; then
        systemctl disable --now custos-upload.timer >/dev/null 2>&1 || true
    fi
    local unit removed=false
    for unit in "${units[@]}"; do
        if [[ -e $unit_dir/$unit ]]; then
            rm -f "$unit_dir/$unit"
            removed=true
        fi
    done
    if $removed; then
        have_systemd && systemctl daemon-reload || true
        log "removed the custos-upload timer"
    fi
}

# A bash that sshd runs at shell level 1 (or with a socket on stdin) reads
# /etc/bash.bashrc and ~/.bashrc instead of $BASH_ENV, and an interactive
# bash reads them too: the hook at the top of /etc/bash.bashrc loads the
# command gate of a session without a terminal there as well. It does
# nothing outside such a session (BASH_ENV is not custos' hooks file).
readonly bashrc=/etc/bash.bashrc
readonly hook_begin='# >>> custos: the command gate in sessions without a terminal (install.sh) >>>'
readonly hook_end='# <<< custos <<<'

remove_bashrc_hook() {
    [[ -f $bashrc ]] && grep -qxF "$hook_begin" "$bashrc" || return 0
    local tmp
    tmp=$(mktemp "$bashrc.XXXXXX")
    awk -v b="$hook_begin" -v e="$hook_end" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$bashrc" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$bashrc"
    log "removed the command gate's hook from $bashrc"
}

add_bashrc_hook() {
    remove_bashrc_hook
    local tmp
    tmp=$(mktemp "$bashrc.XXXXXX")
    {
        echo "$hook_begin"
        # shellcheck disable=SC2016 # written for bash to expand later
        echo 'case ${BASH_ENV-} in /tmp/custos-gate-*/batch.bash) . "$BASH_ENV" ;; esac'
        echo "$hook_end"
        [[ -f $bashrc ]] && cat "$bashrc"
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$bashrc"
    log "added the command gate's hook to $bashrc"
}

if $uninstall; then
    restore_shells
    remove_bashrc_hook
    remove_units
    rm -f "$bindir/custos-shell" "$bindir/custos"
    log "removed $bindir/custos-shell and $bindir/custos"
    warn_stranded_users
    if $purge; then
        rm -rf "$config_dir" "$spool" "$state_dir"
        log "purged $config_dir, $spool and $state_dir"
        if getent passwd "$service" >/dev/null; then
            userdel "$service"
        fi
        if getent group "$service" >/dev/null; then
            groupdel "$service"
        fi
        log "removed the $service user and group"
    else
        log "kept $config_dir and $spool (use --purge to remove them)"
    fi
    exit 0
fi

# -------------------------------------------------------------- install

# Check every name before changing anything.
for name in ${users[@]+"${users[@]}"}; do
    getent passwd "$name" >/dev/null || die "no such user: $name"
done

if [[ -z $binaries ]]; then
    command -v cargo >/dev/null ||
        die "cargo not found: build with 'cargo build --release --locked' and pass --binaries target/release"
    log "building release binaries (this takes several minutes)"
    cargo build --release --locked --manifest-path "$here/Cargo.toml"
    binaries=$here/target/release
fi
for bin in custos custos-shell; do
    [[ -x $binaries/$bin ]] || die "$binaries/$bin is missing or not executable"
done

if ! getent group "$service" >/dev/null; then
    groupadd --system "$service"
    log "created group $service"
fi
if ! getent passwd "$service" >/dev/null; then
    useradd --system --no-create-home --home-dir "$spool" --shell /usr/sbin/nologin \
        --gid "$service" --comment "custos session recorder" "$service"
    log "created user $service"
fi

# Each binary is staged next to its destination and renamed into place, so
# a login during an upgrade runs either the old or the new binary, never a
# half-copied one or one whose owner and setuid bits are not yet set.
# (install sets the mode after the owner: chown would clear setuid bits.)
mkdir -p "$bindir"
install_binary() {
    local src=$1 dest=$2 owner=$3 mode=$4 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    install -o "$owner" -g "$owner" -m "$mode" "$src" "$tmp"
    mv -f "$tmp" "$dest"
}
install_binary "$binaries/custos" "$bindir/custos" root 0711
install_binary "$binaries/custos-shell" "$shell_path" root 4755
log "installed $bindir/custos and $shell_path (setuid root; the recorder runs as $service)"

install -d -o root -g root -m 0755 "$config_dir"
if [[ -e $config_file ]]; then
    log "kept the existing $config_file"
else
    # Written from the defaults embedded in the binary just installed, so the
    # file and the built-in defaults cannot drift apart.
    tmp=$(mktemp "$config_file.XXXXXX")
    "$bindir/custos" doctor --print-default-config >"$tmp"
    chown root:root "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$config_file"
    log "wrote $config_file"
fi

# Only the top directory: recordings below it already belong to custos.
mkdir -p "$spool"
chown "$service:$service" "$spool"
chmod 0700 "$spool"

# The signing key: only when none exists (a new key would leave the
# recordings already made verifiable only with the old public key). Its path
# comes from the config just installed, never from the environment.
public_key=$(env -u CUSTOS_CONFIG "$bindir/custos" keygen --if-missing --owner "$service")
log "host key (give it to auditors and the collector): $public_key"

install -d -o root -g root -m 0700 "$state_dir"
remember_shell() {
    # One line per user; a later install replaces it only while the user's
    # shell is not custos-shell, so the original survives reinstalls.
    local name=$1 shell=$2 tmp
    tmp=$(mktemp "$previous_shells.XXXXXX")
    if [[ -f $previous_shells ]]; then
        awk -F: -v n="$name" '$1 != n' "$previous_shells" >"$tmp"
    fi
    echo "$name:$shell" >>"$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" "$previous_shells"
}
for name in ${users[@]+"${users[@]}"}; do
    current=$(login_shell_of "$name")
    [[ -n $current ]] || current=/bin/sh # an empty field means /bin/sh
    if [[ $current != */custos-shell ]]; then
        remember_shell "$name" "$current"
    fi
    if [[ $current != "$shell_path" ]]; then
        usermod -s "$shell_path" "$name"
        log "$name's login shell is now $shell_path (was $current)"
    fi
done

# The upload timer: units from install/, with this install's bindir. Written
# whether or not systemd runs now (a container image may boot it later);
# enabled only where it runs.
if [[ -d $unit_dir ]]; then
    for unit in "${units[@]}"; do
        tmp=$(mktemp "$unit_dir/$unit.XXXXXX")
        sed "s|@BINDIR@|$bindir|g" "$here/install/$unit" >"$tmp"
        chmod 0644 "$tmp"
        mv -f "$tmp" "$unit_dir/$unit"
    done
    if have_systemd; then
        systemctl daemon-reload
        systemctl enable --now custos-upload.timer >/dev/null
        log "enabled custos-upload.timer (custos upload --once every 5 minutes)"
    else
        log "installed custos-upload.timer into $unit_dir (systemd is not running: not enabled)"
    fi
fi

add_bashrc_hook

log "checking the installation: $bindir/custos doctor --prefix $prefix"
"$bindir/custos" doctor --prefix "$prefix"
