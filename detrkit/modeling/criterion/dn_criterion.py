"""DINO's criterion: two-stage set losses plus the contrastive denoising losses (suffix ``_dn``)."""

import torch

from detrkit.modeling.criterion.class_losses import Indices
from detrkit.modeling.criterion.set_criterion import average_num_boxes
from detrkit.modeling.criterion.two_stage_criterion import TwoStageCriterion

__all__ = ["DINOCriterion"]


class DINOCriterion(TwoStageCriterion):
    """:class:`TwoStageCriterion` plus the denoising losses ``loss_class_dn``, ``loss_bbox_dn``,
    ``loss_giou_dn`` (final layer) and ``<key>_dn_<i>`` (one per ``aux_outputs`` layer).

    Denoising queries are not matched: in group ``g`` of the ``dn_num`` groups, the query at
    ``g * single_padding + j`` reconstructs target ``j`` of its image (the positive half of the group); every
    other denoising query (negative half, padding) has the "no object" class target. The normaliser is
    ``num_boxes * dn_num``. Without denoising queries (``dn_metas`` None or without
    ``"output_known_lbs_bboxes"``, e.g. a batch without any object) the same keys hold zeros, so every
    process returns the same keys.

    The denoising queries' class loss is ``class_loss`` (without :class:`StageMatches`: a cross-layer class
    loss falls back to its per-layer rule). The constructor arguments are :class:`TwoStageCriterion`'s.
    """

    def dn_indices(self, targets: list[dict], dn_num: int, single_padding: int) -> Indices:
        """Per image, (denoising query index, target index) of the positive denoising queries."""
        indices = []
        for t in targets:
            tgt = torch.arange(len(t["labels"]), dtype=torch.int64).repeat(dn_num)
            group = torch.arange(dn_num, dtype=torch.int64).repeat_interleave(len(t["labels"]))
            indices.append((group * single_padding + tgt, tgt))
        return indices

    def dn_losses(self, dn_metas: dict | None, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Denoising losses of the final layer (``_dn``) and of each aux layer (``_dn_<i>``).

        Args:
            dn_metas: as DINO's meta-architecture fills it: ``"dn_num"`` (number of groups),
                ``"single_padding"`` (queries per group: positives then negatives, ``2 * max_gt``) and
                ``"output_known_lbs_bboxes"``: the denoising queries' ``pred_logits``, ``pred_boxes``
                ``(bs, dn_num * single_padding, ...)`` and ``aux_outputs``.
            outputs: the matching queries' outputs: they give the number of aux layers, and without
                denoising queries their losses times 0 give the zeros (which stay in the autograd graph,
                so every parameter takes part in the backward pass, as DDP needs).
        """
        num_aux = len(outputs.get("aux_outputs", []))
        has_dn = bool(dn_metas) and "output_known_lbs_bboxes" in dn_metas
        if has_dn:
            dn_outputs, dn_num = dn_metas["output_known_lbs_bboxes"], dn_metas["dn_num"]
            indices = self.dn_indices(targets, dn_num, dn_metas["single_padding"])
        else:  # the matching queries as all-negative stand-ins; their losses are zeroed below
            dn_outputs, dn_num = outputs, 1
            indices = [(torch.zeros(0, dtype=torch.int64),) * 2 for _ in targets]
        layers = [dn_outputs] + list(dn_outputs.get("aux_outputs", []))
        if len(layers) != num_aux + 1:
            raise ValueError(
                f"dn_metas['output_known_lbs_bboxes'] has {len(layers) - 1} aux_outputs, "
                f"the matching outputs have {num_aux}"
            )
        suffixes = ["_dn"] + [f"_dn_{i}" for i in range(num_aux)]
        losses = {}
        for layer, suffix in zip(layers, suffixes, strict=True):
            losses.update(self.layer_losses(layer, targets, indices, num_boxes * dn_num, suffix))
        if not has_dn:
            losses = {k: v * 0.0 for k, v in losses.items()}
        return losses

    def forward(self, outputs: dict, targets: list[dict], dn_metas: dict | None = None) -> dict:
        """Unweighted losses: see :meth:`SetCriterion.forward`, plus ``enc_outputs`` (``_enc``) and the
        denoising losses described by ``dn_metas`` (``_dn``, ``_dn_<i>``)."""
        num_boxes = average_num_boxes(targets, outputs["pred_logits"].device)
        losses = self.matching_losses(outputs, targets, num_boxes)
        losses.update(self.dn_losses(dn_metas, outputs, targets, num_boxes))
        losses.update(self.extra_losses_of(outputs, targets))
        return losses
