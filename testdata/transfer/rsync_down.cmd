rsync --server --sender -vlogDtpre.iLsfxCIvu . /tmp/tr/src/
