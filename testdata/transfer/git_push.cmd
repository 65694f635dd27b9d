git-receive-pack '/tmp/tr/repo.git'
