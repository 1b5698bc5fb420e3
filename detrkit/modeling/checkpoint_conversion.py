"""Converting official checkpoints' state dicts to detrkit's parameter names.

detrex's DINO and H-Deformable-DETR differ from detrkit's only in two places: the backbone uses detectron2's
ResNet names (``backbone.res2.0.conv1.norm.weight``; detrkit's ResNet keeps torchvision's,
``backbone.layer1.0.bn1.weight``), and the two-stage heads live in the transformer's query selector
(``transformer.enc_output.*`` -> ``transformer.query_selector.enc_output.*``).
"""

from collections.abc import Callable

import torch

from detrkit.modeling.backbone import detectron2_resnet_name_to_torchvision
from detrkit.modeling.transformer import DINOTransformer, HDeformableDetrTransformer

__all__ = ["CONVERTERS", "StateDict", "convert_state_dict", "register_converter"]

StateDict = dict[str, torch.Tensor]


def _detrex_name(name: str, transformer_renames: dict[str, str]) -> str:
    if name.startswith("backbone."):
        return "backbone." + detectron2_resnet_name_to_torchvision(name[len("backbone.") :])
    if name.startswith("transformer."):
        rest = name[len("transformer.") :]
        for old, new in transformer_renames.items():
            if rest.startswith(old):
                return "transformer." + new + rest[len(old) :]
    return name


def _detrex_converter(transformer_renames: dict[str, str]) -> Callable[[StateDict], StateDict]:
    def convert(state_dict: StateDict) -> StateDict:
        converted = {_detrex_name(k, transformer_renames): v for k, v in state_dict.items()}
        if len(converted) != len(state_dict):
            raise ValueError("two official names map to one detrkit name")
        return converted

    return convert


CONVERTERS: dict[str, Callable[[StateDict], StateDict]] = {
    "detrex-dino": _detrex_converter(DINOTransformer.detrex_key_renames),
    "detrex-h-deformable-detr": _detrex_converter(HDeformableDetrTransformer.detrex_key_renames),
}


def register_converter(source: str, convert: Callable[[StateDict], StateDict]) -> None:
    """Adds a source (a project's official checkpoint format) to :data:`CONVERTERS`. ``convert`` maps an
    official state dict to detrkit's names; it may drop official-only buffers or write a tensor shared by
    several detrkit modules under each of their names."""
    if source in CONVERTERS:
        raise ValueError(f"a converter for {source!r} is already registered")
    CONVERTERS[source] = convert


def convert_state_dict(state_dict: StateDict, source: str) -> StateDict:
    """``state_dict`` of an official ``source`` model with detrkit's names (same tensors)."""
    if source not in CONVERTERS:
        raise ValueError(f"unknown checkpoint source {source!r}; known: {sorted(CONVERTERS)}")
    return CONVERTERS[source](state_dict)
