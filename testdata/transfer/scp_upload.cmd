scp -p -t /tmp/tr/dst/
