"""H-Deformable-DETR (Jia et al., "DETRs with Hybrid Matching", CVPR 2023) as a detectron2 model, with
detrex's constructor and outputs (two-stage with box refinement)."""

import torch
from torch import nn

from detrkit.modeling.criterion import HybridMatchingCriterion
from detrkit.modeling.meta_arch.two_stage_detr import TwoStageDETR
from detrkit.modeling.transformer.hybrid import hybrid_attn_mask
from detrkit.modeling.transformer.outputs import TransformerOutput
from detrkit.structures.instances import Instances

__all__ = ["HDeformableDETR"]


class HDeformableDETR(TwoStageDETR):
    """Deformable DETR (two-stage, box refinement, mixed selection) with hybrid matching.

    Training runs ``num_queries_one2one + num_queries_one2many`` queries, the two groups blind to each other
    in self-attention; inference runs only the one-to-one queries. The criterion is called as
    ``criterion(outputs, targets)`` with ``outputs`` holding the one-to-one predictions (``pred_logits``,
    ``pred_boxes``, ``aux_outputs``), the one-to-many ones (``pred_logits_one2many``,
    ``pred_boxes_one2many``, ``aux_outputs_one2many``) and ``enc_outputs`` (every encoder token's
    proposal); it matches the one-to-many predictions to the GT repeated ``k`` times and names those losses
    ``<loss>_one2many``. A ``<loss>_one2many`` without its own weight takes ``<loss>``'s weight (detrex).

    Args:
        backbone, position_embedding, neck, transformer, embed_dim, num_classes, criterion, pixel_mean,
            pixel_std, aux_loss, select_box_nums_for_evaluation, class_bias: see :class:`TwoStageDETR`.
        device: where to put the model; None leaves it on the CPU for the caller to move (the model follows
            its parameters' device).
        num_queries_one2one: one-to-one queries (300 in H-Deformable-DETR).
        num_queries_one2many: one-to-many queries (1500); 0 trains a plain two-stage Deformable DETR.
        with_box_refine, as_two_stage: detrex's keywords; must be True (the variant detrkit implements).
        mixed_selection: detrex's keyword; the transformer's ``mixed_selection`` decides (content queries
            are then the learned ``query_embedding``, positions from the selected proposals), and a value
            given here must equal it. None: not given.
        k_one2many, lambda_one2many: detrex's keywords for the one-to-many loss (GT repeats and loss factor).
            detrkit states them on a :class:`HybridMatchingCriterion`; given here (as detrex's configs do,
            with a plain criterion), they wrap ``criterion`` in one. None: not given.
    """

    def __init__(
        self,
        backbone: nn.Module,
        position_embedding: nn.Module,
        neck: nn.Module,
        transformer: nn.Module,
        embed_dim: int,
        num_classes: int,
        num_queries_one2one: int,
        num_queries_one2many: int,
        criterion: nn.Module,
        pixel_mean: list[float] = (123.675, 116.280, 103.530),
        pixel_std: list[float] = (58.395, 57.120, 57.375),
        aux_loss: bool = True,
        with_box_refine: bool = True,
        as_two_stage: bool = True,
        select_box_nums_for_evaluation: int = 100,
        device: str | torch.device | None = None,
        mixed_selection: bool | None = None,
        k_one2many: int | None = None,
        lambda_one2many: float | None = None,
        class_bias: nn.Module | None = None,
    ):
        if not (with_box_refine and as_two_stage):
            raise ValueError(
                f"HDeformableDETR: with_box_refine={with_box_refine}, as_two_stage={as_two_stage}; detrkit "
                "implements the two-stage variant with box refinement (both True)"
            )
        if mixed_selection is not None and mixed_selection != transformer.mixed_selection:
            raise ValueError(
                f"HDeformableDETR: mixed_selection={mixed_selection} but the transformer has "
                f"mixed_selection={transformer.mixed_selection}"
            )
        if k_one2many is not None or lambda_one2many is not None:
            if isinstance(criterion, HybridMatchingCriterion):
                raise ValueError(
                    "HDeformableDETR: k_one2many/lambda_one2many are given both to the model and on its "
                    "HybridMatchingCriterion; state them once"
                )
            criterion = HybridMatchingCriterion(
                criterion,
                k_one2many=6 if k_one2many is None else k_one2many,
                lambda_one2many=1.0 if lambda_one2many is None else lambda_one2many,
            )
        super().__init__(
            backbone=backbone,
            position_embedding=position_embedding,
            neck=neck,
            transformer=transformer,
            embed_dim=embed_dim,
            num_classes=num_classes,
            criterion=criterion,
            pixel_mean=list(pixel_mean),
            pixel_std=list(pixel_std),
            aux_loss=aux_loss,
            select_box_nums_for_evaluation=select_box_nums_for_evaluation,
            class_bias=class_bias,
        )
        self.num_queries_one2one = num_queries_one2one
        self.num_queries_one2many = num_queries_one2many
        self.num_queries = num_queries_one2one + num_queries_one2many
        self.query_embedding = (
            nn.Embedding(self.num_queries, embed_dim) if transformer.mixed_selection else None
        )
        if device is not None:
            self.to(device)

    def forward(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor] | list[dict[str, Instances]]:
        """Weighted losses in training mode, detectron2 results in eval mode (see the class docstring)."""
        images = self.preprocess_image(batched_inputs)
        feats, masks, pos_embeds = self.multi_level_inputs(images)
        num_queries = self.num_queries if self.training else self.num_queries_one2one
        query_embed = None if self.query_embedding is None else self.query_embedding.weight[:num_queries]
        self_attn_mask = None
        if num_queries > self.num_queries_one2one:
            self_attn_mask = hybrid_attn_mask(self.num_queries_one2one, num_queries, device=self.device)
        decoded = TransformerOutput.of(
            self.transformer(feats, masks, pos_embeds, query_embed, self_attn_mask, num_proposals=num_queries)
        )
        outputs_class, outputs_coord = self.predict_layers(
            decoded.inter_states, decoded.init_reference, decoded.inter_references, decoded.query_ids
        )
        one2one = slice(0, self.num_queries_one2one)
        one2many = slice(self.num_queries_one2one, None)
        output = {
            "pred_logits": outputs_class[-1, :, one2one],
            "pred_boxes": outputs_coord[-1, :, one2one],
            "enc_outputs": {
                "pred_logits": decoded.enc_state,
                "pred_boxes": decoded.enc_reference.sigmoid(),
            },
        }
        if self.aux_loss:
            output["aux_outputs"] = self._set_aux_loss(
                outputs_class[:, :, one2one], outputs_coord[:, :, one2one]
            )
        if not self.training:
            return self.eval_results(output["pred_logits"], output["pred_boxes"], batched_inputs, images)

        if self.num_queries_one2many > 0:
            output["pred_logits_one2many"] = outputs_class[-1, :, one2many]
            output["pred_boxes_one2many"] = outputs_coord[-1, :, one2many]
            if self.aux_loss:
                output["aux_outputs_one2many"] = self._set_aux_loss(
                    outputs_class[:, :, one2many], outputs_coord[:, :, one2many]
                )
        weight_dict = dict(self.criterion.weight_dict)
        for key, weight in self.criterion.weight_dict.items():
            weight_dict.setdefault(key + "_one2many", weight)
        targets = self.prepare_targets(batched_inputs, tuple(images.tensor.shape[-2:]))
        return self.weighted_losses(self.criterion(output, targets), weight_dict)
