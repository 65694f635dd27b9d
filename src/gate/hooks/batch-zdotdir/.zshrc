# custos (see batch.zsh): the user's own .zshrc, asked about command by command.
[[ -r $__custos_zdotdir/.zshrc ]] && builtin source $__custos_zdotdir/.zshrc
