# custos: the command gate for zsh without a terminal (see src/gate/batch.rs).
#
# This file is `.zshenv` in a directory of ours that ZDOTDIR names, so every
# zsh of a session without a terminal reads it first (after /etc/zsh/zshenv):
# `ssh host 'cmd'`, a script on stdin, `zsh script.zsh`, a login `-zsh`.
# Before each command (a sublist: a pipeline or an && || chain, compound
# commands first as a whole, then each command inside them, in functions,
# subshells and command substitutions too) the DEBUG trap asks the recorder
# on a loopback connection of its own, and the command runs only if the
# answer is ALLOW. A refused command is skipped by setting ERR_EXIT in the
# trap; with CUSTOS_GATE_EXIT=1 the shell exits 126 instead.
#
# The trap is a string, not a TRAPDEBUG function: a function's options are
# put back when it returns under LOCAL_OPTIONS (which `setopt localoptions`
# or `emulate ksh` turns on), and the ERR_EXIT that skips the command would
# go with them.
#
# ZDOTDIR stays ours in the environment for the whole session, so a zsh the
# script starts reads this file again; the user's own startup files are
# read from CUSTOS_ZDOTDIR_ORIG (or $HOME) by this file and its siblings,
# with the gate already in place, so their commands are asked about too.
# Commands of our own files (the trap's funcsourcetrace names this
# directory) are not asked about.

# An imported variable is never read-only: only this file makes it so.
if [[ ${(t)__custos_port-} != *readonly* ]]; then
typeset -gr __custos_port=${CUSTOS_GATE_PORT-} __custos_token=${CUSTOS_GATE_TOKEN-} __custos_exit=${CUSTOS_GATE_EXIT-1}
typeset -gr __custos_dir=${${(%):-%x}:h}
# Where the user's own startup files are: changed when their .zshenv sets
# ZDOTDIR (see the trap).
typeset -g __custos_zdotdir=${CUSTOS_ZDOTDIR_ORIG-$HOME}
typeset -g __custos_body=

# Asks about one command: a CHECK (see src/gate/wire.rs) on a fresh
# connection, one reply line, and a DENY's message.
__custos_ask() {
    builtin emulate -L zsh
    builtin setopt no_multibyte
    # Every name of ours starts with __custos_ (which no command may name), so
    # a variable the command names is never one of these.
    local LC_ALL=C REPLY MATCH MBEGIN MEND __custos_rest=$1 __custos_name __custos_f __custos_out __custos_line __custos_fd
    local -a match mbegin mend __custos_fields __custos_reply
    __custos_fields=("$PWD" "" "$1")
    __custos_body=
    while [[ $__custos_rest =~ '\$\{?([A-Za-z_][A-Za-z0-9_]*)' ]]; do
        __custos_rest=${__custos_rest#*"$MATCH"}
        __custos_name=$match[1]
        [[ $__custos_name == (__custos_*|REPLY|MATCH|MBEGIN|MEND|match|mbegin|mend|LC_ALL) ]] && continue
        (( ${+parameters[$__custos_name]} )) && __custos_fields+=("$__custos_name" "${(P)__custos_name}")
    done
    __custos_out="CHECK $__custos_token backstop ${#__custos_fields}"$'\n'
    for __custos_f in "${__custos_fields[@]}"; do __custos_out+="${#__custos_f}:$__custos_f"; done
    builtin zmodload zsh/net/tcp 2>/dev/null || return 1
    builtin ztcp 127.0.0.1 $__custos_port 2>/dev/null || return 1
    __custos_fd=$REPLY
    builtin print -rn -u $__custos_fd -- "$__custos_out"
    if ! builtin read -r -t 120 -u $__custos_fd __custos_line; then
        builtin ztcp -c $__custos_fd
        return 1
    fi
    __custos_reply=(${=__custos_line})
    if [[ $__custos_reply[1] == DENY && $__custos_reply[3] == <1-> ]]; then
        builtin read -r -t 5 -k $__custos_reply[3] -u $__custos_fd __custos_body
    fi
    builtin ztcp -c $__custos_fd
    [[ $__custos_reply[1] == ALLOW ]]
}

# The trap's work: $1 the command, $2 where it comes from.
__custos_debug() {
    [[ $2 == $__custos_dir/* ]] && return 0
    __custos_ask "$1" && return 0
    builtin print -r -u2 -- "custos: ${__custos_body:-the command gate is unavailable; nothing was run}"
    [[ $__custos_exit == 1 ]] && builtin exit 126
    return 1
}

builtin setopt debug_before_cmd
# A ZDOTDIR the user's .zshenv set is taken as where their other startup
# files are, and ours is put back (only assignments: no command runs), so
# every later zsh still reads this file first.
# Function definitions are not traced, so a function of the user's named
# like a word this hook calls (`builtin`, `return`, `print`…) would run their
# code in here, unchecked. Looked up with an expansion alone, before any of
# those words runs: if one exists, the expansion error ends the shell.
builtin typeset -gr __custos_taken='(builtin|command|exec|return|local|print|read|ztcp|setopt|unsetopt|typeset|zmodload|emulate|eval|exit|trap|noglob|source|.)'
builtin trap '[[ -z ${(k)functions[(I)${~__custos_taken}]} ]] || __custos_abort=${__custos_abort:?custos: a function named like a builtin the command gate uses; the shell stops}; [[ $ZDOTDIR == $__custos_dir ]] || { __custos_zdotdir=${ZDOTDIR:-$HOME}; builtin typeset -gx CUSTOS_ZDOTDIR_ORIG=$__custos_zdotdir; ZDOTDIR=$__custos_dir; }; __custos_debug "$ZSH_DEBUG_CMD" "${funcsourcetrace[1]-}" || builtin setopt err_exit' DEBUG

# The user's own .zshenv, asked about command by command.
[[ -r $__custos_zdotdir/.zshenv ]] && builtin source $__custos_zdotdir/.zshenv
if [[ $ZDOTDIR != $__custos_dir ]]; then
    __custos_zdotdir=${ZDOTDIR:-$HOME}
    builtin typeset -gx CUSTOS_ZDOTDIR_ORIG=$__custos_zdotdir
    ZDOTDIR=$__custos_dir
fi
fi
