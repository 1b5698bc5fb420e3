"""Official Rank-DETR checkpoints (LeapLabTHU/Rank-DETR, a detrex fork) -> detrkit names; registered as
source ``"rank-detr"`` at import (``tools/convert_checkpoint.py --from rank-detr``).

The official model is detrex's H-Deformable-DETR plus the rank modules: the detrex renames apply (backbone,
two-stage heads), and the decoder's per-layer lists ``rank_aware_content_query.{l}``, ``pre_racq_trans.{l}``
and ``post_racq_trans.{l}`` become the :class:`QueryRankLayer` ``rank_layers.{l}.rank_content``,
``.content_proj`` and ``.fuse``. ``rank_adaptive_classhead_emb.{l}`` keeps its name.
"""

import re

from detrkit.modeling.checkpoint_conversion import CONVERTERS, StateDict, register_converter

__all__ = ["convert_rank_detr"]

_RANK_LAYER = re.compile(
    r"^transformer\.decoder\.(rank_aware_content_query|pre_racq_trans|post_racq_trans)\.(\d+)\."
)
_RANK_LAYER_PARTS = {
    "rank_aware_content_query": "rank_content",
    "pre_racq_trans": "content_proj",
    "post_racq_trans": "fuse",
}


def _rank_name(name: str) -> str:
    match = _RANK_LAYER.match(name)
    if match is None:
        return name
    part, layer = match.groups()
    return f"transformer.decoder.rank_layers.{layer}.{_RANK_LAYER_PARTS[part]}." + name[match.end() :]


def convert_rank_detr(state_dict: StateDict) -> StateDict:
    """An official Rank-DETR state dict with detrkit's names (same tensors)."""
    detrex_named = CONVERTERS["detrex-h-deformable-detr"](state_dict)
    return {_rank_name(k): v for k, v in detrex_named.items()}


register_converter("rank-detr", convert_rank_detr)
