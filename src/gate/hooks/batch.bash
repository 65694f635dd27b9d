# custos: the command gate for bash without a terminal (see src/gate/batch.rs).
#
# Loaded through BASH_ENV by every non-interactive bash of a session without
# a terminal: `ssh host 'cmd'`, a script on stdin, `bash script.sh`. A bash
# that skips BASH_ENV (run by sshd at shell level 1, which `exec bash -c`
# reaches, or with a socket on stdin: it reads /etc/bash.bashrc and
# ~/.bashrc instead) and an interactive bash started inside the session
# (`bash -i`, python's pty.spawn, script, tmux) load it from the hook that
# install.sh puts at the top of /etc/bash.bashrc. Before
# each simple command, in this shell, its functions, subshells and command
# substitutions (functrace), the DEBUG trap asks the recorder on a loopback
# connection of its own, and the command runs only if the answer is ALLOW.
# Under extdebug a refused command is skipped; with CUSTOS_GATE_EXIT=1 the
# shell exits 126 instead, so a script never runs half.
#
# The variables that reach the recorder stay in the environment: every bash
# the script starts loads this file again and must find them.

# Set up once per shell: a read-only __custos_port is ours. One imported
# from the environment (a name the checks cannot see, made at run time) is
# not, and must not switch the hooks off.
if [[ ${__custos_port@a} != *r* ]]; then
builtin readonly __custos_port=${CUSTOS_GATE_PORT-} __custos_token=${CUSTOS_GATE_TOKEN-} __custos_exit=${CUSTOS_GATE_EXIT-1} __custos_file=${BASH_SOURCE[0]}
__custos_body=

# Asks about one command: a CHECK (see src/gate/wire.rs) on a fresh
# connection, one reply line, and a DENY's message. The connection is a
# redirection of a group, so bash closes it when the group ends.
__custos_ask() {
    builtin local LC_ALL=C f out n rest=$1 re='\$\{?([A-Za-z_][A-Za-z0-9_]*)' name fields reply
    fields=("$PWD" "" "$1") reply=()
    __custos_body=
    while [[ $rest =~ $re ]]; do
        name=${BASH_REMATCH[1]}
        rest=${rest#*"${BASH_REMATCH[0]}"}
        [[ -n ${!name+set} ]] && fields+=("$name" "${!name}")
    done
    out="CHECK $__custos_token backstop ${#fields[@]}"$'\n'
    for f in "${fields[@]}"; do out+="${#f}:$f"; done
    {
        builtin printf '%s' "$out" >&9 || builtin return 1
        IFS=' ' builtin read -r -t 120 -u 9 -a reply || builtin return 1
        n=${reply[2]:-0}
        if [[ ${reply[0]} == DENY ]] && (( n > 0 )); then
            IFS= builtin read -r -t 5 -N "$n" -u 9 __custos_body
        fi
    } 9<>"/dev/tcp/127.0.0.1/$__custos_port" || builtin return 1
    [[ ${reply[0]} == ALLOW ]]
}

# Called from the DEBUG trap. BASH_SOURCE[0] is this file (where the
# function is defined), [1] the file of the command about to run, and the
# last entry the outermost file: a start-up file while bash is still
# reading one (the user's own BASH_ENV, sourced below, is gated too).
__custos_debug() {
    # Function definitions are not traced, so the user may have defined a
    # function named like a builtin this hook calls (`builtin`, `local`,
    # `printf`…) to run their code in here, unchecked. In POSIX mode
    # `unset` is found before any function: turn it on with an assignment
    # (no command), remove such functions, and turn it off again. If POSIX
    # mode does not come on, nothing here can be trusted: the expansion
    # error ends a non-interactive shell without running anything.
    POSIXLY_CORRECT=1
    [[ -o posix ]] || __custos_abort=${__custos_abort:?custos: the command gate cannot run safely; the shell stops}
    unset -f builtin command local return printf read exec exit shopt unset set trap eval declare typeset readonly enable source .
    unset POSIXLY_CORRECT
    [[ -o posix ]] && __custos_abort=${__custos_abort:?custos: the command gate cannot run safely; the shell stops}
    builtin local n=${#BASH_SOURCE[@]} starting=
    # This file's own lines run unasked.
    [[ ${BASH_SOURCE[1]-} == "$__custos_file" ]] && builtin return 0
    # Start-up files: this one (BASH_ENV), or the two bash reads instead
    # when sshd runs it at shell level 1 (see install.sh's bash.bashrc hook).
    if (( n > 1 )); then
        case ${BASH_SOURCE[n-1]} in
            "$__custos_file" | /etc/bash.bashrc | "$HOME/.bashrc") starting=1 ;;
        esac
    fi
    # extdebug (which lets a refused command be skipped) is turned on at
    # the script's first command: set during start-up, bash would look for
    # a debugger. A refusal during start-up therefore ends the shell.
    [[ -z $starting ]] && builtin shopt -s extdebug
    __custos_ask "$1" 2>/dev/null && builtin return 0
    builtin printf 'custos: %s\n' "${__custos_body:-the command gate is unavailable; nothing was run}" >&2
    [[ $__custos_exit == 1 || -n $starting ]] && builtin exit 126
    builtin return 1
}

builtin readonly -f __custos_ask __custos_debug

builtin set -T
# The handler's first word is quoted, so no alias can replace it.
builtin trap '\__custos_debug "$BASH_COMMAND"' DEBUG

# The user's own BASH_ENV, if they had one, as bash would have read it:
# after the trap, so every command in it is asked about.
if [[ -n ${CUSTOS_BASH_ENV_ORIG-} && -r $CUSTOS_BASH_ENV_ORIG ]]; then
    builtin source "$CUSTOS_BASH_ENV_ORIG"
fi
fi
