"""Index samplers for distributed data loading, with detectron2's names and semantics."""

import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from detrkit.utils import comm

__all__ = ["InferenceSampler", "TrainingSampler"]


class TrainingSampler(Sampler[int]):
    """An infinite stream of indices: ``perm_0 + perm_1 + ...`` (a fresh permutation of ``range(size)`` per
    pass when ``shuffle``, else ``range(size)`` repeated), drawn from a generator seeded with ``seed``; rank
    ``r`` of ``world_size`` processes takes ``stream[r::world_size]``, so the ranks share out each pass.

    Args:
        size: number of samples of the dataset.
        shuffle: shuffle every pass.
        seed: the shuffling seed; must be the same on every rank. None draws one on rank 0 and shares it.
    """

    def __init__(self, size: int, shuffle: bool = True, seed: int | None = None):
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"TrainingSampler(size=) expects an int, got {type(size).__name__}")
        if size <= 0:
            raise ValueError(f"TrainingSampler(size=) expects a positive int, got {size}")
        self._size = size
        self._shuffle = shuffle
        self._seed = int(comm.shared_random_seed() if seed is None else seed)
        self._rank = comm.get_rank()
        self._world_size = comm.get_world_size()

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=generator).tolist()
            else:
                yield from range(self._size)


class InferenceSampler(Sampler[int]):
    """Every index of ``range(size)`` exactly once over all ranks: rank ``r`` takes a contiguous shard, the
    first ``size % world_size`` shards one longer than the others."""

    def __init__(self, size: int):
        if size <= 0:
            raise ValueError(f"InferenceSampler(size=) expects a positive int, got {size}")
        self._size = size
        rank, world_size = comm.get_rank(), comm.get_world_size()
        shard, extra = divmod(size, world_size)
        begin = rank * shard + min(rank, extra)
        self._local_indices = range(begin, begin + shard + int(rank < extra))

    def __iter__(self) -> Iterator[int]:
        yield from self._local_indices

    def __len__(self) -> int:
        return len(self._local_indices)
