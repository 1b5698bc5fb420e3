"""TrainingSampler and InferenceSampler sharding over simulated ranks."""

import itertools

import pytest
import torch

from detrkit.data import InferenceSampler, TrainingSampler
from detrkit.utils import comm


@pytest.fixture
def as_rank(monkeypatch):
    def set_rank(rank: int, world_size: int) -> None:
        monkeypatch.setattr(comm, "get_rank", lambda: rank)
        monkeypatch.setattr(comm, "get_world_size", lambda: world_size)

    return set_rank


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_training_sampler_shards_are_disjoint_and_cover_each_permutation(as_rank):
    size, seed = 10, 3
    generator = torch.Generator()
    generator.manual_seed(seed)
    first, second = (
        torch.randperm(size, generator=generator).tolist(),
        torch.randperm(size, generator=generator).tolist(),
    )
    shards = []
    for rank in range(2):
        as_rank(rank, 2)
        shards.append(_take(TrainingSampler(size, seed=seed), size))
    assert shards[0] == (first + second)[0::2] and shards[1] == (first + second)[1::2]
    assert set(shards[0][:5]).isdisjoint(shards[1][:5])
    assert sorted(shards[0][:5] + shards[1][:5]) == list(range(size))


def test_training_sampler_without_shuffle_and_with_shared_seed(as_rank):
    as_rank(1, 3)
    assert _take(TrainingSampler(4, shuffle=False, seed=0), 4) == [1, 0, 3, 2]  # stream 0123 0123 ..., [1::3]
    as_rank(0, 1)
    assert len(_take(TrainingSampler(4), 8)) == 8  # seed drawn by comm.shared_random_seed
    with pytest.raises(ValueError, match="expects a positive int, got 0"):
        TrainingSampler(0)
    with pytest.raises(TypeError, match="expects an int, got float"):
        TrainingSampler(2.0)


@pytest.mark.parametrize(("size", "world_size"), [(10, 3), (2, 3), (7, 1), (8, 4)])
def test_inference_sampler_visits_every_index_once(as_rank, size, world_size):
    shards = []
    for rank in range(world_size):
        as_rank(rank, world_size)
        sampler = InferenceSampler(size)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1])
    assert list(itertools.chain.from_iterable(shards)) == list(range(size))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
