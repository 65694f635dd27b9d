/usr/lib/openssh/sftp-server -e -l INFO
