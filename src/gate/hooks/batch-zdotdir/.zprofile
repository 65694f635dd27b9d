# custos (see batch.zsh): the user's own .zprofile, asked about command by command.
[[ -r $__custos_zdotdir/.zprofile ]] && builtin source $__custos_zdotdir/.zprofile
