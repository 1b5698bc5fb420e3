#!/usr/bin/env python
"""A PNG of a trained model's predictions beside the ground truth, on the first images of its test set.

    python tools/visualize.py --config-file F --checkpoint C --out predictions.png [--num-images 6]
        [--score-threshold 0.5] [key=value ...]

Each row shows an image with its ground-truth boxes (left) and the predictions scoring at least the
threshold (right), in the original image coordinates.
"""

import argparse
import itertools
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.path.pardir)))  # `projects`

from detrkit.checkpoint import DetectionCheckpointer  # noqa: E402
from detrkit.config import LazyConfig, instantiate  # noqa: E402
from detrkit.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from detrkit.structures import BoxMode  # noqa: E402
from detrkit.utils.visualizer import ground_truth_vs_predictions, image_grid  # noqa: E402


def ground_truth(record: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 4)`` xyxy boxes and ``(N,)`` contiguous classes of a dataset dict's non-crowd annotations."""
    annotations = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations]
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(
        [a["category_id"] for a in annotations], dtype=torch.int64
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--num-images", type=int, default=6)
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model).to(cfg.train.device)
    DetectionCheckpointer(model).load(args.checkpoint)
    model.eval()
    dataset_name = cfg.dataloader.test.dataset.names
    records = {r["image_id"]: r for r in DatasetCatalog.get(dataset_name)}
    class_names = MetadataCatalog.get(dataset_name).thing_classes

    panels = []
    with torch.no_grad():
        for batch in itertools.islice(instantiate(cfg.dataloader.test), args.num_images):
            prediction = model(batch)[0]["instances"].to("cpu")
            record = records[batch[0]["image_id"]]
            image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
            gt_boxes, gt_classes = ground_truth(record)
            panels.append(
                ground_truth_vs_predictions(
                    image,
                    gt_boxes,
                    gt_classes,
                    prediction.pred_boxes.tensor,
                    prediction.pred_classes,
                    prediction.scores,
                    class_names,
                    args.score_threshold,
                )
            )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    image_grid(panels, columns=2).save(args.out)
    print(
        f"wrote {args.out}: ground truth (left) vs predictions with score >= {args.score_threshold} (right)"
    )


if __name__ == "__main__":
    main()
