scp -f /tmp/tr/nope
