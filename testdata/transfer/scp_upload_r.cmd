scp -r -t /tmp/tr/dst/tree
