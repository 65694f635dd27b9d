# custos (see custos.zsh): read the user's .zshenv, keep ZDOTDIR on this
# directory until the last startup file, then install the gate.
typeset -g __custos_dir=$ZDOTDIR __custos_token=$CUSTOS_GATE_TOKEN __custos_zdotdir=$HOME __custos_zdotdir_set=
if (( ${+CUSTOS_ZDOTDIR_ORIG} )); then __custos_zdotdir=$CUSTOS_ZDOTDIR_ORIG __custos_zdotdir_set=1; fi
unset CUSTOS_ZDOTDIR_ORIG CUSTOS_GATE_TOKEN
# The gate's socket goes to a coprocess (two `cat`s) at once: zsh keeps the
# coprocess's pipes from every program it starts, so no program the user
# runs holds a way to the gate. The hooks speak with `>&p` and `read -p`.
# Job control off meanwhile, so no job notice is shown.
__custos_monitor=${options[monitor]}
options[monitor]=off
{ coproc { builtin trap '' INT QUIT TSTP TTIN TTOU; builtin command -p cat <&9 & builtin command -p cat >&9; builtin kill $!; } } 2>/dev/null
exec 9<&-
builtin disown %+ 2>/dev/null
options[monitor]=$__custos_monitor
unset __custos_monitor
ZDOTDIR=$__custos_zdotdir
[[ -r $ZDOTDIR/.zshenv ]] && builtin source $ZDOTDIR/.zshenv
__custos_zdotdir=$ZDOTDIR ZDOTDIR=$__custos_dir
[[ -o rcs && -o interactive ]] || builtin source $__custos_dir/custos.zsh
