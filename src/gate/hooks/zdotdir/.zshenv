# custos (see custos.zsh): read the user's .zshenv, keep ZDOTDIR on this
# directory until the last startup file, then install the gate.
typeset -g __custos_dir=$ZDOTDIR __custos_token=$CUSTOS_GATE_TOKEN __custos_zdotdir=$HOME __custos_zdotdir_set=
if (( ${+CUSTOS_ZDOTDIR_ORIG} )); then __custos_zdotdir=$CUSTOS_ZDOTDIR_ORIG __custos_zdotdir_set=1; fi
unset CUSTOS_ZDOTDIR_ORIG CUSTOS_GATE_TOKEN
exec {__custos_fd}<&9 9<&-
ZDOTDIR=$__custos_zdotdir
[[ -r $ZDOTDIR/.zshenv ]] && builtin source $ZDOTDIR/.zshenv
__custos_zdotdir=$ZDOTDIR ZDOTDIR=$__custos_dir
[[ -o rcs && -o interactive ]] || builtin source $__custos_dir/custos.zsh
