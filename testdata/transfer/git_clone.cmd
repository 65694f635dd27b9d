git-upload-pack '/tmp/tr/repo.git'
