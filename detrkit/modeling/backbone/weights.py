"""Pretrained backbone weights from local files: torchvision ``.pth`` state dicts and detectron2 ``.pkl``
checkpoints, optionally checked against a sha256 digest before they are unpickled."""

import hashlib
import logging
import os
import re

import numpy as np
import torch
from torch import nn

from detrkit.checkpoint import DetectionCheckpointer

__all__ = ["load_backbone_weights", "read_state_dict", "verify_sha256"]

logger = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-f]{8,64}")


def verify_sha256(path: str, expected: str) -> str:
    """Checks the sha256 digest of the file ``path``.

    Args:
        expected: the full hex digest, or a prefix of at least 8 hex digits (torchvision puts the first 8 in
            its file names, e.g. ``mobilenet_v2-b0353104.pth``).
    Returns:
        the full hex digest.
    Raises:
        ValueError: if ``expected`` is not hex or the digest differs.
    """
    expected = expected.lower()
    if not _HEX.fullmatch(expected):
        raise ValueError(f"expected sha256 {expected!r} for {path} must be 8 to 64 hex digits")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    if not actual.startswith(expected):
        raise ValueError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is corrupt or not the one meant"
        )
    return actual


def read_state_dict(path: str, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Reads the model weights of a checkpoint file as ``{name: tensor}``.

    Accepts a plain state dict (torchvision ``.pth``), a ``{"model": state_dict, ...}`` checkpoint
    (detectron2/detrkit ``.pth``) and a detectron2 ``.pkl`` (``{"model": {name: ndarray}}``).

    Args:
        path: local file.
        sha256: if given, the file is verified with :func:`verify_sha256` before it is read.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    if sha256 is not None:
        verify_sha256(path, sha256)
    checkpoint = DetectionCheckpointer(nn.Module(), save_to_disk=False)._load_file(path)
    return {
        key: torch.as_tensor(value) if isinstance(value, np.ndarray) else value
        for key, value in checkpoint["model"].items()
    }


def load_backbone_weights(
    backbone: nn.Module, path: str, sha256: str | None = None, prefix: str = ""
) -> nn.Module:
    """Loads pretrained weights into a backbone of this package, requiring every parameter and buffer to be
    filled and every checkpoint entry to be used (the classifier and unbuilt stages excepted).

    The backbone's ``convert_pretrained_state_dict`` maps the file's names to its own (e.g. detectron2's
    ``res2.0.conv1.norm.weight`` to torchvision's ``layer1.0.bn1.weight`` for :class:`ResNet`).
    Usable in a LazyConfig: ``backbone=L(load_backbone_weights)(backbone=L(ResNet)(...), path=...)``.

    Args:
        backbone: a ``ResNet``, ``MobileNetV2`` or ``SwinTransformer`` (anything with
            ``convert_pretrained_state_dict``).
        path: local ``.pth``/``.pkl`` file.
        sha256: expected digest (or prefix of >= 8 hex digits), checked before the file is unpickled.
        prefix: take only the entries whose names start with it, without it (e.g. ``"backbone."`` to load
            the backbone of a detector checkpoint).
    Returns:
        ``backbone``, with the weights loaded and recorded in its ``pretrained_weights`` attribute
        (``{"path", "sha256"}``: the checkpointer's log names them when no checkpoint is loaded over them).
    Raises:
        ValueError: naming ``path`` and the keys, if entries are missing, left over or of the wrong shape.
    """
    state_dict = read_state_dict(path, sha256)
    if prefix:
        state_dict = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    state_dict = backbone.convert_pretrained_state_dict(state_dict)
    try:
        result = backbone.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:
        raise ValueError(f"{path}: cannot load into {type(backbone).__name__}: {e}") from e
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path}: does not match {type(backbone).__name__}: "
            f"missing {result.missing_keys[:8]} ({len(result.missing_keys)} in all), "
            f"unexpected {result.unexpected_keys[:8]} ({len(result.unexpected_keys)} in all)"
        )
    checked = f"sha256 {sha256} verified" if sha256 is not None else "sha256 not checked"
    backbone.pretrained_weights = {"path": os.path.abspath(path), "sha256": sha256 or "not checked"}
    logger.info(
        f"{type(backbone).__name__}: loaded {len(state_dict)} pretrained tensors from {path} ({checked})"
    )
    return backbone
