# custos: command gate for bash (4.4 and later).
#
# Loaded as $ENV by a bash that custos-shell starts with --posix: in posix
# mode bash reads $ENV and no startup files of its own, so this file runs
# first, turns posix mode off, reads exactly the startup files bash would
# have read, and only then installs the gate, after the user's own files.
# The gate is re-asserted at every prompt.
#
# How a line is gated:
#  - every key that accepts a line (Enter, C-j, C-o, edit-and-execute, in the
#    emacs and vi keymaps) runs a macro: first __custos_enter (bind -x), which
#    asks the recorder about the whole line, then a helper key that is bound,
#    by __custos_enter, either to accept-line or to nothing;
#  - a DEBUG trap under extdebug is the backstop: a command that reaches
#    execution without passing the Enter gate is checked on its own, and
#    skipped (trap status 1) when refused;
#  - PROMPT_COMMAND sends a heartbeat at every prompt, with the nonce of the
#    recorder's last reply and the state of the hooks, so the recorder sees
#    at once when they are gone.
#
# The recorder speaks on the descriptor it connected before exec (fd 9,
# moved to a free one here); see src/gate/wire.rs for the messages.

builtin set +o posix
if [[ -n ${CUSTOS_ENV_ORIG+set} ]]; then ENV=$CUSTOS_ENV_ORIG; else builtin unset ENV; fi
__custos_token=$CUSTOS_GATE_TOKEN
__custos_norc=${CUSTOS_BASH_NORC-} __custos_noprofile=${CUSTOS_BASH_NOPROFILE-}
builtin unset CUSTOS_ENV_ORIG CUSTOS_GATE_TOKEN CUSTOS_BASH_NORC CUSTOS_BASH_NOPROFILE
builtin exec {__custos_fd}<&9 9<&-

# The startup files bash reads itself when not in posix mode (none with
# --norc or --noprofile, as the user asked).
if builtin shopt -q login_shell; then
  if [[ -z $__custos_noprofile ]]; then
    [[ -r /etc/profile ]] && builtin source /etc/profile
    for __custos_f in ~/.bash_profile ~/.bash_login ~/.profile; do
        if [[ -r $__custos_f ]]; then builtin source "$__custos_f"; break; fi
    done
    builtin unset __custos_f
  fi
elif [[ -z $__custos_norc ]]; then
    [[ -r /etc/bash.bashrc ]] && builtin source /etc/bash.bashrc
    [[ -r ~/.bashrc ]] && builtin source ~/.bashrc
fi
builtin unset __custos_norc __custos_noprofile

# State: p = prompt commands running, e = editing a line, r = an accepted
# line is running, d = a refused multi-line command is being skipped,
# b = a line that bypassed the Enter gate is running (each command checked).
__custos_state=p
__custos_nonce=
__custos_pending=
__custos_status=0

# Sends one message: a header line, then the fields as netstrings.
__custos_send() {
    local LC_ALL=C f out="$1 $(( $# - 1 ))"$'\n'
    shift
    for f in "$@"; do out+="${#f}:$f"; done
    builtin printf '%s' "$out" >&"$__custos_fd" 2>/dev/null
}

# Reads one reply into __custos_reply (words) and __custos_body.
__custos_recv() {
    local LC_ALL=C n
    __custos_body=
    # WAIT: the line is held for approval; the recorder says so every 10 s.
    while :; do
        IFS=' ' builtin read -r -t 30 -u "$__custos_fd" -a __custos_reply || return 1
        [[ ${__custos_reply[0]} == WAIT ]] || break
    done
    __custos_nonce=${__custos_reply[1]}
    n=${__custos_reply[2]:-0}
    if [[ ${__custos_reply[0]} == DENY ]] && (( n > 0 )); then
        IFS= builtin read -r -t 5 -N "$n" -u "$__custos_fd" __custos_body || return 1
    fi
}

# Asks the recorder about a line. $1 = enter|backstop, $2 = the line,
# $3 = the simple command about to run (backstop only).
__custos_ask() {
    local rest=$2 re='\$\{?([A-Za-z_][A-Za-z0-9_]*)' name fields=("$PWD" "$2" "${3-}")
    while [[ $rest =~ $re ]]; do
        name=${BASH_REMATCH[1]}
        rest=${rest#*"${BASH_REMATCH[0]}"}
        [[ -n ${!name+set} ]] && fields+=("$name" "${!name}")
    done
    __custos_send "CHECK $__custos_nonce $1" "${fields[@]}" && __custos_recv
}

__custos_refused() {
    builtin printf '\e[1;31mcustos:\e[0m %s\n' "${__custos_body:-the command gate is unavailable; nothing was run}" >&2
}

# Enter (and every other accepting key), through readline.
__custos_enter() {
    local line=$READLINE_LINE
    [[ -n $__custos_pending ]] && line=$__custos_pending$'\n'$READLINE_LINE
    if ! __custos_ask enter "$line"; then
        __custos_refused
        builtin bind '"\C-x\C-_a": ""'
        return
    fi
    case ${__custos_reply[0]} in
    ALLOW)
        __custos_pending=
        __custos_state=r
        builtin bind '"\C-x\C-_a": accept-line'
        ;;
    MORE)
        # Not a whole command yet: bash reads the rest with PS2, and the
        # whole text is checked when it is complete.
        __custos_pending=$line
        builtin bind '"\C-x\C-_a": accept-line'
        ;;
    *)
        __custos_refused
        if [[ -n $__custos_pending ]]; then
            # The first lines are already with the parser: let it have the
            # rest, and skip every command of it.
            __custos_pending=
            __custos_state=d
            builtin bind '"\C-x\C-_a": accept-line'
        else
            builtin bind '"\C-x\C-_a": ""'
        fi
        ;;
    esac
}

# edit-and-execute-command, gated: edit the line, put it back, then Enter.
__custos_edit() {
    local f
    f=$(builtin command mktemp "${TMPDIR:-/tmp}/bash-edit.XXXXXX") || return
    builtin printf '%s\n' "$READLINE_LINE" >"$f"
    ${VISUAL:-${EDITOR:-vi}} "$f"
    READLINE_LINE=$(<"$f")
    READLINE_POINT=${#READLINE_LINE}
    builtin command rm -f "$f"
    __custos_enter
}

# The backstop: runs before every command that did not pass the Enter gate.
__custos_debug() {
    # The hooks' own commands always run: they reset the state.
    [[ $BASH_COMMAND == __custos_* || ${FUNCNAME[1]-} == __custos_* ]] && return 0
    case $__custos_state in
    p|r) return 0 ;;
    d) return 1 ;;
    esac
    local line
    line=$(HISTTIMEFORMAT= builtin history 1)
    line=${line#*[0-9]  }
    __custos_ask backstop "$line" "$BASH_COMMAND" || return 1
    [[ ${__custos_reply[0]} == ALLOW ]] && { __custos_state=b; return 0; }
    __custos_refused
    return 1
}

__custos_install() {
    builtin shopt -s extdebug
    builtin trap '[[ $__custos_state == r || ${FUNCNAME-} == __custos_* ]] || __custos_debug' DEBUG
    local map key
    for map in emacs vi-insert vi-command; do
        builtin bind -m "$map" -x '"\C-x\C-_c": __custos_enter'
        builtin bind -m "$map" -x '"\C-x\C-_e": __custos_edit'
        builtin bind -m "$map" '"\C-x\C-_a": ""'
        builtin bind -m "$map" '"\C-x\C-_o": operate-and-get-next'
        for key in '\C-m' '\C-j'; do
            builtin bind -m "$map" "\"$key\": \"\\C-x\\C-_c\\C-x\\C-_a\""
        done
    done
    builtin bind -m emacs '"\C-o": "\C-x\C-_c\C-x\C-_o"'
    builtin bind -m emacs '"\C-x\C-e": "\C-x\C-_e\C-x\C-_a"'
    builtin bind -m vi-command '"v": "\C-x\C-_e\C-x\C-_a"'
    if [[ ${PROMPT_COMMAND@a} == *a* ]]; then
        local pc=() c
        for c in "${PROMPT_COMMAND[@]}"; do
            [[ $c == __custos_* ]] || pc+=("$c")
        done
        PROMPT_COMMAND=(__custos_prompt "${pc[@]}" __custos_editing)
    else
        # A string: ours go on lines of their own around the user's.
        local pc=${PROMPT_COMMAND-}
        pc=${pc#__custos_prompt$'\n'}
        pc=${pc%$'\n'__custos_editing}
        PROMPT_COMMAND=__custos_prompt$'\n'${pc:-:}$'\n'__custos_editing
    fi
}

# First of PROMPT_COMMAND: the heartbeat, then the hooks put back.
__custos_prompt() {
    __custos_status=$?
    __custos_state=p
    __custos_pending=
    {
        builtin printf 'PROMPT %s %s %s\n' "$__custos_nonce" "$__custos_status" "$$"
        builtin trap -p DEBUG
        builtin shopt extdebug
        builtin bind -m emacs -s
        builtin bind -m emacs -X
        builtin printf '%s END\n' "$__custos_nonce"
    } >&"$__custos_fd" 2>/dev/null
    __custos_recv
    __custos_install
    return "$__custos_status"
}

# Last of PROMPT_COMMAND: from here on, the line editor has the terminal.
__custos_editing() {
    __custos_state=e
    return "$__custos_status"
}

builtin printf 'HELLO %s bash %s %s\n' "$__custos_token" "$$" "$BASH_VERSION" >&"$__custos_fd"
__custos_recv
builtin unset __custos_token
__custos_install
