"""Query selectors: top-K by class score, detached reference boxes, content and positional queries."""

import math

import pytest
import torch
from torch import nn

from detrkit.modeling.transformer import (
    DeformableQuerySelector,
    TopKProposalSelector,
    TwoStageQuerySelector,
    grid_proposals,
)

SPATIAL_SHAPES = torch.tensor([[2, 3], [1, 2]])  # 8 tokens


class FixedOutput(nn.Module):
    """A head that returns a fixed tensor (plus 0 * input, to stay in the graph)."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value + 0 * x.sum(-1, keepdim=True)


def make_inputs(embed_dim=4):
    torch.manual_seed(0)
    memory = torch.randn(2, 8, embed_dim, requires_grad=True)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    logits = torch.tensor(
        [
            [
                [0.0, 5.0],
                [1.0, 0.0],
                [9.0, -9.0],
                [0.0, 0.0],
                [3.0, 8.0],
                [2.0, 2.0],
                [-1.0, -1.0],
                [7.0, 0.0],
            ],
            [[4.0, 0.0], [0.0, 6.0], [1.0, 1.0], [0.0, 0.5], [2.0, 0.0], [0.0, 3.0], [5.0, 0.0], [0.0, 0.0]],
        ]
    )
    box_deltas = torch.randn(2, 8, 4) * 0.1
    return memory, mask, FixedOutput(logits), FixedOutput(box_deltas), logits, box_deltas


def test_two_stage_selector_picks_top_k_by_highest_class_logit():
    memory, mask, class_head, box_head, logits, deltas = make_inputs()
    selector = TwoStageQuerySelector(embed_dim=4, num_queries=5)
    selection = selector(memory, mask, SPATIAL_SHAPES, class_head, box_head, num_queries=3)
    # max logits: image 0 -> [5, 1, 9, 0, 8, 2, -1, 7]; image 1 -> [4, 6, 1, .5, 2, 3, 5, 0]
    assert selection.topk_indices.tolist() == [[2, 4, 7], [1, 6, 0]]
    proposals, _ = grid_proposals(mask, SPATIAL_SHAPES)
    expected_boxes = torch.stack([(deltas + proposals)[b, i] for b, i in enumerate(selection.topk_indices)])
    torch.testing.assert_close(selection.reference_points, expected_boxes.sigmoid())
    assert not selection.reference_points.requires_grad
    assert selection.selected_coords_unact.requires_grad
    # learned content: the first K rows of tgt_embed, no positional queries (the DINO decoder makes them)
    torch.testing.assert_close(selection.content, selector.tgt_embed.weight[:3].expand(2, -1, -1))
    assert selection.query_pos is None
    assert selection.enc_logits.shape == (2, 8, 2) and selection.enc_coords_unact.shape == (2, 8, 4)


def test_top_k_selector_without_learned_queries_uses_the_selected_memory_detached():
    memory, mask, class_head, box_head, _, _ = make_inputs()
    selector = TopKProposalSelector(embed_dim=4)
    selection = selector(memory, mask, SPATIAL_SHAPES, class_head, box_head, num_queries=2)
    projected = selector.enc_output_norm(selector.enc_output(memory))
    expected = torch.stack([projected[0, [2, 4]], projected[1, [1, 6]]])
    torch.testing.assert_close(selection.content, expected)
    assert not selection.content.requires_grad
    torch.testing.assert_close(selection.selected_memory, expected)
    assert selection.selected_memory.requires_grad


def manual_sine(values: torch.Tensor, num_feats: int) -> torch.Tensor:
    """[sin(2 pi v / T^(0/d)), cos(2 pi v / T^(0/d)), sin(2 pi v / T^(2/d)), ...] per coordinate, in order."""
    out = []
    for v in values.tolist():
        for k in range(0, num_feats, 2):
            angle = 2 * math.pi * v / 10000 ** (k / num_feats)
            out += [math.sin(angle), math.cos(angle)]
    return torch.tensor(out)


def test_deformable_selector_ranks_by_first_class_and_embeds_the_boxes():
    memory, mask, class_head, box_head, _, _ = make_inputs()
    selector = DeformableQuerySelector(embed_dim=4)
    selection = selector(memory, mask, SPATIAL_SHAPES, class_head, box_head, num_queries=3)
    # first-class logits: image 0 -> [0, 1, 9, 0, 3, 2, -1, 7]; image 1 -> [4, 0, 1, 0, 2, 0, 5, 0]
    assert selection.topk_indices.tolist() == [[2, 7, 4], [6, 0, 4]]
    box = selection.reference_points[1, 2]
    embedded = selector.pos_trans_norm(selector.pos_trans(manual_sine(box, num_feats=2)))
    torch.testing.assert_close(selection.query_pos[1, 2], embedded[:4])
    torch.testing.assert_close(selection.content[1, 2], embedded[4:])


def test_content_queries_given_by_the_detector_replace_the_selectors_own():
    memory, mask, class_head, box_head, _, _ = make_inputs()
    content = torch.randn(3, 4)
    for selector in (DeformableQuerySelector(embed_dim=4), TwoStageQuerySelector(embed_dim=4, num_queries=3)):
        selection = selector(memory, mask, SPATIAL_SHAPES, class_head, box_head, 3, content_queries=content)
        torch.testing.assert_close(selection.content, content.expand(2, -1, -1))
        with pytest.raises(ValueError, match=r"content_queries has shape \(2, 4\)"):
            selector(memory, mask, SPATIAL_SHAPES, class_head, box_head, 3, content_queries=content[:2])


def test_selectors_reject_impossible_requests():
    memory, mask, class_head, box_head, _, _ = make_inputs()
    with pytest.raises(ValueError, match="9 queries from only 8 encoder tokens"):
        TopKProposalSelector(embed_dim=4)(memory, mask, SPATIAL_SHAPES, class_head, box_head, num_queries=9)
    with pytest.raises(ValueError, match="tgt_embed has only 2 rows"):
        TwoStageQuerySelector(embed_dim=4, num_queries=2)(
            memory, mask, SPATIAL_SHAPES, class_head, box_head, 3
        )
