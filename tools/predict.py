#!/usr/bin/env python
"""Runs a trained detector on image files and writes its detections (detectron2's demo/demo.py counterpart).

    python tools/predict.py --config-file F --checkpoint W --input IMAGES... --output DIR
        [--score-threshold 0.3] [--tile SIZE --overlap K] [--nms-threshold 0.5] [--bf16] [key=value ...]

``--input`` takes image files, folders (their images, not recursive) and globs (``'tiles/**/*.png'``,
quoted). ``DIR`` receives:
- ``predictions.json``: COCO results (``image_id`` = the image's position in the sorted input list,
  ``category_id`` = the dataset's category id, ``bbox`` = [x, y, w, h] in pixels, ``score``) with
  ``file_name`` and ``category_name`` added;
- ``predictions.csv``: the same, one detection a row;
- ``<image stem>.png`` per image: the detections drawn with their class names and scores.

Class names and category ids come from the metadata of the config's test dataset
(``dataloader.test.dataset.names``). Images larger than the training size can be cut into ``SIZE`` x
``SIZE`` tiles sharing ``K`` pixels (``K`` at least the largest object's size: a box cut by a tile's inner
edge is dropped, the neighbouring tile sees the object whole); the tiles' detections are merged per class
by NMS (``detrkit.layers.batched_nms``, ``--nms-threshold``).

``--bf16`` runs the model under bfloat16 autocast on its device: convolutions and matrix products in
bfloat16, the deformable attention and the postprocess in float32. On CPUs with AVX512-BF16/AMX it is the
fastest mode (BENCHMARKS.md); check its accuracy on your data first (``benchmarks/bf16_accuracy.py``).
"""

import argparse
import csv
import glob
import json
import os
import re
import sys

import torch
from tqdm import tqdm

from detrkit.config import LazyConfig, instantiate
from detrkit.data import MetadataCatalog
from detrkit.data.dataset_mapper import read_image
from detrkit.utils.cli import non_negative_int, positive_int, unit_interval_float
from detrkit.utils.prediction import load_model, predict_image
from detrkit.utils.visualizer import draw_boxes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OVERRIDE = re.compile(r"^\+?[A-Za-z_][\w.]*=")  # a config override key=value
CSV_FIELDS = ("image_id", "file_name", "category_id", "category_name", "score", "x", "y", "w", "h")


def list_images(inputs: list[str]) -> list[str]:
    """The image files named by ``inputs`` (files, folders, globs), sorted within each input, without
    repeats. Raises FileNotFoundError naming an input that matches nothing."""
    files = []
    for entry in inputs:
        if os.path.isdir(entry):
            found = sorted(
                os.path.join(entry, name)
                for name in os.listdir(entry)
                if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(entry, name))
            )
        elif os.path.isfile(entry):
            found = [entry]
        else:
            found = sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
        if not found:
            raise FileNotFoundError(
                f"--input {entry!r}: no such image file, no image in that folder, or a glob matching nothing"
            )
        files.extend(found)
    return list(dict.fromkeys(files))


def output_names(files: list[str]) -> list[str]:
    """``<stem>.png`` per file; ``<stem>_<position>.png`` where stems repeat."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    return [f"{s}.png" if stems.count(s) == 1 else f"{s}_{i}.png" for i, s in enumerate(stems)]


def class_metadata(cfg, num_classes: int) -> tuple[list[str], list[int]]:
    """Class names and dataset category ids of the contiguous classes (``num_classes``, or as many as the
    metadata names), from the test dataset's metadata (names ``"class <i>"`` and ids ``i`` where it has
    none)."""
    names = cfg.dataloader.test.dataset.names
    metadata = MetadataCatalog.get(names if isinstance(names, str) else names[0])
    class_names = list(metadata.get("thing_classes") or [])
    num_classes = max(num_classes, len(class_names))
    class_names += [f"class {i}" for i in range(len(class_names), num_classes)]
    to_contiguous = metadata.get("thing_dataset_id_to_contiguous_id") or {}
    dataset_ids = {contiguous: dataset_id for dataset_id, contiguous in to_contiguous.items()}
    return class_names, [dataset_ids.get(i, i) for i in range(num_classes)]


def detections_to_records(
    image_id: int, file_name: str, boxes, scores, classes, class_names, category_ids
) -> list[dict]:
    """COCO result dicts (with ``file_name`` and ``category_name``) of one image's ``(K, 4)`` xyxy boxes."""
    records = []
    for (x0, y0, x1, y1), score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist(), strict=True):
        records.append(
            {
                "image_id": image_id,
                "file_name": file_name,
                "category_id": category_ids[cls],
                "category_name": class_names[cls],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "score": round(score, 5),
            }
        )
    return records


def write_tables(records: list[dict], output: str) -> None:
    with open(os.path.join(output, "predictions.json"), "w") as f:
        json.dump(records, f)
    with open(os.path.join(output, "predictions.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in records:
            x, y, w, h = r["bbox"]
            writer.writerow({**{k: r[k] for k in CSV_FIELDS[:5]}, "x": x, "y": y, "w": w, "h": h})


def model_device_type(model: torch.nn.Module) -> str:
    """``"cpu"`` or ``"cuda"``: where ``model``'s parameters are (the CPU for a model without any)."""
    return next(model.parameters(), torch.zeros(0)).device.type


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", required=True, help="trained weights (e.g. OUTPUT/model_final.pth)")
    parser.add_argument(
        "--input", required=True, nargs="+", help="image files, folders or globs (overrides go after them)"
    )
    parser.add_argument("--output", required=True, help="folder for predictions.json/.csv and the PNGs")
    parser.add_argument("--score-threshold", type=unit_interval_float, default=0.3)
    parser.add_argument("--tile", type=positive_int, default=None, help="tile size in pixels (square)")
    parser.add_argument("--overlap", type=non_negative_int, default=0, help="pixels shared by tiles")
    parser.add_argument("--nms-threshold", type=unit_interval_float, default=0.5, help="merging tiles")
    parser.add_argument("--bf16", action="store_true", help="run the model under bfloat16 autocast")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args(argv)
    # --input takes every following word: the key=value overrides at the end of the line come back out
    overrides = [x for x in args.input if OVERRIDE.match(x) and not os.path.exists(x)]
    args.input = [x for x in args.input if x not in overrides]
    args.opts = overrides + args.opts
    if not args.input:
        parser.error("--input needs at least one image file, folder or glob")
    if args.tile is None and args.overlap:
        parser.error("--overlap needs --tile")
    if args.tile is not None and args.overlap >= args.tile:
        parser.error(f"--overlap {args.overlap} must be smaller than --tile {args.tile}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        files = list_images(args.input)
    except FileNotFoundError as e:
        sys.exit(f"predict.py: error: {e}")
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = load_model(cfg, args.checkpoint)
    mapper = instantiate(cfg.dataloader.test.mapper)
    class_names, category_ids = class_metadata(cfg, getattr(model, "num_classes", 0))
    os.makedirs(args.output, exist_ok=True)
    records = []
    for image_id, (file_name, png) in enumerate(
        tqdm(list(zip(files, output_names(files), strict=True)), desc="predict", unit="image")
    ):
        image = read_image(file_name, mapper.img_format)
        with torch.autocast(model_device_type(model), dtype=torch.bfloat16, enabled=args.bf16):
            boxes, scores, classes = predict_image(
                model,
                image,
                mapper.augmentation,
                args.score_threshold,
                args.tile,
                args.overlap,
                args.nms_threshold,
            )
        records += detections_to_records(
            image_id, file_name, boxes, scores, classes, class_names, category_ids
        )
        rgb = image if mapper.img_format == "RGB" else image.flip(0)
        draw_boxes(rgb, boxes, classes, class_names, scores).save(os.path.join(args.output, png))
    write_tables(records, args.output)
    print(
        f"wrote {len(records)} detections with score >= {args.score_threshold} of {len(files)} images to "
        f"{os.path.join(args.output, 'predictions.json')} (and .csv, one PNG per image)"
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
