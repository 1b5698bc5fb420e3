"""Official Salience DETR checkpoints (xiuqhou/Salience-DETR) -> detrkit names; registered as source
``"salience-detr"`` at import (``tools/convert_checkpoint.py --from salience-detr``).

The backbone keeps torchvision's names in both. Renamed: the neck convolutions (``convs.{i}.0/1`` ->
``convs.{i}.conv/norm``, the extra level -> ``extra_convs.0``), the decoder and encoder layers (detrex-style
``attentions`` / ``norms`` / ``ffns``; the encoder's ``pre_attention`` / ``pre_norm`` are the object-token
attention and ``object_norm``), the heads (``transformer.decoder.class_head.{k}`` -> ``class_embed.{k}``, the
encoder heads -> ``class_embed.{L}`` / ``bbox_embed.{L}``; every alias under which detrkit shares a head is
written too, so that the result loads with ``strict=True``), the score predictor and ``alpha`` (same order),
the background embedding, the token fusion network (``transformer.neck``) and the denoising label embedding.
The official buffers that detrkit computes (``position_embedding.dim_tx/dim_ty``,
``transformer.level_filter_ratio/layer_filter_ratio``) are dropped.
"""

import re

from detrkit.modeling.checkpoint_conversion import StateDict, register_converter

__all__ = ["convert_salience_detr"]

#: official buffers with no detrkit counterpart (constants detrkit computes or keeps in its config)
DROPPED = (
    "position_embedding.dim_tx",
    "position_embedding.dim_ty",
    "transformer.level_filter_ratio",
    "transformer.layer_filter_ratio",
)

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
    "transformer.neck.": "transformer.token_fusion.",
    "denoising_generator.label_encoder.": "label_enc.",
}
_FUSION = {
    ".se_module.conv_mask.": ".context_gate.attention.",
    ".se_module.se_module.": ".context_gate.transform.",
}


def _layer_name(name: str, stack: str, renames: dict[str, str]) -> str | None:
    match = re.match(rf"^transformer\.{stack}\.layers\.(\d+)\.(.*)$", name)
    if match is None:
        return None
    index, rest = match.groups()
    for old, new in renames.items():
        if rest.startswith(old):
            return f"transformer.{stack}.layers.{index}.{new}{rest[len(old) :]}"
    raise KeyError(f"salience-detr: unknown {stack} layer parameter {name!r}")


def _names(name: str, num_decoder_layers: int, num_encoder_layers: int) -> list[str]:
    """detrkit names (one, or every alias of a shared head) of one official name."""
    for stack, renames in (("encoder", _ENCODER_LAYER), ("decoder", _DECODER_LAYER)):
        renamed = _layer_name(name, stack, renames)
        if renamed is not None:
            return [renamed]
    match = re.match(r"^neck\.convs\.(\d+)\.([01])\.(.*)$", name)
    if match is not None:
        index, part, rest = int(match.group(1)), match.group(2), match.group(3)
        part = "conv" if part == "0" else "norm"
        return [
            f"neck.convs.{index}.{part}.{rest}"
            if index < 3
            else f"neck.extra_convs.{index - 3}.{part}.{rest}"
        ]
    match = re.match(r"^transformer\.decoder\.(class|bbox)_head\.(\d+)\.(.*)$", name)
    if match is not None:
        kind, index, rest = match.groups()
        return [f"{kind}_embed.{index}.{rest}", f"transformer.decoder.{kind}_embed.{index}.{rest}"]
    match = re.match(
        r"^transformer\.(encoder_class_head|encoder\.enhance_mcsp|encoder_bbox_head)\.(.*)$", name
    )
    if match is not None:
        head, rest = match.groups()
        kind = "bbox" if head == "encoder_bbox_head" else "class"
        names = [
            f"{kind}_embed.{num_decoder_layers}.{rest}",
            f"transformer.decoder.{kind}_embed.{num_decoder_layers}.{rest}",
        ]
        if kind == "class":
            names += [f"encoder_class_heads.{k}.{rest}" for k in range(num_encoder_layers)]
            names += [f"transformer.encoder.class_heads.{k}.{rest}" for k in range(num_encoder_layers)]
        return names
    for old, new in _PREFIXES.items():
        if name.startswith(old):
            renamed = new + name[len(old) :]
            for fusion_old, fusion_new in _FUSION.items():
                renamed = renamed.replace(fusion_old, fusion_new)
            return [renamed]
    return [name]


def convert_salience_detr(state_dict: StateDict) -> StateDict:
    """An official Salience DETR state dict with detrkit's names (same tensors; shared heads under every
    alias; :data:`DROPPED` buffers removed)."""
    num_decoder_layers = len(
        {k.split(".")[3] for k in state_dict if k.startswith("transformer.decoder.class_head.")}
    )
    num_encoder_layers = len(
        {k.split(".")[3] for k in state_dict if k.startswith("transformer.encoder.layers.")}
    )
    converted = {}
    for name, tensor in state_dict.items():
        if name in DROPPED:
            continue
        for new_name in _names(name, num_decoder_layers, num_encoder_layers):
            converted[new_name] = tensor
    return converted


register_converter("salience-detr", convert_salience_detr)
