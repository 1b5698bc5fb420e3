#!/usr/bin/env python
"""Exports a config's detector to ONNX for inference on one image of a fixed size, optionally checked with
onnxruntime (CPU) against PyTorch.

    python tools/export_onnx.py --config-file F --out model.onnx [--checkpoint C] [--height 800]
        [--width 1333] [--exporter {torchscript,dynamo}] [--opset N] [--check [--float64-reference]]
        [key=value ...]

The graph (see :mod:`detrkit.export`): input ``image`` ``(1, 3, H, W)`` float32 pixel values in [0, 255]
in the model's channel order (RGB for the shipped configs), the whole image valid (resize the picture to
``H x W``); outputs ``boxes`` ``(K, 4)`` xyxy in the input's pixels, ``scores`` ``(K,)``, ``labels`` ``(K,)``
int64, by decreasing score, ``K`` = the config's ``select_box_nums_for_evaluation`` (fewer if empty boxes
are dropped). Without ``--checkpoint`` the weights are the config's random initialisation (seed 0).
``--exporter`` picks TorchScript-based export (default, opset 17) or the ``torch.export``-based one (opset 18;
the model must be capturable by ``torch.export``, see :func:`detrkit.export.export_detector_onnx`).

``--check`` runs both on the export input and on a second random image and prints one JSON line last:
the largest absolute differences of boxes (pixels) and scores over both images, and each image's;
``--float64-reference`` adds, per image, those of PyTorch float64 from PyTorch float32 (see
:func:`detrkit.export.compare_with_onnxruntime`): where a model's top-k selections meet near-equal scores
(random weights at 800x1333), float32 rounding alone changes detections, and this shows how much.
"""

import argparse
import json

import torch

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.export import compare_with_onnxruntime, export_detector_onnx
from detrkit.export.onnx import EXPORTERS


def build_model(config_file: str, checkpoint: str | None, overrides: list[str]) -> torch.nn.Module:
    """The config's model on CPU in eval mode, with ``checkpoint``'s weights or seeded random ones."""
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_file), overrides)
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    if checkpoint:
        DetectionCheckpointer(model).load(checkpoint)
    return model.eval()


def random_image(height: int, width: int, seed: int) -> torch.Tensor:
    """``(1, 3, H, W)`` float32 integer pixel values in [0, 255]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, 3, height, width), generator=generator).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", default=None, help="weights (DetectionCheckpointer); default random")
    parser.add_argument("--out", required=True, help="path of the .onnx file")
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--width", type=int, default=1333)
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript")
    parser.add_argument("--opset", type=int, default=None, help="default 17 (torchscript), 18 (dynamo)")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with PyTorch (JSON line)")
    parser.add_argument(
        "--float64-reference",
        action="store_true",
        help="with --check: also how far PyTorch float64 is from float32 (the model's rounding sensitivity)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()
    if args.height <= 0 or args.width <= 0:
        parser.error(f"--height {args.height} --width {args.width}: the image size must be positive")

    model = build_model(args.config_file, args.checkpoint, args.opts)
    image = random_image(args.height, args.width, seed=0)
    export_detector_onnx(model, args.out, image, opset=args.opset, exporter=args.exporter)
    print(f"wrote {args.out}: image (1, 3, {args.height}, {args.width}) -> boxes, scores, labels")
    if args.check:
        second = random_image(args.height, args.width, seed=1)
        checks = [
            compare_with_onnxruntime(model, args.out, x, float64_reference=args.float64_reference)
            for x in (image, second)
        ]
        report = {
            "config": args.config_file,
            "exporter": args.exporter,
            "input_size": [args.height, args.width],
            "max_abs_diff_boxes": max(c["max_abs_diff_boxes"] for c in checks),
            "max_abs_diff_scores": max(c["max_abs_diff_scores"] for c in checks),
            "images": checks,
        }
        print(json.dumps(report))


if __name__ == "__main__":
    main()
