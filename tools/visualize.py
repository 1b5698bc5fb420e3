#!/usr/bin/env python
"""PNGs of a trained model: its predictions beside the ground truth, or (``--tokens``) what its encoder side
picks on one image.

    python tools/visualize.py --config-file F --checkpoint C --out predictions.png
        [--num-images 6 | --index I [--index J ...] | --image FILE [--image ...]] [--score-threshold T]
        [key=value ...]
    python tools/visualize.py --tokens --config-file F --checkpoint C --out DIR [--index 0] [key=value ...]

Without ``--tokens``, the test set's first ``--num-images`` images (or those at positions ``--index``, or
whose file is ``--image``: a path or a file name) are drawn two per row, each as a titled pair in the
original image coordinates: left, the ground truth, green where a detection scoring at least the threshold
matches it (same class, IoU >= 0.5), red where none does; right, the detections scoring at least the
threshold in their class colours with their scores, and those scoring at least half of it faint.

Without ``--score-threshold``, the threshold is chosen on the test set: the model runs on all of it and the
threshold with the best F1 at IoU 0.5 (detections matched greedily by score, as COCO's evaluation does) is
used and printed; a young model's right detections often score far below 0.5.

With ``--tokens``, the test set's image ``--index`` (as the model sees it, resized) gives, in ``DIR``:
- ``token_scores.png`` (Salience DETR, Focus-DETR: a selective encoder): the sigmoid of the token scorer's
  logits after the top-down modulation (Salience's salience confidence, Focus' foreground score), one panel
  per feature level, finest first;
- ``kept_tokens.png`` (same models): the tokens the first encoder layer updates, the others darkened;
- ``selected_queries.png`` (every two-stage model: DINO, Rank-DETR, Salience, Focus): the boxes of the encoder
  proposals selected as decoder queries (for Salience, after its redundancy removal), coloured by class.
They are read by forward hooks on the transformer's ``token_scorer``, ``token_selector`` and
``query_selector``.
"""

import argparse
import os

import numpy as np
import torch
from PIL import Image

from detrkit.config import LazyConfig, instantiate
from detrkit.data import DatasetCatalog, MetadataCatalog
from detrkit.structures import BoxMode
from detrkit.utils.cli import non_negative_int, positive_int, unit_interval_float
from detrkit.utils.detection_matching import best_f1_threshold, match_detections
from detrkit.utils.prediction import load_model
from detrkit.utils.token_visualizer import (
    captioned,
    kept_tokens_panel,
    level_grids,
    panel_row,
    query_boxes_panel,
    token_map_panel,
)
from detrkit.utils.visualizer import ground_truth_vs_predictions, image_grid

MATCH_IOU = 0.5


def ground_truth(record: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 4)`` xyxy boxes and ``(N,)`` contiguous classes of a dataset dict's non-crowd annotations."""
    annotations = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations]
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(
        [a["category_id"] for a in annotations], dtype=torch.int64
    )


def capture_token_outputs(model: torch.nn.Module, batched_input: dict) -> dict:
    """Runs ``model`` (eval mode) on one mapped image and returns what its transformer's slots produced:

    - ``padding_mask`` ``(S,)`` bool and ``spatial_shapes`` ``(L, 2)`` of the flattened tokens;
    - ``token_logits`` ``(S,)`` (the token scorer's output) and ``kept`` ``(S,)`` bool (the tokens the first
      encoder layer updates), only for transformers with ``token_scorer`` / ``token_selector``;
    - ``query_indices`` ``(K,)``, ``query_boxes`` ``(K, 4)`` cxcywh in [0, 1] of the unpadded image and
      ``query_classes`` ``(K,)`` (highest encoder class logit) of the selected proposals.
    """
    transformer = model.transformer
    captured: dict = {}

    def on_scorer(module, args, logits):
        captured["token_logits"] = logits[0].detach()

    def on_selector(module, args, selection):
        indices = selection.layer_indices[0][0, : int(selection.num_updated[0])]
        kept = torch.zeros(args[0].shape[1], dtype=torch.bool, device=indices.device)
        captured["kept"] = kept.index_fill(0, indices, True)

    def on_query_selector(module, args, selection):
        captured["padding_mask"], captured["spatial_shapes"] = args[1][0], args[2]
        captured["query_indices"] = selection.topk_indices[0]
        captured["query_boxes"] = selection.reference_points[0]
        captured["query_classes"] = selection.enc_logits[0, selection.topk_indices[0]].argmax(-1)

    hooks = [transformer.query_selector.register_forward_hook(on_query_selector)]
    if hasattr(transformer, "token_scorer"):
        hooks.append(transformer.token_scorer.register_forward_hook(on_scorer))
        hooks.append(transformer.token_selector.register_forward_hook(on_selector))
    try:
        with torch.no_grad():
            model([batched_input])
    finally:
        for hook in hooks:
            hook.remove()
    return {k: v.cpu() for k, v in captured.items()}


def token_pictures(image: np.ndarray, captured: dict, score_name: str) -> dict[str, list[Image.Image]]:
    """The captioned panels of each picture (file stem -> panels, one row) from
    :func:`capture_token_outputs` on the ``(H, W, 3)`` uint8 RGB image the model saw."""
    pictures = {}
    mask, shapes = captured["padding_mask"], captured["spatial_shapes"]
    if "token_logits" in captured:
        scores = level_grids(captured["token_logits"].sigmoid(), mask, shapes)
        kept = level_grids(captured["kept"].float(), mask, shapes)
        pictures["token_scores"] = [
            captioned(token_map_panel(image, grid), f"{score_name} L{level} {grid.shape[0]}x{grid.shape[1]}")
            for level, grid in enumerate(scores)
        ]
        pictures["kept_tokens"] = [
            captioned(kept_tokens_panel(image, grid > 0.5), f"kept L{level}: {int(grid.sum())}/{grid.size}")
            for level, grid in enumerate(kept)
        ]
    height, width = image.shape[:2]
    cx, cy, w, h = (captured["query_boxes"] * torch.tensor([width, height, width, height])).unbind(-1)
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    pictures["selected_queries"] = [
        captioned(
            query_boxes_panel(image, boxes, captured["query_classes"]), f"{len(boxes)} selected queries"
        )
    ]
    return pictures


def write_token_pictures(cfg, model: torch.nn.Module, index: int, out_dir: str) -> list[str]:
    """:func:`token_pictures` of the test set's image ``index`` written as ``out_dir/<stem>.png``."""
    records = DatasetCatalog.get(cfg.dataloader.test.dataset.names)
    if not 0 <= index < len(records):
        raise ValueError(f"--index {index} is outside the test set's {len(records)} images")
    batched_input = instantiate(cfg.dataloader.test.mapper)(records[index])
    image = batched_input["image"].permute(1, 2, 0).numpy()
    if getattr(model, "input_format", "RGB") == "BGR":
        image = image[..., ::-1]
    captured = capture_token_outputs(model, batched_input)
    score_name = getattr(model.transformer, "score_name", "token_logits")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for stem, panels in token_pictures(np.ascontiguousarray(image), captured, score_name).items():
        paths.append(os.path.join(out_dir, f"{stem}.png"))
        panel_row(panels).save(paths[-1])
    return paths


def select_images(records: list[dict], num_images: int, indices: list[int] | None, images: list[str] | None):
    """Positions in ``records`` of the images to draw: ``indices``, else those whose ``file_name`` is one of
    ``images`` (a path, or a file name matching the end of one), else the first ``num_images``.

    Raises:
        ValueError: naming an index outside the test set or a file that is not in it.
    """
    if indices:
        bad = [i for i in indices if i >= len(records)]
        if bad:
            raise ValueError(f"--index {bad[0]} is outside the test set's {len(records)} images")
        return list(indices)
    if images:
        chosen = []
        for image in images:
            matches = [
                i
                for i, r in enumerate(records)
                if os.path.abspath(r["file_name"]) == os.path.abspath(image)
                or os.path.basename(r["file_name"]) == image
            ]
            if not matches:
                raise ValueError(f"--image {image!r} is not a file of the test set ({len(records)} images)")
            chosen.append(matches[0])
        return chosen
    return list(range(min(num_images, len(records))))


def predict_records(cfg, model: torch.nn.Module, records: list[dict]) -> list[tuple[torch.Tensor, ...]]:
    """``(boxes (K, 4) xyxy in the original pixels, scores (K,), classes (K,))`` of each record, mapped by
    the test loader's mapper."""
    mapper = instantiate(cfg.dataloader.test.mapper)
    predictions = []
    with torch.no_grad():
        for record in records:
            instances = model([mapper(record)])[0]["instances"].to("cpu")
            predictions.append((instances.pred_boxes.tensor, instances.scores, instances.pred_classes))
    return predictions


def choose_score_threshold(records: list[dict], predictions: list[tuple[torch.Tensor, ...]]) -> tuple:
    """``(threshold, f1)`` of :func:`best_f1_threshold` over the records' detections matched at IoU 0.5."""
    scores, correct, num_ground_truth = [], [], 0
    for record, (boxes, image_scores, classes) in zip(records, predictions, strict=True):
        gt_boxes, gt_classes = ground_truth(record)
        pred_match, _ = match_detections(boxes, image_scores, classes, gt_boxes, gt_classes, MATCH_IOU)
        scores.append(image_scores)
        correct.append(pred_match >= 0)
        num_ground_truth += len(gt_boxes)
    return best_f1_threshold(torch.cat(scores), torch.cat(correct), num_ground_truth)


def write_predictions(
    cfg,
    model: torch.nn.Module,
    out: str,
    score_threshold: float | None = None,
    num_images: int = 6,
    indices: list[int] | None = None,
    images: list[str] | None = None,
) -> float:
    """Ground truth vs predictions of the chosen test images (:func:`select_images`), a grid of 2 columns
    in ``out``; returns the score threshold used (chosen by :func:`choose_score_threshold` on the whole
    test set when ``score_threshold`` is None)."""
    dataset_name = cfg.dataloader.test.dataset.names
    records = DatasetCatalog.get(dataset_name)
    class_names = MetadataCatalog.get(dataset_name).thing_classes
    shown = select_images(records, num_images, indices, images)
    if score_threshold is None:
        predictions = predict_records(cfg, model, records)
        score_threshold, f1 = choose_score_threshold(records, predictions)
        print(
            f"score threshold {score_threshold:.3f}: the best F1 ({f1:.3f}) at IoU {MATCH_IOU} on "
            f"{dataset_name} ({len(records)} images)"
        )
        predictions = [predictions[i] for i in shown]
    else:
        predictions = predict_records(cfg, model, [records[i] for i in shown])
    panels = []
    for index, (boxes, scores, classes) in zip(shown, predictions, strict=True):
        record = records[index]
        image = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        gt_boxes, gt_classes = ground_truth(record)
        panels.append(
            ground_truth_vs_predictions(
                image,
                gt_boxes,
                gt_classes,
                boxes,
                classes,
                scores,
                class_names,
                score_threshold,
                faint_threshold=score_threshold / 2,
                iou_threshold=MATCH_IOU,
            )
        )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    image_grid(panels, columns=2).save(out)
    return score_threshold


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="PNG file to write (with --tokens: a folder)")
    parser.add_argument("--num-images", type=positive_int, default=6, help="the first N test images")
    parser.add_argument(
        "--index",
        type=non_negative_int,
        action="append",
        help="a test image by position (repeat for more; --tokens: one)",
    )
    parser.add_argument(
        "--image", action="append", help="a test image by file, a path or a file name (repeat for more)"
    )
    parser.add_argument(
        "--score-threshold",
        type=unit_interval_float,
        default=None,
        help="draw detections scoring at least this (default: the best-F1 score on the test set)",
    )
    parser.add_argument(
        "--tokens", action="store_true", help="token scores and selected queries of one image"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args(argv)
    if args.index and args.image:
        parser.error("give --index or --image, not both")
    if args.tokens and (args.image or (args.index and len(args.index) > 1)):
        parser.error("--tokens draws one image: give one --index")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = load_model(cfg, args.checkpoint)
    if args.tokens:
        for path in write_token_pictures(cfg, model, args.index[0] if args.index else 0, args.out):
            print(f"wrote {path}")
        return
    threshold = write_predictions(
        cfg, model, args.out, args.score_threshold, args.num_images, args.index, args.image
    )
    print(
        f"wrote {args.out}: ground truth (left: green found, red missed) vs detections with score >= "
        f"{threshold:.3f} (right; faint: >= {threshold / 2:.3f})"
    )


if __name__ == "__main__":
    main()
