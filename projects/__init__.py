"""detrkit projects: one folder per paper, each contributing its modules and configs."""
