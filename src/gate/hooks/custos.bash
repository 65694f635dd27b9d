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
#    asks the recorder about the whole line as typed, then a helper key that
#    is bound, by __custos_enter, either to accept-line or to nothing (a
#    refused line stays in the editor);
#  - the DEBUG trap asks again before every simple command the shell runs,
#    as bash is about to run it (BASH_COMMAND: after alias, function and
#    history expansion, inside functions, sourced files and eval), with the
#    positional parameters and the variables it names; a refused command is
#    skipped (extdebug, trap status 1). A command that runs while the line
#    editor should have the terminal went around the Enter gate: it is
#    checked as such, which marks the session degraded;
#  - PROMPT_COMMAND sends a heartbeat at every prompt, with the nonce of the
#    recorder's last reply and the state of the hooks: the trap, the key
#    bindings and the text of every hook function (which are read-only), so
#    the recorder sees at once when they are gone or changed.
#
# The recorder's socket arrives on fd 9. It is handed to a coprocess (two
# `cat`s) at once: bash keeps a coprocess's pipes from every program it
# starts (close-on-exec, and closed in subshells), so no program the user
# runs holds a way to the gate. A subshell (`$(...)`, `( )`) therefore
# cannot ask; there a command runs only if the line as typed shows it
# literally, or while the prompt is drawn. See src/gate/wire.rs for the
# messages.

# Still in posix mode: `unset` is found before any function, so the
# user's environment cannot have replaced the words used below.
unset -f builtin command local return printf read exec exit shopt unset set trap eval declare typeset readonly enable source . cat disown coproc bind history
builtin set +o posix
# Posix mode leaves two of its own defaults behind when it is turned off:
# bash's own are put back, so the shell is the one the user knows. (Their
# history is read after this file, from the file named here.)
[[ -n ${CUSTOS_HISTFILE_UNSET-} ]] && HISTFILE=~/.bash_history
builtin shopt -u inherit_errexit
if [[ -n ${CUSTOS_ENV_ORIG+set} ]]; then ENV=$CUSTOS_ENV_ORIG; else builtin unset ENV; fi
__custos_token=$CUSTOS_GATE_TOKEN
__custos_norc=${CUSTOS_BASH_NORC-} __custos_noprofile=${CUSTOS_BASH_NOPROFILE-}
builtin unset CUSTOS_ENV_ORIG CUSTOS_GATE_TOKEN CUSTOS_BASH_NORC CUSTOS_BASH_NOPROFILE CUSTOS_HISTFILE_UNSET
# The relay: the shell writes to one pipe and reads the other; the job
# notice is not shown and the job is not the user's to see or wait for.
# It ignores the terminal's signals: Ctrl-C is for the user's commands.
{ coproc __custos_gate { builtin trap '' INT QUIT TSTP TTIN TTOU; builtin command -p cat <&9 & builtin command -p cat >&9; builtin kill "$!"; }; } 2>/dev/null
# Plain `exec`: after `builtin`, a redirection lasts only for the command.
exec 9<&-
builtin disown "$__custos_gate_PID" 2>/dev/null
builtin readonly __custos_rfd=${__custos_gate[0]} __custos_wfd=${__custos_gate[1]} __custos_pid=$$

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

# The user's files may have defined functions named like the builtins used
# here, or like the hooks themselves (read-only, so ours could not replace
# them): the first are removed in posix mode, the second reported in the
# hello. Aliases are off while the hooks are defined, so none of the
# user's can change their text.
__custos_opts=$BASHOPTS
POSIXLY_CORRECT=1
unset -f builtin command local return printf read exec exit shopt unset set trap eval declare typeset readonly enable source . bind history compgen
unset POSIXLY_CORRECT
[[ :$__custos_opts: == *:inherit_errexit:* ]] || builtin shopt -u inherit_errexit
[[ :$__custos_opts: == *:interactive_comments:* ]] || builtin shopt -u interactive_comments
[[ :$__custos_opts: == *:sourcepath:* ]] || builtin shopt -u sourcepath
[[ :$__custos_opts: == *:shift_verbose:* ]] && builtin shopt -s shift_verbose
__custos_names=(__custos_send __custos_recv __custos_ask __custos_refused __custos_enter __custos_edit __custos_debug __custos_install __custos_prompt __custos_editing)
__custos_preset=
for __custos_f in "${__custos_names[@]}"; do
    builtin unset -f "$__custos_f" 2>/dev/null || __custos_preset+=${__custos_preset:+,}$__custos_f
done
builtin unset __custos_f
__custos_aliases=$(builtin shopt -p expand_aliases)
builtin shopt -u expand_aliases

# State: p = prompt commands running, e = editing a line (and drawing the
# prompt), r = an accepted line is running, d = a refused multi-line
# command is being skipped, b = a line that bypassed the Enter gate runs.
__custos_state=p
__custos_nonce=
__custos_pending=
__custos_status=0
# The line the Enter gate allowed: a subshell's commands are held to it.
__custos_line=
# The variables (and values) sent with that line.
builtin declare -gA __custos_sent
# What may stand around a command in a line: a separator, then blanks.
builtin readonly __custos_pre=$'(^|[\n;&|(])[[:blank:]]*' __custos_post=$'[[:blank:]]*($|[\n;&|)])'

# Sends one message: a header line, then the fields as netstrings.
__custos_send() {
    builtin local LC_ALL=C f out="$1 $(( $# - 1 ))"$'\n'
    builtin shift
    for f in "$@"; do out+="${#f}:$f"; done
    builtin printf '%s' "$out" >&"$__custos_wfd" 2>/dev/null
}

# Reads one reply into __custos_reply (words) and __custos_body.
__custos_recv() {
    builtin local LC_ALL=C n
    __custos_body=
    # WAIT: the line is held for approval; the recorder says so at once and
    # then every 10 s. At Enter, readline cleared the line to run the
    # binding: it is put back while it waits, with the cursor back at the
    # row's start, where readline redraws the same text when the binding
    # returns.
    builtin local shown=
    while :; do
        IFS=' ' builtin read -r -t 30 -u "$__custos_rfd" -a __custos_reply || builtin return 1
        [[ ${__custos_reply[0]} == WAIT ]] || break
        if [[ -z $shown && -n ${READLINE_LINE+set} && -z $__custos_pending ]]; then
            shown=${PS1@P}
            shown=${shown##*$'\n'}
            builtin printf '%s%s\r' "${shown//[$'\001\002']/}" "$READLINE_LINE" >&2
            shown=1
        fi
    done
    __custos_nonce=${__custos_reply[1]}
    n=${__custos_reply[2]:-0}
    if [[ ${__custos_reply[0]} == DENY ]] && (( n > 0 )); then
        IFS= builtin read -r -t 5 -N "$n" -u "$__custos_rfd" __custos_body || builtin return 1
    fi
}

# Asks the recorder. $1 = enter|backstop|command, $2 = the line, $3 = the
# simple command about to run, then the positional parameters it sees.
# Every local is named __custos_*, so a variable the command names is
# never one of these.
__custos_ask() {
    # (Quoted: after `builtin`, `local`'s arguments are split like any
    # command's.)
    builtin local "__custos_src=$1" "__custos_rest=$2"$'\n'"${3-}" __custos_name __custos_i=0 __custos_re='\$\{?([A-Za-z_][A-Za-z0-9_]*)'
    builtin local -a __custos_fields
    __custos_fields=("$PWD" "$2" "${3-}")
    builtin shift 3 2>/dev/null || builtin set --
    while [[ $__custos_rest =~ $__custos_re ]]; do
        __custos_name=${BASH_REMATCH[1]}
        __custos_rest=${__custos_rest#*"${BASH_REMATCH[0]}"}
        [[ $__custos_name == __custos_* ]] && continue
        [[ -n ${!__custos_name+set} ]] && __custos_fields+=("$__custos_name" "${!__custos_name}")
    done
    for __custos_name in "$@"; do
        __custos_i=$(( __custos_i + 1 ))
        __custos_fields+=("$__custos_i" "$__custos_name")
    done
    # What the Enter gate was told, for __custos_debug.
    if [[ $__custos_src == enter ]]; then
        __custos_sent=()
        for (( __custos_i = 3; __custos_i + 1 < ${#__custos_fields[@]}; __custos_i += 2 )); do
            __custos_sent[${__custos_fields[__custos_i]}]=${__custos_fields[__custos_i+1]}
        done
    fi
    __custos_send "CHECK $__custos_nonce $__custos_src" "${__custos_fields[@]}" && __custos_recv
}

__custos_refused() {
    builtin printf '\e[1;31mcustos:\e[0m %s\n' "${__custos_body:-the command gate is unavailable; nothing was run}" >&2
}

# Enter (and every other accepting key), through readline.
__custos_enter() {
    builtin local "line=$READLINE_LINE"
    [[ -n $__custos_pending ]] && line=$__custos_pending$'\n'$READLINE_LINE
    if ! __custos_ask enter "$line" ""; then
        __custos_refused
        builtin bind '"\C-x\C-_a": ""'
        builtin return
    fi
    case ${__custos_reply[0]} in
    ALLOW)
        __custos_pending=
        __custos_state=r
        __custos_line=$line
        builtin bind '"\C-x\C-_a": accept-line'
        ;;
    MORE)
        # Not a whole command yet: bash reads the rest with PS2, and the
        # whole text is checked when it is complete.
        __custos_pending=$line
        builtin bind '"\C-x\C-_a": accept-line'
        ;;
    *)
        # Readline cleared the line to run this binding: it is put back as
        # typed (after the last row of the prompt), above the refusal, so
        # the screen and the recording show what was refused.
        [[ -z $__custos_pending ]] && { line=${PS1@P}; line=${line##*$'\n'}; builtin printf '%s%s\n' "${line//[$'\001\002']/}" "$READLINE_LINE" >&2; }
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
# Its commands (the editor above all) are checked like any other.
__custos_edit() {
    builtin local f
    f=$(builtin command mktemp "${TMPDIR:-/tmp}/bash-edit.XXXXXX") || builtin return
    builtin printf '%s\n' "$READLINE_LINE" >"$f"
    ${VISUAL:-${EDITOR:-vi}} "$f"
    READLINE_LINE=$(<"$f")
    READLINE_POINT=${#READLINE_LINE}
    builtin command rm -f "$f"
    __custos_enter
}

# The DEBUG trap: before every simple command. Status 1 skips it.
__custos_debug() {
    # Function definitions are not traced, so a function named like a
    # builtin used here could run the user's code inside the gate: in posix
    # mode `unset` comes before any function. Only an assignment (no
    # command) turns posix mode on; if it does not come on, nothing here
    # can be trusted, and the command is refused.
    # Posix mode also sets four shell options, and leaving it does not put
    # them back: they are put back as the user had them.
    __custos_opts=$BASHOPTS
    POSIXLY_CORRECT=1
    [[ -o posix ]] || { unset POSIXLY_CORRECT; return 1; }
    unset -f builtin command local return printf read exec exit shopt unset set trap eval declare typeset readonly enable source . bind history compgen
    unset POSIXLY_CORRECT
    [[ -o posix ]] && builtin return 1
    [[ :$__custos_opts: == *:inherit_errexit:* ]] || builtin shopt -u inherit_errexit
    [[ :$__custos_opts: == *:interactive_comments:* ]] || builtin shopt -u interactive_comments
    [[ :$__custos_opts: == *:sourcepath:* ]] || builtin shopt -u sourcepath
    [[ :$__custos_opts: == *:shift_verbose:* ]] && builtin shopt -s shift_verbose
    # extdebug is what lets status 1 skip the command; it is turned off
    # again for a command that runs, so that a script without a shebang
    # (run by a copy of this shell) does not look for a debugger. Turning
    # it off turns function tracing off too: `set -T` puts that back.
    builtin shopt -s extdebug
    [[ $__custos_state == d ]] && builtin return 1
    builtin local "cmd=$BASH_COMMAND" word src=command
    # A glob for the command's name: ask about what it matches, as bash
    # will run it.
    word=${cmd%%[[:space:]]*}
    if [[ $word == *[\?\*\[]* && $word != *[\"\'\$\`\\]* ]]; then
        builtin local -a matches
        builtin mapfile -t matches < <(builtin compgen -G "$word")
        (( ${#matches[@]} )) && cmd="${matches[*]}${cmd:${#word}}"
    fi
    if [[ $BASHPID != "$__custos_pid" ]]; then
        # A subshell cannot reach the gate: while the prompt is drawn, or
        # for a command the allowed line shows as typed with a plain name.
        # (bash prints a command's redirections in its own spacing, so
        # the two are compared without white space.)
        if [[ $__custos_state == [pe] ]] || { [[ -n $cmd && ${__custos_line//[[:space:]]/} == *"${cmd//[[:space:]]/}"* && $word != *[\?\*\[\"\'\$\`\\]* ]]; }; then
            builtin shopt -u extdebug; builtin set -T
            builtin return 0
        fi
        __custos_body="a command inside a subshell that the line as typed does not show cannot be checked, so it was not run: $cmd"
        __custos_refused
        builtin return 1
    fi
    # A command that stands as typed, at a command's place in the line the
    # Enter gate just allowed (at the top level: not in a function, a
    # sourced file or eval; nothing expanded that could differ: no
    # variable, substitution, glob, brace or history expansion) was judged
    # there, in context: no second round trip.
    # A variable it names must hold what the Enter gate was told (or be
    # unset as it was then); arithmetic was judged unknowable there already.
    if [[ $__custos_state == r && ${#FUNCNAME[@]} == 0 && -n $cmd && $cmd != *[\`\*\?\[\{\!]* ]] &&
        [[ $'\n'$__custos_line$'\n' =~ $__custos_pre"$cmd"$__custos_post ]]; then
        builtin local rest=$cmd same=1
        rest=${rest//'$(('/}
        while [[ $rest =~ \$\{?([A-Za-z_][A-Za-z0-9_]*)\}? ]]; do
            word=${BASH_REMATCH[1]}
            rest=${rest/"${BASH_REMATCH[0]}"/}
            if [[ -n ${__custos_sent[$word]+set} ]]; then
                [[ -n ${!word+set} && ${!word} == "${__custos_sent[$word]}" ]] || { same=; break; }
            else
                [[ -z ${!word+set} ]] || { same=; break; }
            fi
        done
        if [[ -n $same && $rest != *\$* ]]; then
            builtin shopt -u extdebug; builtin set -T
            builtin return 0
        fi
    fi
    if [[ $__custos_state == e ]]; then
        # The line editor should have the terminal: this line went around
        # the Enter gate.
        builtin local line
        line=$(HISTTIMEFORMAT= builtin history 1)
        line=${line#*[0-9]  }
        src=backstop
        __custos_line=$line
    fi
    if __custos_ask "$src" "$__custos_line" "$cmd" "$@" && [[ ${__custos_reply[0]} == ALLOW ]]; then
        [[ $src == backstop ]] && __custos_state=b
        builtin shopt -u extdebug; builtin set -T
        builtin return 0
    fi
    __custos_refused
    builtin return 1
}

__custos_install() {
    builtin set -T
    builtin shopt -s extdebug
    # The hooks' own commands (the exact functions, not any name that looks
    # like theirs) and their entry points are let through by a test alone,
    # before any command: a function call per hook command would double the
    # cost of every Enter. Otherwise the handler, its first word quoted so
    # no alias can replace it, sees the positional parameters of the code
    # about to run.
    builtin trap '[[ ${FUNCNAME-} == @(__custos_send|__custos_recv|__custos_ask|__custos_refused|__custos_enter|__custos_debug|__custos_install|__custos_prompt|__custos_editing) || $BASH_COMMAND == @(__custos_prompt|__custos_editing|__custos_enter|__custos_edit) ]] || \__custos_debug "$@"' DEBUG
    builtin local map key
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
        builtin local -a pc
        builtin local c
        pc=()
        for c in "${PROMPT_COMMAND[@]}"; do
            [[ $c == __custos_* ]] || pc+=("$c")
        done
        PROMPT_COMMAND=(__custos_prompt "${pc[@]}" __custos_editing)
    else
        # A string: ours go on lines of their own around the user's.
        builtin local "pc=${PROMPT_COMMAND-}"
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
    __custos_line=
    {
        builtin printf 'PROMPT %s %s %s\n' "$__custos_nonce" "$__custos_status" "$$"
        builtin trap -p DEBUG
        [[ -o functrace ]] && builtin printf 'functrace on\n'
        builtin bind -m emacs -s
        builtin bind -m emacs -X
        builtin printf -- '-- functions --\n'
        builtin declare -f "${__custos_names[@]}"
        builtin printf -- '-- end functions --\n'
        builtin printf '%s END\n' "$__custos_nonce"
    } >&"$__custos_wfd" 2>/dev/null
    __custos_recv
    __custos_install
    builtin return "$__custos_status"
}

# Last of PROMPT_COMMAND: from here on, the line editor has the terminal.
__custos_editing() {
    __custos_state=e
    builtin return "$__custos_status"
}

# Nobody may replace or remove them (bash refuses to, even for a function
# of the same name in a later definition).
builtin readonly -f "${__custos_names[@]}"
builtin readonly __custos_names
builtin eval "$__custos_aliases"
builtin unset __custos_aliases

builtin printf 'HELLO %s bash %s %s%s\n' "$__custos_token" "$$" "$BASH_VERSION" "${__custos_preset:+ preset=$__custos_preset}" >&"$__custos_wfd"
__custos_recv
builtin unset __custos_token __custos_preset
__custos_install
