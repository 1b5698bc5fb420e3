"""Official Focus-DETR checkpoints (detrex ``projects/focus_detr``) -> detrkit names; registered as source
``"detrex-focus-detr"`` at import (``tools/convert_checkpoint.py --from detrex-focus-detr``).

On top of detrex DINO's renames (backbone, two-stage heads): the score predictor and ``alpha`` move into
``transformer.token_scorer`` (``alpha`` reversed: detrex stores it coarse-to-fine, detrkit by finer level),
the encoder layers' ``norm2`` becomes ``object_norm``, and the per-layer references to the encoder class
head, ``enhance_MCSP_layerlist.{k}`` / ``transformer.encoder.enhance_MCSP.{k}``, become
``encoder_class_heads.{k}`` / ``transformer.encoder.class_heads.{k}``.
"""

import re

from detrkit.modeling.checkpoint_conversion import CONVERTERS, StateDict, register_converter
from detrkit_projects.focus_detr.modeling.focus_detr_transformer import FocusDETRTransformer

__all__ = ["convert_focus_detr"]

_RENAMES = (
    (re.compile(r"^enhance_MCSP_layerlist\."), "encoder_class_heads."),
    (re.compile(r"^transformer\.encoder\.enhance_MCSP\."), "transformer.encoder.class_heads."),
    (re.compile(r"^(transformer\.encoder\.layers\.\d+\.)norm2\."), r"\1object_norm."),
)


def _focus_name(name: str) -> str:
    for pattern, replacement in _RENAMES:
        name = pattern.sub(replacement, name)
    if name.startswith("transformer."):
        rest = name[len("transformer.") :]
        for old, new in FocusDETRTransformer.detrex_key_renames.items():
            if rest.startswith(old):
                return "transformer." + new + rest[len(old) :]
    return name


def convert_focus_detr(state_dict: StateDict) -> StateDict:
    """An official Focus-DETR state dict with detrkit's names (same tensors, ``alpha`` reversed)."""
    converted = {_focus_name(k): v for k, v in CONVERTERS["detrex-dino"](state_dict).items()}
    if "transformer.token_scorer.alpha" in converted:
        converted["transformer.token_scorer.alpha"] = converted["transformer.token_scorer.alpha"].flip(0)
    return converted


register_converter("detrex-focus-detr", convert_focus_detr)
