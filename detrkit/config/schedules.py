"""The length of a COCO epoch that the COCO configs state their schedules in. A plain module, so that any
config can import it (``LazyConfig.load`` and ``get_config`` return a config file's values, not its
constants): ``train.max_iter = 12 * COCO_ITERS_PER_EPOCH``."""

__all__ = ["COCO_ITERS_PER_EPOCH"]

# Iterations per COCO epoch at batch 16. COCO train2017's 118,287 images make 7,393; detrex's schedules count
# 7,500 (12 epochs = 90,000 iterations), and detrkit's keep detrex's numbers.
COCO_ITERS_PER_EPOCH = 7500
