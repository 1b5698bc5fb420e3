"""DINO (Zhang et al., "DINO: DETR with Improved DeNoising Anchor Boxes", ICLR 2023) as a detectron2
model, with detrex's constructor and outputs."""

import torch
from torch import nn

from detrkit.modeling.meta_arch.two_stage_detr import TwoStageDETR
from detrkit.modeling.transformer.denoising import ContrastiveDenoising
from detrkit.modeling.transformer.outputs import TokenScores, TransformerOutput
from detrkit.structures.instances import Instances

__all__ = ["DINO", "denoising_slot"]


def denoising_slot(
    denoising: nn.Module | None,
    dn_number: int | None = None,
    label_noise_ratio: float | None = None,
    box_noise_scale: float | None = None,
) -> nn.Module:
    """DINO's denoising module, said one way: ``denoising`` itself, or, from detrex's keywords (as detrex's
    configs pass them), ``ContrastiveDenoising`` with those given (the others at its defaults, detrex's).

    Raises:
        ValueError: ``denoising`` and any of detrex's keywords both given (they could disagree).
    """
    given = {
        name: value
        for name, value in (
            ("dn_number", dn_number),
            ("label_noise_ratio", label_noise_ratio),
            ("box_noise_scale", box_noise_scale),
        )
        if value is not None
    }
    if denoising is None:
        return ContrastiveDenoising(**given)
    if given:
        raise ValueError(
            f"DINO: {sorted(given)} given with a denoising module ({type(denoising).__name__}); state the "
            "denoising once: on the module, or with detrex's keywords alone"
        )
    return denoising


class DINO(TwoStageDETR):
    """DINO: two-stage deformable DETR with mixed query selection, look-forward-twice box refinement and
    contrastive denoising.

    Input: detectron2's list of dicts (``"image"`` uint8 ``(3, H, W)``, ``"height"``, ``"width"``,
    ``"instances"`` with ``gt_boxes``/``gt_classes`` when training). Training returns the criterion's losses
    weighted by ``criterion.weight_dict``; inference returns ``[{"instances": Instances(pred_boxes, scores,
    pred_classes)}]`` in original-image pixels. Padding masks come from the padded batch in both modes.

    The criterion is called as ``criterion(outputs, targets, dn_meta)`` with ``outputs`` holding
    ``pred_logits`` ``(bs, K, num_classes)``, ``pred_boxes`` ``(bs, K, 4)``, ``aux_outputs`` (the other
    decoder layers) and ``enc_outputs`` (the selected encoder proposals), and ``dn_meta`` detrex's dict
    (``single_padding``, ``dn_num``, ``output_known_lbs_bboxes``: the denoising predictions) or None.
    The transformer returns a :class:`~detrkit.modeling.transformer.TransformerOutput` (or detrex's five
    outputs, read by ``TransformerOutput.of``); its ``extras``, when they are
    :class:`~detrkit.modeling.transformer.TokenScores` (Focus-DETR, Salience DETR), go into ``outputs`` for
    the token loss (:meth:`extras_outputs`).

    Args:
        backbone, position_embedding, neck, transformer, embed_dim, num_classes, criterion, pixel_mean,
            pixel_std, aux_loss, select_box_nums_for_evaluation, class_bias, size_divisibility: see
            :class:`TwoStageDETR` (``size_divisibility`` 32 for Salience DETR, as its official code).
        device: where to put the model; None leaves it on the CPU for the caller to move (the model follows
            its parameters' device).
        num_queries: ``K`` matching queries (the transformer's ``two_stage_num_proposals``).
        input_format: channel order of the input images ("RGB" or "BGR").
        denoising: the denoising slot, e.g. a
            :class:`~detrkit.modeling.transformer.denoising.ContrastiveDenoising`.
        dn_number, label_noise_ratio, box_noise_scale, vis_period: detrex's keywords (see
            :func:`denoising_slot`): without ``denoising`` the first three build its
            ``ContrastiveDenoising``; ``vis_period`` must be 0 (no training-time visualisation).
    """

    def __init__(
        self,
        backbone: nn.Module,
        position_embedding: nn.Module,
        neck: nn.Module,
        transformer: nn.Module,
        embed_dim: int,
        num_classes: int,
        num_queries: int,
        criterion: nn.Module,
        pixel_mean: list[float] = (123.675, 116.280, 103.530),
        pixel_std: list[float] = (58.395, 57.120, 57.375),
        aux_loss: bool = True,
        select_box_nums_for_evaluation: int = 300,
        device: str | torch.device | None = None,
        dn_number: int | None = None,
        label_noise_ratio: float | None = None,
        box_noise_scale: float | None = None,
        input_format: str | None = "RGB",
        vis_period: int = 0,
        denoising: nn.Module | None = None,
        class_bias: nn.Module | None = None,
        size_divisibility: int = 0,
    ):
        if vis_period > 0:
            raise ValueError(
                f"DINO: vis_period={vis_period}: training-time visualisation is not provided; use 0"
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
            size_divisibility=size_divisibility,
        )
        self.num_queries = num_queries
        self.label_enc = nn.Embedding(num_classes, embed_dim)
        self.denoising = denoising_slot(denoising, dn_number, label_noise_ratio, box_noise_scale)
        self.input_format = input_format
        if device is not None:
            self.to(device)

    def forward(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor] | list[dict[str, Instances]]:
        """Weighted losses in training mode, detectron2 results in eval mode (see the class docstring)."""
        images = self.preprocess_image(batched_inputs)
        feats, masks, pos_embeds = self.multi_level_inputs(images)
        targets, dn_meta = None, None
        query_label = query_bbox = attn_mask = None
        if self.training:
            targets = self.prepare_targets(batched_inputs, tuple(images.tensor.shape[-2:]))
            query_label, query_bbox, attn_mask, dn_meta = self.denoising(
                targets, self.num_queries, self.num_classes, self.label_enc
            )
        decoded = TransformerOutput.of(
            self.transformer(
                feats, masks, pos_embeds, (query_label, query_bbox), attn_masks=[attn_mask, None]
            )
        )
        # keeps label_enc in the graph when a batch has no denoising queries (DDP needs every gradient)
        inter_states = decoded.inter_states + self.label_enc.weight[0, 0] * 0.0
        outputs_class, outputs_coord = self.predict_layers(
            inter_states, decoded.init_reference, decoded.inter_references, decoded.query_ids
        )
        outputs_class, outputs_coord = self.dn_post_process(outputs_class, outputs_coord, dn_meta)

        output = {"pred_logits": outputs_class[-1], "pred_boxes": outputs_coord[-1]}
        if self.aux_loss:
            output["aux_outputs"] = self._set_aux_loss(outputs_class, outputs_coord)
        output["enc_outputs"] = {
            "pred_logits": self.class_embed[-1](decoded.enc_state),
            "pred_boxes": decoded.enc_reference,
        }
        output.update(self.extras_outputs(decoded.extras))

        if self.training:
            return self.weighted_losses(self.criterion(output, targets, dn_meta), self.criterion.weight_dict)
        return self.eval_results(output["pred_logits"], output["pred_boxes"], batched_inputs, images)

    def extras_outputs(self, extras: object) -> dict[str, torch.Tensor]:
        """The criterion's entries for the transformer's ``extras``: for :class:`TokenScores`, the ``(bs, S)``
        logits under the transformer's ``score_name`` and ``"spatial_shapes"`` ``(L, 2)``; none otherwise."""
        if not isinstance(extras, TokenScores):
            return {}
        return {self.transformer.score_name: extras.logits, "spatial_shapes": extras.spatial_shapes}

    def dn_post_process(
        self, outputs_class: torch.Tensor, outputs_coord: torch.Tensor, dn_metas: dict | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Splits ``(num_layers, bs, pad + K, ...)`` predictions into the matching part (returned) and the
        denoising part, stored in ``dn_metas["output_known_lbs_bboxes"]`` as ``{"pred_logits", "pred_boxes",
        "aux_outputs"}`` (detrex's layout)."""
        if not dn_metas or dn_metas["single_padding"] <= 0:
            return outputs_class, outputs_coord
        pad = dn_metas["single_padding"] * dn_metas["dn_num"]
        known_class, known_coord = outputs_class[:, :, :pad], outputs_coord[:, :, :pad]
        known = {"pred_logits": known_class[-1], "pred_boxes": known_coord[-1]}
        if self.aux_loss:
            known["aux_outputs"] = self._set_aux_loss(known_class, known_coord)
        dn_metas["output_known_lbs_bboxes"] = known
        return outputs_class[:, :, pad:], outputs_coord[:, :, pad:]
