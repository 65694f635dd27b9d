scp -r -p -f /tmp/tr/src
