"""salience_detr's LazyConfig files (loaded by path: `tools/train_net.py --config-file ...`) and `helpers`,
the config helpers they are built with (`detrkit_projects.salience_detr.configs.helpers`)."""
