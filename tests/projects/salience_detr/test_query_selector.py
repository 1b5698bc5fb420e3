"""Redundancy removal: 4-neighbour cells suppressed, diagonal cells kept, never across levels or images."""

import torch

from detrkit_projects.salience_detr.modeling import RedundancyRemovalQuerySelector, remove_redundant_tokens

SHAPES = torch.tensor([[4, 4], [2, 2]])  # 16 + 4 tokens


def scores_at(cells: dict[int, float]) -> torch.Tensor:
    scores = torch.full((20,), -10.0)
    for index, value in cells.items():
        scores[index] = value
    return scores


def test_neighbours_suppressed_diagonals_kept():
    # level 0 (4x4): peak at (1, 1) = index 5; 4-neighbours 1, 4, 6, 9; diagonals 0, 2, 8, 10
    scores = scores_at({5: 9.0, 1: 8.0, 4: 8.0, 6: 8.0, 9: 8.0, 0: 7.0, 2: 7.0, 8: 7.0, 10: 7.0})[None]
    kept = remove_redundant_tokens(scores, SHAPES, num_candidates=9, num_kept=9, iou_threshold=0.3)
    assert kept[0, 0] == 5 and sorted(kept[0].tolist()) == [0, 2, 5, 8, 10]


def test_never_across_levels_or_images():
    # index 5 (level 0, (1,1)) and index 16 (level 1, (0,0)): neighbours in grid units but other levels
    a = scores_at({5: 9.0, 16: 8.0, 6: 7.0})
    b = scores_at({6: 9.0, 5: 8.5, 17: 8.0})
    kept = remove_redundant_tokens(
        torch.stack([a, b]), SHAPES, num_candidates=3, num_kept=3, iou_threshold=0.3
    )
    # image 0 keeps 5 and 16 (different levels), drops 6; image 1 keeps 6 and 17, drops 5: 2 survivors each
    assert kept.tolist() == [[5, 16], [6, 17]]


def test_keeps_the_fewest_survivors_of_the_batch_and_at_most_num_kept():
    a = scores_at({0: 9.0, 2: 8.0, 8: 7.0, 10: 6.0})  # 4 mutually diagonal/far cells: all survive
    b = scores_at({0: 9.0, 1: 8.0, 2: 7.0, 3: 6.0})  # a row: 0 and 2 survive
    kept = remove_redundant_tokens(
        torch.stack([a, b]), SHAPES, num_candidates=4, num_kept=3, iou_threshold=0.3
    )
    assert kept.tolist() == [[0, 2], [0, 2]]
    kept = remove_redundant_tokens(a[None], SHAPES, num_candidates=4, num_kept=3, iou_threshold=0.3)
    assert kept.tolist() == [[0, 2, 8]]


def test_selector_builds_queries_from_the_kept_tokens():
    torch.manual_seed(0)
    selector = RedundancyRemovalQuerySelector(embed_dim=8, num_queries=4, candidates_per_query=4)
    memory = torch.randn(2, 20, 8)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    class_head, box_head = torch.nn.Linear(8, 3), torch.nn.Linear(8, 4)
    selection = selector(memory, mask, SHAPES, class_head, box_head, 4)
    expected = remove_redundant_tokens(selection.enc_logits.max(-1)[0], SHAPES, 16, 4, 0.3)
    assert torch.equal(selection.topk_indices, expected)
    assert selection.content.shape == (2, expected.shape[1], 8)
    assert torch.equal(selection.content[0], selector.tgt_embed.weight[: expected.shape[1]])
