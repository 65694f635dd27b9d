# custos (see batch.zsh): the user's own .zlogout, asked about command by command.
[[ -r $__custos_zdotdir/.zlogout ]] && builtin source $__custos_zdotdir/.zlogout
