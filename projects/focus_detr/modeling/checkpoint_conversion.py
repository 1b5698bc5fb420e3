"""Official Focus-DETR checkpoints (detrex ``projects/focus_detr``) <-> detrkit names; registered as source
``"detrex-focus-detr"`` at import (``tools/convert_checkpoint.py --from/--to detrex-focus-detr``).

On top of detrex DINO's renames (backbone, two-stage heads): the score predictor and ``alpha`` move into
``transformer.token_scorer`` (``alpha`` reversed: detrex stores it coarse-to-fine, detrkit by finer level),
the encoder layers' ``norm2`` becomes ``object_norm``, and the per-layer references to the encoder class
head, ``enhance_MCSP_layerlist.{k}`` / ``transformer.encoder.enhance_MCSP.{k}``, become
``encoder_class_heads.{k}`` / ``transformer.encoder.class_heads.{k}``.
"""

from detrkit.modeling.checkpoint_conversion import (
    DETECTRON2_RESNET_RULES,
    REVERSED,
    Converter,
    Rename,
    detrex_transformer_rules,
    register_converter,
)
from detrkit_projects.focus_detr.modeling.focus_detr_transformer import FocusDETRTransformer

__all__ = ["FOCUS_DETR"]

FOCUS_DETR = Converter(
    "detrex-focus-detr",
    (
        # before the transformer's renames, whose "alpha" entry this overrides: reversed as well as renamed
        Rename("transformer.alpha", "transformer.token_scorer.alpha", transform=REVERSED),
        Rename("enhance_MCSP_layerlist.{k}.", "encoder_class_heads.{k}."),
        Rename("transformer.encoder.enhance_MCSP.{k}.", "transformer.encoder.class_heads.{k}."),
        Rename("transformer.encoder.layers.{i}.norm2.", "transformer.encoder.layers.{i}.object_norm."),
        *DETECTRON2_RESNET_RULES,
        *detrex_transformer_rules(FocusDETRTransformer.detrex_key_renames),
    ),
    closed_prefixes=("backbone.",),
)

register_converter(FOCUS_DETR)
