"""DINO's contrastive denoising (CDN, Zhang et al. 2023, sec. 3.3): noised copies of the ground truth fed to
the decoder as extra queries that must reconstruct their box (positives) or predict "no object"
(negatives), with a self-attention mask that keeps the copies from leaking the answer.

Query layout, per image (``n_max`` = most GT boxes in the batch, ``G`` groups, ``pad = 2 * G * n_max``)::

    [ group 0: n_max positives | n_max negatives ][ group 1: ... ] ... [ group G-1 ][ K matching queries ]

GT ``i`` of an image sits at slot ``i`` of each half; slots beyond its GT count stay zero (label embedding
0, box logit 0).
"""

import torch
from torch import nn

from detrkit.layers.logits import inverse_sigmoid
from detrkit.structures.box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh

__all__ = ["ContrastiveDenoising", "denoising_attn_mask"]


def denoising_attn_mask(
    num_groups: int, group_size: int, num_queries: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(pad + K, pad + K)`` bool self-attention mask, True where attention is blocked, ``pad =
    num_groups * group_size``: the ``K`` matching queries cannot see any denoising query (they must not
    learn from the answers), and a denoising query sees only its own group and the matching queries."""
    pad = num_groups * group_size
    mask = torch.zeros(pad + num_queries, pad + num_queries, dtype=torch.bool, device=device)
    mask[pad:, :pad] = True
    group = torch.arange(pad, device=device) // group_size
    mask[:pad, :pad] = group[:, None] != group[None, :]
    return mask


class ContrastiveDenoising(nn.Module):
    """Makes DINO's contrastive denoising queries (no parameters: the label embedding is the detector's).

    Each of the ``G = max(dn_number // n_max, 1)`` groups holds a positive and a negative copy of every GT:

    - label noise: with probability ``label_noise_ratio / 2`` a copy's label becomes a uniformly random
      class;
    - box noise: every corner coordinate of ``(x1, y1, x2, y2)`` moves by ``s * u * (w/2 or h/2) *
      box_noise_scale`` with a random sign ``s``, ``u ~ U[0, 1)`` for positives and ``U[1, 2)`` for
      negatives; the box is clipped to [0, 1].

    Args:
        dn_number: denoising queries per half-group budget (detrex's ``dn_number``); 0 disables. Default 100.
        label_noise_ratio: see above. Default 0.5.
        box_noise_scale: see above. Default 1.0.
    """

    def __init__(self, dn_number: int = 100, label_noise_ratio: float = 0.5, box_noise_scale: float = 1.0):
        super().__init__()
        self.dn_number = dn_number
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale

    def forward(
        self,
        targets: list[dict[str, torch.Tensor]],
        num_queries: int,
        num_classes: int,
        label_enc: nn.Embedding,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, dict | None]:
        """Denoising queries for a batch; four Nones when disabled or the batch has no GT box.

        Args:
            targets: per image ``{"labels": (n_i,) int64, "boxes": (n_i, 4) (cx, cy, w, h) in [0, 1]}``.
            num_queries: ``K``, the matching queries that follow the denoising ones.
            num_classes: classes to draw noisy labels from.
            label_enc: ``nn.Embedding(num_classes, C)``, embeds the (noised) labels.

        Returns:
            input_query_label: ``(bs, pad, C)`` content queries.
            input_query_bbox: ``(bs, pad, 4)`` noised boxes in logit space.
            attn_mask: ``(pad + K, pad + K)`` bool, see :func:`denoising_attn_mask`.
            dn_meta: ``{"single_padding": 2 * n_max, "dn_num": G}`` (detrex's keys).
        """
        counts = [len(t["labels"]) for t in targets]
        max_gt = max(counts, default=0)
        if self.dn_number <= 0 or max_gt == 0:
            return None, None, None, None
        device = label_enc.weight.device
        groups = max(self.dn_number // max_gt, 1)
        copies = 2 * groups
        labels = torch.cat([t["labels"] for t in targets]).to(device)
        boxes = torch.cat([t["boxes"] for t in targets]).to(device)
        num_gt = len(labels)
        copy_index = torch.arange(copies, device=device).repeat_interleave(num_gt)
        image_index = torch.cat([torch.full((c,), i, device=device) for i, c in enumerate(counts)]).repeat(
            copies
        )
        slot_index = torch.cat([torch.arange(c, device=device) for c in counts]).repeat(copies)
        slot_index = slot_index + max_gt * copy_index

        noised_labels = self._noise_labels(labels.repeat(copies), num_classes)
        noised_boxes = self._noise_boxes(boxes.repeat(copies, 1), is_negative=copy_index % 2 == 1)

        pad = copies * max_gt
        batch = len(targets)
        embed = label_enc(noised_labels)
        input_query_label = embed.new_zeros(batch, pad, embed.shape[-1]).index_put(
            (image_index, slot_index), embed
        )
        input_query_bbox = embed.new_zeros(batch, pad, 4).index_put(
            (image_index, slot_index), inverse_sigmoid(noised_boxes).to(embed.dtype)
        )
        attn_mask = denoising_attn_mask(groups, 2 * max_gt, num_queries, device=device)
        return (
            input_query_label,
            input_query_bbox,
            attn_mask,
            {"single_padding": 2 * max_gt, "dn_num": groups},
        )

    def _noise_labels(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """``(N,)`` labels, each replaced by a random class with probability ``label_noise_ratio / 2``."""
        if self.label_noise_ratio <= 0:
            return labels
        flip = torch.rand(labels.shape, device=labels.device) < self.label_noise_ratio * 0.5
        random_labels = torch.randint(0, num_classes, labels.shape, device=labels.device, dtype=labels.dtype)
        return torch.where(flip, random_labels, labels)

    def _noise_boxes(self, boxes: torch.Tensor, is_negative: torch.Tensor) -> torch.Tensor:
        """``(N, 4)`` cxcywh boxes with corner noise below ``box_noise_scale`` half-sizes (positives) or
        between one and two (negatives, ``is_negative`` ``(N,)`` bool), clipped to [0, 1]."""
        if self.box_noise_scale <= 0:
            return boxes
        half_sizes = boxes[:, 2:].repeat(1, 2) / 2
        sign = torch.randint(0, 2, boxes.shape, device=boxes.device).to(boxes.dtype) * 2 - 1
        magnitude = torch.rand_like(boxes) + is_negative[:, None].to(boxes.dtype)
        corners = box_cxcywh_to_xyxy(boxes) + sign * magnitude * half_sizes * self.box_noise_scale
        return box_xyxy_to_cxcywh(corners.clamp(min=0.0, max=1.0))
