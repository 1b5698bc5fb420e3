"""The rank-adaptive classification head: one bias row per rank position and layer."""

import pytest
import torch

from detrkit_projects.rank_detr.modeling import RankAdaptiveClassHead


def _head():
    head = RankAdaptiveClassHead(num_layers=2, num_queries=3, num_classes=2)
    assert all(torch.equal(e.weight, torch.zeros(3, 2)) for e in head)  # zero init
    with torch.no_grad():
        for layer, embedding in enumerate(head):
            embedding.weight.copy_(torch.arange(6.0).view(3, 2) + 10 * layer)
    return head


def test_rows_go_to_the_ranked_positions_and_not_to_leading_denoising_queries():
    head = _head()
    logits = torch.zeros(2, 1, 5, 2)
    out = head(logits)
    assert torch.equal(out[:, :, :2], logits[:, :, :2])
    assert torch.equal(out[1, 0, 2:], torch.arange(6.0).view(3, 2) + 10)


def test_fewer_queries_use_the_first_rows():
    out = _head()(torch.ones(2, 1, 2, 2))
    assert torch.equal(out[0, 0], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_layer_count_must_match():
    with pytest.raises(ValueError, match="3 layers"):
        _head()(torch.zeros(3, 1, 2, 2))
