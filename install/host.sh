# install/host.sh: what makes a host a custos host, once, for both ways in:
# install.sh sources it from the checkout, and the Debian package (see
# install/deb.sh) ships it as /usr/lib/custos/host.sh for its maintainer
# scripts. Bash; sourced, never run. Callers define `log MESSAGE`.
#
# Every function is idempotent: an upgrade or a second install keeps the
# configuration, the spool and the host key, and adds nothing twice.

readonly custos_service=custos
readonly custos_config_dir=/etc/custos
readonly custos_config_file=$custos_config_dir/custos.toml
readonly custos_spool=/var/lib/custos

# The service user the recorder runs as: it owns the spool and the key.
custos_ensure_service_user() {
    if ! getent group "$custos_service" >/dev/null; then
        groupadd --system "$custos_service"
        log "created group $custos_service"
    fi
    if ! getent passwd "$custos_service" >/dev/null; then
        useradd --system --no-create-home --home-dir "$custos_spool" --shell /usr/sbin/nologin \
            --gid "$custos_service" --comment "custos session recorder" "$custos_service"
        log "created user $custos_service"
    fi
}

# The configuration, written once from the defaults embedded in the binary
# (so the file and the built-in defaults cannot drift apart); the spool
# (only the top directory: recordings below it already belong to custos);
# and the host's signing key, made only when none exists (a new key would
# leave the recordings already made verifiable only with the old public
# key). The key's path comes from the config just written, never from the
# environment.
custos_prepare_host() {
    local custos=$1 tmp public_key
    install -d -o root -g root -m 0755 "$custos_config_dir"
    if [[ -e $custos_config_file ]]; then
        log "kept the existing $custos_config_file"
    else
        tmp=$(mktemp "$custos_config_file.XXXXXX")
        "$custos" doctor --print-default-config >"$tmp"
        chown root:root "$tmp"
        chmod 0644 "$tmp"
        mv -f "$tmp" "$custos_config_file"
        log "wrote $custos_config_file"
    fi
    mkdir -p "$custos_spool"
    chown "$custos_service:$custos_service" "$custos_spool"
    chmod 0700 "$custos_spool"
    public_key=$(env -u CUSTOS_CONFIG "$custos" keygen --if-missing --owner "$custos_service")
    log "host key (give it to auditors and the collector): $public_key"
}

# A bash that sshd runs at shell level 1 (or with a socket on stdin) reads
# /etc/bash.bashrc and ~/.bashrc instead of $BASH_ENV, and an interactive
# bash reads them too: the hook at the top of /etc/bash.bashrc loads the
# command gate of a session without a terminal there as well. It does
# nothing outside such a session (BASH_ENV is not custos' hooks file).
readonly custos_bashrc=/etc/bash.bashrc
readonly custos_hook_begin='# >>> custos: the command gate in sessions without a terminal (install.sh) >>>'
readonly custos_hook_end='# <<< custos <<<'

custos_remove_bashrc_hook() {
    [[ -f $custos_bashrc ]] && grep -qxF "$custos_hook_begin" "$custos_bashrc" || return 0
    local tmp
    tmp=$(mktemp "$custos_bashrc.XXXXXX")
    awk -v b="$custos_hook_begin" -v e="$custos_hook_end" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' "$custos_bashrc" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$custos_bashrc"
    log "removed the command gate's hook from $custos_bashrc"
}

custos_add_bashrc_hook() {
    custos_remove_bashrc_hook
    local tmp
    tmp=$(mktemp "$custos_bashrc.XXXXXX")
    {
        echo "$custos_hook_begin"
        # shellcheck disable=SC2016 # written for bash to expand later
        echo 'case ${BASH_ENV-} in /tmp/custos-gate-*/batch.bash) . "$BASH_ENV" ;; esac'
        echo "$custos_hook_end"
        [[ -f $custos_bashrc ]] && cat "$custos_bashrc"
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$custos_bashrc"
    log "added the command gate's hook to $custos_bashrc"
}

custos_have_systemd() {
    [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

# Users whose login shell is still `shell` once it is gone: their logins
# fail, which is the safe side (no unrecorded shell), but they must hear.
custos_warn_stranded_users() {
    local shell=$1 stranded u
    stranded=$(getent passwd | awk -F: -v s="$shell" '$7 == s { print $1 }')
    if [[ -n $stranded ]]; then
        echo "custos: warning: these users still have $shell as login shell and cannot log in until it is changed:" >&2
        for u in $stranded; do
            echo "    usermod -s /bin/bash $u" >&2
        done
    fi
}

# Purge: the configuration, the spool (recordings not yet delivered go
# with it) and the service user.
custos_purge_host() {
    rm -rf "$custos_config_dir" "$custos_spool"
    log "purged $custos_config_dir and $custos_spool"
    if getent passwd "$custos_service" >/dev/null; then
        userdel "$custos_service" 2>/dev/null || true
    fi
    if getent group "$custos_service" >/dev/null; then
        groupdel "$custos_service" 2>/dev/null || true
    fi
    log "removed the $custos_service user and group"
}
