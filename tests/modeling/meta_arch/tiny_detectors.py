"""Tiny DINO / H-Deformable-DETR (d=32, 2 heads, 2 levels, 2 + 2 layers) with stand-in backbone, neck,
position embedding and criterion, and a hand-made batch (imported by name: pytest puts this folder on
sys.path)."""

import torch
from torch import nn

from detrkit.layers.position_embedding import get_sine_pos_embed
from detrkit.modeling.criterion import build_weight_dict
from detrkit.modeling.criterion.hybrid_criterion import repeat_targets
from detrkit.modeling.meta_arch import DINO, HDeformableDETR
from detrkit.modeling.transformer import (
    DINOTransformer,
    DINOTransformerDecoder,
    DINOTransformerEncoder,
    HDeformableDetrTransformer,
    HDeformableDetrTransformerDecoder,
    HDeformableDetrTransformerEncoder,
)
from detrkit.structures import Boxes, Instances

EMBED_DIM, NUM_CLASSES = 32, 3
LAYER_ARGS = dict(
    embed_dim=EMBED_DIM,
    num_heads=2,
    feedforward_dim=64,
    attn_dropout=0.0,
    ffn_dropout=0.0,
    num_layers=2,
    num_feature_levels=2,
)


class TinyBackbone(nn.Module):
    """Two strided convolutions: ``{"res2": stride 4, "res3": stride 8}``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward(self, x):
        res2 = self.conv1(x).relu()
        return {"res2": res2, "res3": self.conv2(res2).relu()}


class TinyNeck(nn.Module):
    """1x1 convolutions to ``EMBED_DIM``, returning the list of levels."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(8, EMBED_DIM, 1), nn.Conv2d(16, EMBED_DIM, 1)])

    def forward(self, features):
        return [conv(features[name]) for conv, name in zip(self.convs, ("res2", "res3"), strict=True)]


class TinyPositionEmbedding(nn.Module):
    """Sine embedding of each pixel's normalised (x, y) within the valid area; records the masks it sees."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def forward(self, mask):
        self.masks.append(mask)
        valid = (~mask).float()
        y = valid.cumsum(1) / valid.cumsum(1)[:, -1:].clamp(min=1)
        x = valid.cumsum(2) / valid.cumsum(2)[:, :, -1:].clamp(min=1)
        return get_sine_pos_embed(torch.stack([x, y], -1), EMBED_DIM // 2).permute(0, 3, 1, 2)


def _set_losses(outputs, targets, positions, suffix):
    """BCE on every logit against one-hot labels at ``positions[b]`` (zeros elsewhere) and L1 between the
    boxes at those positions and the targets: a stand-in for Hungarian losses."""
    logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
    goal = torch.zeros_like(logits)
    l1 = logits.new_zeros(())
    for b, (target, pos) in enumerate(zip(targets, positions, strict=True)):
        goal[b, pos, target["labels"]] = 1.0
        l1 = l1 + (boxes[b, pos] - target["boxes"]).abs().sum()
    return {
        f"loss_class{suffix}": nn.functional.binary_cross_entropy_with_logits(logits, goal),
        f"loss_bbox{suffix}": l1,
    }


class StandInCriterion(nn.Module):
    """Follows the detrex criterion interface (``criterion(outputs, targets, dn_metas)`` -> unweighted
    losses, ``weight_dict``) with index matching: GT ``i`` <-> query ``i`` (denoising: the positive slots;
    one-to-many: the GT repeated ``k`` times). Keeps the last call's arguments and losses."""

    def __init__(self, weight_dict=None, k_one2many=2):
        super().__init__()
        if weight_dict is None:  # every key of the 2-layer tiny detectors (one-to-many: the base's weight)
            weight_dict = build_weight_dict({"loss_class": 2.0, "loss_bbox": 5.0}, 2, denoising=True)
        self.weight_dict = weight_dict
        self.k_one2many = k_one2many

    def forward(self, outputs, targets, dn_metas=None):
        self.outputs, self.targets, self.dn_metas = outputs, targets, dn_metas
        first = [torch.arange(len(t["labels"])) for t in targets]
        losses = _set_losses(outputs, targets, first, "")
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update(_set_losses(aux, targets, first, f"_{i}"))
        losses.update(_set_losses(outputs["enc_outputs"], targets, first, "_enc"))
        if dn_metas is not None:
            known = dn_metas["output_known_lbs_bboxes"]
            groups, size = dn_metas["dn_num"], dn_metas["single_padding"]
            slots = [torch.cat([g * size + idx for g in range(groups)]) for idx in first]
            repeated = repeat_targets(targets, groups)
            losses.update(_set_losses(known, repeated, slots, "_dn"))
            for i, aux in enumerate(known.get("aux_outputs", [])):
                losses.update(_set_losses(aux, repeated, slots, f"_dn_{i}"))
        if "pred_logits_one2many" in outputs:
            k = self.k_one2many
            repeated = repeat_targets(targets, k)
            slots = [torch.arange(k * len(idx)) for idx in first]
            one2many = {
                "pred_logits": outputs["pred_logits_one2many"],
                "pred_boxes": outputs["pred_boxes_one2many"],
            }
            losses.update(_set_losses(one2many, repeated, slots, "_one2many"))
            for i, aux in enumerate(outputs.get("aux_outputs_one2many", [])):
                losses.update(_set_losses(aux, repeated, slots, f"_{i}_one2many"))
        self.raw_losses = {k: v.detach().clone() for k, v in losses.items()}
        return losses


def tiny_dino(num_queries=10, **kwargs) -> DINO:
    torch.manual_seed(0)
    transformer = DINOTransformer(
        DINOTransformerEncoder(**LAYER_ARGS),
        DINOTransformerDecoder(**LAYER_ARGS),
        num_feature_levels=2,
        two_stage_num_proposals=num_queries,
    )
    kwargs.setdefault("criterion", StandInCriterion())
    return DINO(
        TinyBackbone(),
        TinyPositionEmbedding(),
        TinyNeck(),
        transformer,
        embed_dim=EMBED_DIM,
        num_classes=NUM_CLASSES,
        num_queries=num_queries,
        select_box_nums_for_evaluation=20,
        dn_number=6,
        **kwargs,
    )


def tiny_h_deformable_detr(num_one2one=6, num_one2many=8, **kwargs) -> HDeformableDETR:
    torch.manual_seed(0)
    transformer = HDeformableDetrTransformer(
        HDeformableDetrTransformerEncoder(**LAYER_ARGS),
        HDeformableDetrTransformerDecoder(**LAYER_ARGS),
        num_feature_levels=2,
        two_stage_num_proposals=num_one2one + num_one2many,
    )
    kwargs.setdefault("criterion", StandInCriterion())
    return HDeformableDETR(
        TinyBackbone(),
        TinyPositionEmbedding(),
        TinyNeck(),
        transformer,
        embed_dim=EMBED_DIM,
        num_classes=NUM_CLASSES,
        num_queries_one2one=num_one2one,
        num_queries_one2many=num_one2many,
        select_box_nums_for_evaluation=12,
        **kwargs,
    )


def hand_made_batch(with_gt=True):
    """Image 0: 64x64 with 1 box; image 1: 48x56 (padded in the batch) with 3 boxes, shown at 2x size."""
    g = torch.Generator().manual_seed(0)
    specs = [
        ((64, 64), (64, 64), [[8.0, 8.0, 40.0, 30.0]], [2]),
        (
            (48, 56),
            (96, 112),
            [[0.0, 0.0, 20.0, 20.0], [10.0, 5.0, 50.0, 45.0], [30.0, 30.0, 56.0, 48.0]],
            [0, 1, 1],
        ),
    ]
    batch = []
    for (h, w), (out_h, out_w), boxes, classes in specs:
        instances = Instances((h, w))
        instances.gt_boxes = Boxes(torch.tensor(boxes if with_gt else [], dtype=torch.float32).view(-1, 4))
        instances.gt_classes = torch.tensor(classes if with_gt else [], dtype=torch.int64)
        image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "height": out_h, "width": out_w, "instances": instances})
    return batch


def assert_every_parameter_has_a_gradient(model: nn.Module) -> None:
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
