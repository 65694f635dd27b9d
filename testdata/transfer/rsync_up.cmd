rsync --server -logDtpre.iLsfxCIvu . /tmp/tr/rdst
