"""Official Salience DETR checkpoints (xiuqhou/Salience-DETR) <-> detrkit names; registered as source
``"salience-detr"`` at import (``tools/convert_checkpoint.py --from/--to salience-detr``).

The backbone keeps torchvision's names in both. Renamed: the neck convolutions (``convs.{i}.0/1`` ->
``convs.{i}.conv/norm``, the extra level -> ``extra_convs.0``), the decoder and encoder layers (detrex-style
``attentions`` / ``norms`` / ``ffns``; the encoder's ``pre_attention`` / ``pre_norm`` are the object-token
attention and ``object_norm``), the heads (``transformer.decoder.class_head.{k}`` -> ``class_embed.{k}``, the
encoder heads -> ``class_embed.{L}`` / ``bbox_embed.{L}``; every alias under which detrkit shares a head is
written, so that the result loads with ``strict=True``), the score predictor and ``alpha`` (same order), the
background embedding, the token fusion network (``transformer.neck``) and the denoising label embedding.
The official buffers that detrkit computes or keeps in its config (:data:`DERIVED`:
``position_embedding.dim_tx/dim_ty``, ``transformer.level_filter_ratio/layer_filter_ratio``) are dropped on
the way in and rebuilt from the detrkit model on the way out.
"""

import re

import torch

from detrkit.layers.position_embedding import _frequencies
from detrkit.modeling.checkpoint_conversion import Converter, Rename, StateDict, register_converter

__all__ = ["DERIVED", "SALIENCE_DETR"]


def _position_frequencies(model) -> torch.Tensor:
    embedding = model.position_embedding
    return _frequencies(embedding.num_pos_feats, embedding.temperature, torch.device("cpu"))


#: official buffers with no detrkit counterpart -> their value, from the detrkit model
DERIVED = {
    "position_embedding.dim_tx": _position_frequencies,
    "position_embedding.dim_ty": _position_frequencies,
    "transformer.level_filter_ratio": lambda model: torch.tensor(
        model.transformer.token_selector.level_ratios
    ),
    "transformer.layer_filter_ratio": lambda model: torch.tensor(
        model.transformer.token_selector.layer_ratios
    ),
}

_ENCODER_LAYER = {
    "pre_attention.": "attentions.0.attn.",
    "pre_norm.": "object_norm.",
    "self_attn.": "attentions.1.",
    "norm1.": "norms.0.",
    "linear1.": "ffns.0.layers.0.0.",
    "linear2.": "ffns.0.layers.1.",
    "norm2.": "norms.1.",
}
_DECODER_LAYER = {
    "self_attn.": "attentions.0.attn.",
    "norm2.": "norms.0.",
    "cross_attn.": "attentions.1.",
    "norm1.": "norms.1.",
    "linear1.": "ffns.0.layers.0.0.",
    "linear2.": "ffns.0.layers.1.",
    "norm3.": "norms.2.",
}
_PREFIXES = {
    "transformer.alpha": "transformer.token_scorer.alpha",
    "transformer.enc_output.": "transformer.query_selector.enc_output.",
    "transformer.enc_output_norm.": "transformer.query_selector.enc_output_norm.",
    "transformer.tgt_embed.": "transformer.query_selector.tgt_embed.",
    "transformer.enc_mask_predictor.layer1.": "transformer.token_scorer.predictor.embed.",
    "transformer.enc_mask_predictor.layer2.": "transformer.token_scorer.predictor.head.",
    "transformer.encoder.background_embedding.": "transformer.background_embedding.embedding.",
    "denoising_generator.label_encoder.": "label_enc.",
}
_FUSION = {
    "se_module.conv_mask.": "context_gate.attention.",
    "se_module.se_module.": "context_gate.transform.",
}

_RULES = (
    *(
        Rename(f"transformer.{stack}.layers.{{i}}.{old}", f"transformer.{stack}.layers.{{i}}.{new}")
        for stack, renames in (("encoder", _ENCODER_LAYER), ("decoder", _DECODER_LAYER))
        for old, new in renames.items()
    ),
    # the neck's three backbone levels, then its extra level(s)
    Rename("neck.convs.{i+3}.0.", "neck.extra_convs.{i}.conv."),
    Rename("neck.convs.{i+3}.1.", "neck.extra_convs.{i}.norm."),
    Rename("neck.convs.{i}.0.", "neck.convs.{i}.conv."),
    Rename("neck.convs.{i}.1.", "neck.convs.{i}.norm."),
    # the encoder's heads are the last class/bbox heads (L = number of decoder layers) and, for the class
    # head, each encoder layer's token head (K: every encoder layer); before the decoder's heads, whose
    # detrkit names class_embed.{k} would also match class_embed.{L}
    Rename(
        ("transformer.encoder_class_head.", "transformer.encoder.enhance_mcsp."),
        (
            "class_embed.{L}.",
            "transformer.decoder.class_embed.{L}.",
            "encoder_class_heads.{K}.",
            "transformer.encoder.class_heads.{K}.",
        ),
    ),
    Rename("transformer.encoder_bbox_head.", ("bbox_embed.{L}.", "transformer.decoder.bbox_embed.{L}.")),
    *(
        Rename(
            f"transformer.decoder.{kind}_head.{{k}}.",
            (f"{kind}_embed.{{k}}.", f"transformer.decoder.{kind}_embed.{{k}}."),
        )
        for kind in ("class", "bbox")
    ),
    *(Rename(old, new) for old, new in _PREFIXES.items()),
    # the token fusion network: transformer.neck -> transformer.token_fusion, its context gates renamed
    *(
        Rename(
            f"transformer.neck.{blocks}.{{i}}.bottlenecks.{{j}}.{old}",
            f"transformer.token_fusion.{blocks}.{{i}}.bottlenecks.{{j}}.{new}",
        )
        for blocks in ("layer_blocks", "pan_blocks")
        for old, new in _FUSION.items()
    ),
    Rename("transformer.neck.", "transformer.token_fusion."),
)


def _layer_counts(state_dict: StateDict) -> dict[str, range]:
    """``L``: the number of decoder layers, ``K``: every encoder layer (both sides name the layers alike)."""
    layers = {
        stack: {
            int(m[1]) for key in state_dict if (m := re.match(rf"transformer\.{stack}\.layers\.(\d+)\.", key))
        }
        for stack in ("encoder", "decoder")
    }
    return {"L": [len(layers["decoder"])], "K": range(len(layers["encoder"]))}


SALIENCE_DETR = Converter(
    "salience-detr",
    _RULES,
    closed_prefixes=("transformer.encoder.layers.", "transformer.decoder.layers."),
    derived=DERIVED,
    context=_layer_counts,
)

register_converter(SALIENCE_DETR)
