"""What the project config tests share (imported by name: tests/projects/conftest.py puts this folder on
``sys.path``): loading a config on the CPU with overrides, the overrides that shrink a ResNet-50 DETR config
to a tiny one, a tiny detectron2 batch, and one training and evaluation step with the config's criterion."""

from pathlib import Path

import torch

from detrkit.config import LazyConfig
from detrkit.structures import Boxes, Instances
from detrkit.utils.events import EventStorage

# ResNet-18, one encoder layer, FFN 64, 3 classes, 20 detections; files add their own (later ones win)
TINY = [
    "model.backbone.depth=18",
    "model.neck.input_shapes.res3.channels=128",
    "model.neck.input_shapes.res4.channels=256",
    "model.neck.input_shapes.res5.channels=512",
    "model.transformer.encoder.num_layers=1",
    "model.transformer.encoder.feedforward_dim=64",
    "model.transformer.decoder.feedforward_dim=64",
    "model.num_classes=3",
    "model.select_box_nums_for_evaluation=20",
]


def config_loader(folder: Path):
    """``load(name, overrides=())``: the config ``folder / name`` (an absolute path is taken as it is) with
    ``model.device = "cpu"`` and the ``key=value`` overrides applied."""

    def load(name, overrides=()):
        cfg = LazyConfig.load(str(folder / name))
        cfg.model.device = "cpu"
        return LazyConfig.apply_overrides(cfg, list(overrides))

    return load


def tiny_batch(size: int = 64, second_width: int | None = None) -> list[dict]:
    """Two random images of ``size x size`` (the second ``size x second_width``, for a padded batch): the
    first with two boxes (classes 0 and 2), the second without objects."""
    g = torch.Generator().manual_seed(0)
    batch = []
    for boxes, classes, width in [
        ([[4.0, 6, 40, 30], [20, 20, 60, 62]], [0, 2], size),
        ([], [], second_width or size),
    ]:
        instances = Instances((size, width))
        instances.gt_boxes = Boxes(torch.tensor(boxes).reshape(-1, 4))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        image = torch.randint(0, 256, (3, size, width), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "height": size, "width": width, "instances": instances})
    return batch


def train_and_evaluate(model, batch: list[dict]) -> dict:
    """One training step on ``batch``: a finite loss for every key of the criterion's ``weight_dict`` and a
    gradient for every trainable parameter; then evaluation of the first image gives detections in its size.
    Returns the losses. The step runs inside an ``EventStorage`` at iteration 0, as a trainer's does (Rank
    DETR's matcher reads the iteration from it)."""
    model.train()
    with EventStorage(0):
        losses = model(batch)
    assert set(losses) == set(model.criterion.weight_dict)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    model.eval()
    with torch.no_grad():
        result = model(batch[:1])[0]["instances"]
    assert result.image_size == (batch[0]["height"], batch[0]["width"]) and len(result) > 0
    return losses
