#!/usr/bin/env python
"""PNGs of a trained model: its predictions beside the ground truth, or (``--tokens``) what its encoder side
picks on one image.

    python tools/visualize.py --config-file F --checkpoint C --out predictions.png [--num-images 6]
        [--score-threshold 0.5] [key=value ...]
    python tools/visualize.py --tokens --config-file F --checkpoint C --out DIR [--index 0] [key=value ...]

Without ``--tokens``, each row shows an image with its ground-truth boxes (left) and the predictions scoring
at least the threshold (right), in the original image coordinates.

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
import itertools
import os

import numpy as np
import torch
from PIL import Image

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.data import DatasetCatalog, MetadataCatalog
from detrkit.structures import BoxMode
from detrkit.utils.token_visualizer import (
    captioned,
    kept_tokens_panel,
    level_grids,
    panel_row,
    query_boxes_panel,
    token_map_panel,
)
from detrkit.utils.visualizer import ground_truth_vs_predictions, image_grid


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


def load_model(cfg, checkpoint: str) -> torch.nn.Module:
    """The config's model with ``checkpoint``'s weights, in eval mode."""
    model = instantiate(cfg.model).to(cfg.train.device)
    DetectionCheckpointer(model).load(checkpoint)
    return model.eval()


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


def write_predictions(cfg, model: torch.nn.Module, num_images: int, score_threshold: float, out: str) -> None:
    """Ground truth vs predictions of the first ``num_images`` test images, a grid of 2 columns in ``out``."""
    dataset_name = cfg.dataloader.test.dataset.names
    records = {r["image_id"]: r for r in DatasetCatalog.get(dataset_name)}
    class_names = MetadataCatalog.get(dataset_name).thing_classes
    panels = []
    with torch.no_grad():
        for batch in itertools.islice(instantiate(cfg.dataloader.test), num_images):
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
                    score_threshold,
                )
            )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    image_grid(panels, columns=2).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="PNG file to write (with --tokens: a folder)")
    parser.add_argument("--num-images", type=int, default=6)
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument(
        "--tokens", action="store_true", help="token scores and selected queries of one image"
    )
    parser.add_argument("--index", type=int, default=0, help="with --tokens: the test image's position")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = load_model(cfg, args.checkpoint)
    if args.tokens:
        for path in write_token_pictures(cfg, model, args.index, args.out):
            print(f"wrote {path}")
        return
    write_predictions(cfg, model, args.num_images, args.score_threshold, args.out)
    print(
        f"wrote {args.out}: ground truth (left) vs predictions with score >= {args.score_threshold} (right)"
    )


if __name__ == "__main__":
    main()
