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
#  - the DEBUG trap asks again before every command zsh runs, as zsh is
#    about to run it (ZSH_DEBUG_CMD: after aliases, inside functions,
#    sourced files and eval, function definitions included), and skips it
#    when refused (ERR_EXIT set by the trap). Redefining a hook function is
#    itself such a command, and the gate refuses every command that names
#    the hooks;
#  - preexec is the backstop for a line that reached execution without the
#    wrapper (a plugin or the user rebound Enter): the line is checked
#    there, which marks the session degraded;
#  - precmd sends a heartbeat with the nonce of the recorder's last reply
#    and the state of the hooks, the text of every hook function included:
#    zsh has no read-only functions, so the recorder compares that text
#    with what the hooks printed at the first prompt.
#
# The recorder's socket reaches the shell on fd 9 and is handed by .zshenv
# to a coprocess, whose pipes zsh keeps from the programs it starts. A
# subshell asks nothing (its checks could cross another's on the one pipe):
# there a command runs only if the line as typed shows it literally, or
# while the prompt is drawn. See src/gate/wire.rs for the messages.

# Aliases are off while the hooks are defined, so none of the user's can
# change their text (put back at the end).
\builtin typeset -g __custos_aliases=${options[aliases]}
options[aliases]=off

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
typeset -g __custos_state=p __custos_nonce= __custos_status=0 __custos_inwidget= __custos_line=
typeset -ga __custos_reply
typeset -g __custos_body

__custos_send() {
    emulate -L zsh
    setopt no_multibyte
    local f out="$1 $(( $# - 1 ))"$'\n'
    shift
    for f in "$@"; do out+="${#f}:$f"; done
    print -rn -- "$out" >&p 2>/dev/null
}

__custos_recv() {
    emulate -L zsh
    setopt no_multibyte
    local n
    __custos_body=
    # WAIT: the line is held for approval; the recorder says so every 10 s.
    while :; do
        IFS=' ' read -r -t 30 -p -A __custos_reply || return 1
        [[ ${__custos_reply[1]} == WAIT ]] || break
    done
    __custos_nonce=${__custos_reply[2]}
    n=${__custos_reply[3]:-0}
    if [[ ${__custos_reply[1]} == DENY ]] && (( n > 0 )); then
        read -r -t 5 -p -k $n __custos_body || return 1
    fi
    return 0
}

# $1 = enter|backstop|command, $2 = the line, $3 = the command about to
# run, then the positional parameters it sees. Every local is named
# __custos_*, so a variable the command names is never one of these.
__custos_ask() {
    emulate -L zsh
    local __custos_src=$1 __custos_rest=$2$'\n'${3-} __custos_name __custos_i=0 MATCH MBEGIN MEND
    local -a __custos_fields match mbegin mend
    __custos_fields=("$PWD" "$2" "${3-}")
    shift 3 2>/dev/null || set --
    while [[ $__custos_rest =~ '\$\{?([A-Za-z_][A-Za-z0-9_]*)' ]]; do
        __custos_name=$match[1]
        __custos_rest=${__custos_rest#*"$MATCH"}
        [[ $__custos_name == (__custos_*|MATCH|MBEGIN|MEND|match|mbegin|mend) ]] && continue
        (( ${+parameters[$__custos_name]} )) && [[ ${parameters[$__custos_name]} != *array* && ${parameters[$__custos_name]} != *association* ]] && __custos_fields+=("$__custos_name" "${(P)__custos_name}")
    done
    for __custos_name in "$@"; do
        __custos_i=$(( __custos_i + 1 ))
        __custos_fields+=("$__custos_i" "$__custos_name")
    done
    __custos_send "CHECK $__custos_nonce $__custos_src" "${__custos_fields[@]}" && __custos_recv
}

# $1 = zle: called in a widget, on the line's last row. The message goes
# on the row below with no newline after it, and `zle -I` (next) then
# puts the prompt on the row below the message. (Printed after `zle -I`,
# the message would land after the prompt: the DEBUG trap, run before the
# print, makes zle redraw the prompt at once.)
__custos_refused() {
    local text=$'\e[1;31mcustos:\e[0m '"${__custos_body:-the command gate is unavailable; nothing was run}"
    if [[ ${1-} == zle ]]; then
        print -rn -- $'\n'"$text" >&2
    else
        print -r -- "$text" >&2
    fi
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
    if ! __custos_ask enter "$line" ""; then
        CURSOR=$#BUFFER
        zle -R
        __custos_refused zle
        zle -I
        return
    fi
    case ${__custos_reply[1]} in
    ALLOW)
        __custos_state=r
        __custos_line=$line
        zle $orig -- "$@"
        ;;
    MORE)
        zle $orig -- "$@"
        ;;
    *)
        CURSOR=$#BUFFER
        zle -R
        __custos_refused zle
        zle -I
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
        __custos_line=$1
    else
        __custos_refused
        __custos_state=d
    fi
}

# The DEBUG trap's work: returns 1 for a command that must not run. $@ are
# the positional parameters of the code about to run.
__custos_debug() {
    # The hooks' own code runs unasked.
    [[ ${funcstack[2,-1]} == *__custos_* ]] && return 0
    [[ $__custos_state == d ]] && return 1
    # Inside a widget (the user's own, bound to keys): not a command line.
    zle 2>/dev/null && return 0
    emulate -L zsh
    local __custos_cmd=$ZSH_DEBUG_CMD __custos_word __custos_src=command
    local -a __custos_m
    __custos_word=${__custos_cmd%%[[:space:]]*}
    # A glob for the command's name: ask about what it matches.
    if [[ $__custos_word == *[\?\*\[]* && $__custos_word != *[\"\'\$\`\\]* ]]; then
        __custos_m=( ${~__custos_word}(N) )
        (( $#__custos_m )) && __custos_cmd="${__custos_m[*]}${__custos_cmd:$#__custos_word}"
    fi
    if (( ZSH_SUBSHELL )); then
        # A subshell does not ask (see the top): while the prompt is drawn,
        # or for a command the allowed line shows as typed, plainly named.
        [[ $__custos_state == [pe] ]] && return 0
        [[ -n $__custos_cmd && $__custos_line == *"$__custos_cmd"* && $__custos_word != *[\?\*\[\"\'\$\`\\]* ]] && return 0
        __custos_body="a command inside a subshell that the line as typed does not show cannot be checked, so it was not run: $__custos_cmd"
        __custos_refused
        return 1
    fi
    if [[ $__custos_state == e ]]; then
        __custos_src=backstop
        __custos_line=$__custos_cmd
    fi
    if __custos_ask $__custos_src "$__custos_line" "$__custos_cmd" "$@" && [[ ${__custos_reply[1]} == ALLOW ]]; then
        [[ $__custos_src == backstop ]] && __custos_state=b
        return 0
    fi
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
    # Only assignments and conditions before our function: a function of the
    # user's named like a word the hooks use refuses every command; ERR_EXIT
    # (which skips the command) is set by assignment, not by a command.
    # The hooks' own commands are let through by a test alone.
    trap 'if [[ ${funcstack[1]-} == __custos_(send|recv|ask|refused|accept|line_init|preexec|debug|precmd) ]]; then __custos_skip=1; elif [[ -n ${(k)functions[(I)${~__custos_taken}]} ]]; then options[errexit]=on; else __custos_debug "$@" || options[errexit]=on; fi' DEBUG
}

__custos_precmd() {
    __custos_status=$?
    __custos_state=p
    __custos_line=
    {
        print -r -- "PROMPT $__custos_nonce $__custos_status $$"
        trap
        print -r -- "widget accept-line=${widgets[accept-line]-}"
        print -r -- "precmd ${precmd_functions[*]}"
        print -r -- "preexec ${preexec_functions[*]}"
        print -r -- "-- functions --"
        functions $__custos_names
        print -r -- "-- end functions --"
        print -r -- "$__custos_nonce END"
    } >&p 2>/dev/null
    __custos_recv
    __custos_install
    return $__custos_status
}

typeset -gra __custos_names=(__custos_send __custos_recv __custos_ask __custos_refused __custos_accept __custos_line_init __custos_preexec __custos_debug __custos_install __custos_precmd)
typeset -gr __custos_taken='(builtin|command|exec|return|local|print|read|setopt|unsetopt|typeset|emulate|eval|exit|trap|noglob|source|.|zle|functions|autoload|disown|kill)'
options[aliases]=$__custos_aliases
unset __custos_aliases
print -r -- "HELLO $__custos_token zsh $$ $ZSH_VERSION" >&p
__custos_recv
unset __custos_token
__custos_install
