"""Official Rank-DETR checkpoints (LeapLabTHU/Rank-DETR, a detrex fork) <-> detrkit names; registered as
source ``"rank-detr"`` at import (``tools/convert_checkpoint.py --from/--to rank-detr``).

The official model is detrex's H-Deformable-DETR plus the rank modules: the detrex renames apply (backbone,
two-stage heads), and the decoder's per-layer lists ``rank_aware_content_query.{l}``, ``pre_racq_trans.{l}``
and ``post_racq_trans.{l}`` become the :class:`QueryRankLayer` ``rank_layers.{l}.rank_content``,
``.content_proj`` and ``.fuse`` of the decoder's ``between_layers`` hook (:class:`QueryRanking`); the
detector's ``rank_adaptive_classhead_emb.{l}`` is its ``class_bias.{l}`` (:class:`RankAdaptiveClassHead`).
"""

from detrkit.modeling.checkpoint_conversion import CONVERTERS, Rename, register_converter

__all__ = ["RANK_DETR"]

RANK_DETR = CONVERTERS["detrex-h-deformable-detr"].extend(
    "rank-detr",
    [
        *(
            Rename(
                f"transformer.decoder.{official}.{{layer}}.",
                f"transformer.decoder.between_layers.rank_layers.{{layer}}.{ours}.",
            )
            for official, ours in (
                ("rank_aware_content_query", "rank_content"),
                ("pre_racq_trans", "content_proj"),
                ("post_racq_trans", "fuse"),
            )
        ),
        Rename("rank_adaptive_classhead_emb.", "class_bias."),
    ],
)

register_converter(RANK_DETR)
