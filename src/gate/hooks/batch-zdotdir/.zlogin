# custos (see batch.zsh): the user's own .zlogin, asked about command by command.
[[ -r $__custos_zdotdir/.zlogin ]] && builtin source $__custos_zdotdir/.zlogin
