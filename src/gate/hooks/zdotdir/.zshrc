# custos (see custos.zsh): the user's .zshrc; the last file of a shell that
# is not a login shell.
ZDOTDIR=$__custos_zdotdir
[[ -r $ZDOTDIR/.zshrc ]] && builtin source $ZDOTDIR/.zshrc
__custos_zdotdir=$ZDOTDIR ZDOTDIR=$__custos_dir
[[ -o login && -o rcs ]] || builtin source $__custos_dir/custos.zsh
