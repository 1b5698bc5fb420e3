"""detrkit's paper projects, installed as ``detrkit_projects`` (the folder ``projects/``): one subpackage per
paper, each contributing its modules and configs."""
