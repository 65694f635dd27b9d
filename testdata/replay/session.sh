printf 'golden session\n'; sleep 0.3
printf '\033[1;31mred\033[0m and \033[38;5;208morange\033[0m and \033[48;2;30;60;90mtruecolor\033[0m\n'; sleep 0.3
seq 1 20; sleep 0.3
printf '漢字 café 🙂 wide\n'; sleep 0.3
printf 'progress 10%%\rprogress 99%%\rprogress done\n'; sleep 0.3
printf '\033[2;40Hplaced\033[12;1H'; sleep 0.3
printf 'the end\n'
