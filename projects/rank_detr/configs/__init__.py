"""rank_detr's LazyConfig files (loaded by path: `tools/train_net.py --config-file ...`) and `helpers`,
the config helpers they are built with (`detrkit_projects.rank_detr.configs.helpers`)."""
