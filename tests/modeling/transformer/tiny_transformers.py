"""Tiny transformers (d=32, 2 heads, 2 levels, 2 encoder + 2 decoder layers) and inputs for the transformer
tests (imported by name: pytest puts this folder on sys.path)."""

import copy

import torch
from torch import nn

from detrkit.layers.mlp import MLP
from detrkit.modeling.transformer import (
    DINOTransformer,
    DINOTransformerDecoder,
    DINOTransformerEncoder,
    HDeformableDetrTransformer,
    HDeformableDetrTransformerDecoder,
    HDeformableDetrTransformerEncoder,
)

EMBED_DIM = 32
NUM_CLASSES = 3
SHAPES = ((8, 10), (4, 5))
LAYER_ARGS = dict(
    embed_dim=EMBED_DIM,
    num_heads=2,
    feedforward_dim=64,
    attn_dropout=0.0,
    ffn_dropout=0.0,
    num_layers=2,
    num_feature_levels=len(SHAPES),
)


def attach_heads(transformer: nn.Module, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Gives the decoder ``num_layers + 1`` class and box heads, as a detector does."""
    num_pred = transformer.decoder.num_layers + 1
    transformer.decoder.class_embed = nn.ModuleList(
        nn.Linear(EMBED_DIM, num_classes) for _ in range(num_pred)
    )
    box_head = MLP(EMBED_DIM, EMBED_DIM, 4, 3)
    transformer.decoder.bbox_embed = nn.ModuleList(copy.deepcopy(box_head) for _ in range(num_pred))
    return transformer


def dino_transformer(num_queries: int = 10, **kwargs) -> DINOTransformer:
    """A DINOTransformer with heads attached, seeded."""
    torch.manual_seed(0)
    transformer = DINOTransformer(
        DINOTransformerEncoder(**LAYER_ARGS),
        DINOTransformerDecoder(**LAYER_ARGS),
        num_feature_levels=len(SHAPES),
        two_stage_num_proposals=num_queries,
        **kwargs,
    )
    return attach_heads(transformer)


def h_transformer(num_queries: int = 10, **kwargs) -> HDeformableDetrTransformer:
    """An HDeformableDetrTransformer with heads attached, seeded."""
    torch.manual_seed(0)
    transformer = HDeformableDetrTransformer(
        HDeformableDetrTransformerEncoder(**LAYER_ARGS),
        HDeformableDetrTransformerDecoder(**LAYER_ARGS),
        num_feature_levels=len(SHAPES),
        two_stage_num_proposals=num_queries,
        **kwargs,
    )
    return attach_heads(transformer)


def level_inputs(batch: int = 2, seed: int = 0):
    """``(feats, masks, pos_embeds)`` on SHAPES; the second image is padded on the right (a quarter of the
    columns) and at the bottom (the last row)."""
    g = torch.Generator().manual_seed(seed)
    feats, masks, pos = [], [], []
    for h, w in SHAPES:
        feats.append(torch.randn(batch, EMBED_DIM, h, w, generator=g))
        pos.append(torch.randn(batch, EMBED_DIM, h, w, generator=g))
        mask = torch.zeros(batch, h, w, dtype=torch.bool)
        if batch > 1:
            mask[1, :, w - w // 4 :] = True
            mask[1, h - 1 :, :] = True
        masks.append(mask)
    return feats, masks, pos


# detrex parameter names, written out from its module tree, for the name-compatibility tests
MSDA = [
    f"{p}.{w}"
    for p in ("sampling_offsets", "attention_weights", "value_proj", "output_proj")
    for w in ("weight", "bias")
]
FFN_KEYS = [f"ffns.0.layers.{p}.{w}" for p in ("0.0", "1") for w in ("weight", "bias")]
MHA = ["attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"]


def norms(count):
    """detrex names of ``count`` LayerNorms of a transformer layer."""
    return [f"norms.{i}.{w}" for i in range(count) for w in ("weight", "bias")]


def detrex_encoder_keys(num_layers):
    """detrex's DINOTransformerEncoder state-dict names, written out from its module tree."""
    return {
        f"layers.{n}.{k}"
        for n in range(num_layers)
        for k in [f"attentions.0.{m}" for m in MSDA] + FFN_KEYS + norms(2)
    }


def detrex_dino_decoder_keys(num_layers):
    """detrex's DINOTransformerDecoder state-dict names (H-Deformable-DETR's: the ``layers.*`` ones)."""
    layer = [f"attentions.0.{m}" for m in MHA] + [f"attentions.1.{m}" for m in MSDA] + FFN_KEYS + norms(3)
    keys = {f"layers.{n}.{k}" for n in range(num_layers) for k in layer}
    return (
        keys
        | {f"ref_point_head.layers.{i}.{w}" for i in (0, 1) for w in ("weight", "bias")}
        | {
            "norm.weight",
            "norm.bias",
        }
    )
