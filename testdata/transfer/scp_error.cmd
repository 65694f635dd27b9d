scp -t /nonexistent/dir/x
