# custos (see custos.zsh): the user's .zlogin, the last startup file.
ZDOTDIR=$__custos_zdotdir
[[ -r $ZDOTDIR/.zlogin ]] && builtin source $ZDOTDIR/.zlogin
__custos_zdotdir=$ZDOTDIR ZDOTDIR=$__custos_dir
builtin source $__custos_dir/custos.zsh
