# custos: command gate for zsh (5.3 and later).
#
# custos-shell starts zsh with ZDOTDIR pointing at a directory of its own
# whose .zshenv, .zprofile, .zshrc and .zlogin each read the user's file of
# the same name (from the user's ZDOTDIR, or HOME) and then point ZDOTDIR
# back, so zsh reads every startup file it would have read, in order. The
# last of them sources this file, so the gate is installed after the
# user's own files; it is re-asserted at every prompt.
#
# How a line is gated:
#  - accept-line and the other accepting widgets are wrapped: the wrapper
#    asks the recorder about $PREBUFFER$BUFFER (the whole command, however
#    many lines) and calls the widget it wrapped only when allowed;
#  - preexec is the backstop for a line that reached execution without the
#    wrapper (a plugin or the user rebound Enter): the line is checked
#    there, and a DEBUG trap skips its commands when it is refused;
#  - precmd sends a heartbeat with the nonce of the recorder's last reply
#    and the state of the hooks.
#
# The recorder speaks on the descriptor it connected before exec (fd 9,
# moved to a free one by .zshenv); see src/gate/wire.rs for the messages.

# Give ZDOTDIR back: the user's, or unset as it was.
if [[ -n $__custos_zdotdir_set || $__custos_zdotdir != $HOME ]]; then
    ZDOTDIR=$__custos_zdotdir
else
    unset ZDOTDIR
fi
unset __custos_zdotdir __custos_zdotdir_set

# State: p = prompt hooks running, e = editing, r = an accepted line is
# running, b = a line that bypassed the wrapper was allowed by preexec,
# d = a refused line whose commands are skipped.
typeset -g __custos_state=p __custos_nonce= __custos_status=0 __custos_inwidget=
typeset -ga __custos_reply
typeset -g __custos_body

__custos_send() {
    emulate -L zsh
    setopt no_multibyte
    local f out="$1 $(( $# - 1 ))"$'\n'
    shift
    for f in "$@"; do out+="${#f}:$f"; done
    print -rn -- "$out" >&$__custos_fd 2>/dev/null
}

__custos_recv() {
    emulate -L zsh
    setopt no_multibyte
    local n
    __custos_body=
    # WAIT: the line is held for approval; the recorder says so every 10 s.
    while :; do
        IFS=' ' read -r -t 30 -u $__custos_fd -A __custos_reply || return 1
        [[ ${__custos_reply[1]} == WAIT ]] || break
    done
    __custos_nonce=${__custos_reply[2]}
    n=${__custos_reply[3]:-0}
    if [[ ${__custos_reply[1]} == DENY ]] && (( n > 0 )); then
        read -r -t 5 -u $__custos_fd -k $n __custos_body || return 1
    fi
    return 0
}

# $1 = enter|backstop, $2 = the line, $3 = the command about to run.
__custos_ask() {
    emulate -L zsh
    local rest=$2 name
    local -a fields
    fields=("$PWD" "$2" "${3-}")
    while [[ $rest =~ '\$\{?([A-Za-z_][A-Za-z0-9_]*)' ]]; do
        name=$match[1]
        rest=${rest#*"$MATCH"}
        (( ${+parameters[$name]} )) && [[ ${parameters[$name]} != *array* && ${parameters[$name]} != *association* ]] && fields+=("$name" "${(P)name}")
    done
    __custos_send "CHECK $__custos_nonce $1" "${fields[@]}" && __custos_recv
}

__custos_refused() {
    print -r -- $'\e[1;31mcustos:\e[0m '"${__custos_body:-the command gate is unavailable; nothing was run}" >&2
}

# The wrapper of accept-line and the other accepting widgets.
__custos_accept() {
    emulate -L zsh
    local orig=__custos_orig_$WIDGET
    (( ${+widgets[$orig]} )) || orig=.$WIDGET
    if [[ -n $__custos_inwidget ]]; then
        zle $orig -- "$@"
        return
    fi
    local line=$PREBUFFER$BUFFER __custos_inwidget=1
    if ! __custos_ask enter "$line"; then
        zle -I
        __custos_refused
        return
    fi
    case ${__custos_reply[1]} in
    ALLOW)
        __custos_state=r
        zle $orig -- "$@"
        ;;
    MORE)
        zle $orig -- "$@"
        ;;
    *)
        zle -I
        [[ -n $PREBUFFER ]] && print >&2
        __custos_refused
        if [[ -n $PREBUFFER ]]; then
            # Earlier lines are already with the parser: drop them all and
            # put the whole text back in the editor to be fixed.
            print -rz -- "$line"
            zle send-break
        fi
        ;;
    esac
}

__custos_line_init() {
    __custos_state=e
}

# The backstop for a line that did not pass the wrapper.
__custos_preexec() {
    [[ $__custos_state == e ]] || return 0
    if __custos_ask backstop "$1" "" && [[ ${__custos_reply[1]} == ALLOW ]]; then
        __custos_state=b
    else
        __custos_refused
        __custos_state=d
    fi
}

# The DEBUG trap: returns 1 for a command that must not run.
__custos_debug() {
    # The hooks' own commands always run: they reset the state.
    [[ ${funcstack[2,-1]} == *__custos_* || $ZSH_DEBUG_CMD == __custos_* ]] && return 0
    case $__custos_state in
    p|r|b) return 0 ;;
    d) return 1 ;;
    esac
    zle 2>/dev/null && return 0
    __custos_ask backstop "$ZSH_DEBUG_CMD" "$ZSH_DEBUG_CMD" && [[ ${__custos_reply[1]} == ALLOW ]] && return 0
    __custos_refused
    return 1
}

# No `emulate -L` here: it would make the DEBUG trap local to this function.
__custos_install() {
    local w
    for w in accept-line accept-and-hold accept-line-and-down-history accept-and-infer-next-history; do
        if [[ ${widgets[$w]-} != user:__custos_accept ]]; then
            if [[ -n ${widgets[$w]-} && ${widgets[$w]} != builtin ]]; then
                zle -A $w __custos_orig_$w
            fi
            zle -N $w __custos_accept
        fi
    done
    autoload -Uz add-zsh-hook add-zle-hook-widget
    precmd_functions=(__custos_precmd ${precmd_functions:#__custos_precmd})
    add-zsh-hook preexec __custos_preexec
    add-zle-hook-widget line-init __custos_line_init
    trap '[[ $__custos_state == r ]] || __custos_debug || setopt err_exit' DEBUG
}

__custos_precmd() {
    __custos_status=$?
    __custos_state=p
    {
        print -r -- "PROMPT $__custos_nonce $__custos_status $$"
        trap
        print -r -- "widget accept-line=${widgets[accept-line]-}"
        print -r -- "precmd ${precmd_functions[*]}"
        print -r -- "preexec ${preexec_functions[*]}"
        print -r -- "$__custos_nonce END"
    } >&$__custos_fd 2>/dev/null
    __custos_recv
    __custos_install
    return $__custos_status
}

print -r -- "HELLO $__custos_token zsh $$ $ZSH_VERSION" >&$__custos_fd
__custos_recv
unset __custos_token
__custos_install
