# custos (see custos.zsh): the user's .zprofile.
ZDOTDIR=$__custos_zdotdir
[[ -r $ZDOTDIR/.zprofile ]] && builtin source $ZDOTDIR/.zprofile
__custos_zdotdir=$ZDOTDIR ZDOTDIR=$__custos_dir
[[ -o rcs ]] || builtin source $__custos_dir/custos.zsh
