"""Dataset lists and the train/test data loaders, with detectron2's names and semantics.

The train loader is an infinite iterable of batches (each a ``list`` of mapped dicts,
``total_batch_size // world_size`` per rank) shuffled by a :class:`TrainingSampler`; the test loader visits
every image exactly once over all ranks (:class:`InferenceSampler`).
"""

import copy
import itertools
import logging
import os
import pickle
import random
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, Sampler

from detrkit.data.catalog import DatasetCatalog, MetadataCatalog
from detrkit.data.samplers import InferenceSampler, TrainingSampler
from detrkit.utils import comm

__all__ = [
    "AspectRatioGroupedDataset",
    "DatasetFromList",
    "MapDataset",
    "build_batch_data_loader",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "get_detection_dataset_dicts",
    "trivial_batch_collator",
    "worker_init_reset_seed",
]

logger = logging.getLogger(__name__)


class DatasetFromList(Dataset):
    """A map-style dataset over a list. With ``serialize`` (the default) the items are kept as one pickled
    numpy byte buffer, which data-loader workers can read without the copy-on-read growth of Python lists.

    Args:
        lst: the items (dataset dicts).
        copy: return a deep copy of each item (only without ``serialize``; with it, each read is a copy).
        serialize: keep the items pickled in one buffer.
    """

    def __init__(self, lst: list, copy: bool = True, serialize: bool = True):
        if not lst:
            raise ValueError("DatasetFromList: the list of items is empty")
        self._copy = copy
        self._serialize = serialize
        if serialize:
            buffers = [
                np.frombuffer(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL), np.uint8) for item in lst
            ]
            self._ends = np.cumsum([len(b) for b in buffers])
            self._lst = np.concatenate(buffers)
        else:
            self._lst = lst

    def __len__(self) -> int:
        return len(self._ends) if self._serialize else len(self._lst)

    def __getitem__(self, idx: int):
        if self._serialize:
            start = 0 if idx == 0 else int(self._ends[idx - 1])
            return pickle.loads(memoryview(self._lst[start : int(self._ends[idx])]))
        return copy.deepcopy(self._lst[idx]) if self._copy else self._lst[idx]


class MapDataset(Dataset):
    """``map_func(dataset[i])``; when it returns None (the item is to be skipped), another random item is
    mapped instead."""

    def __init__(self, dataset: Dataset, map_func: Callable):
        self._dataset = dataset
        self._map_func = map_func

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int):
        for attempt in itertools.count(1):
            data = self._map_func(self._dataset[idx])
            if data is not None:
                return data
            if attempt % 3 == 0:
                logger.warning(f"MapDataset: failed to map item {idx} after {attempt} attempts")
            idx = random.randrange(len(self._dataset))


class AspectRatioGroupedDataset(IterableDataset):
    """Batches of ``batch_size`` items from ``dataset`` (an iterable of dicts with ``width``/``height``)
    where all images of a batch are landscape (width > height) or all are not."""

    def __init__(self, dataset: Iterable[dict], batch_size: int):
        self.dataset = dataset
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[dict]]:
        buckets: tuple[list, list] = ([], [])
        for item in self.dataset:
            bucket = buckets[0 if item["width"] > item["height"] else 1]
            bucket.append(item)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()


def trivial_batch_collator(batch: list) -> list:
    """Batches stay lists of dicts."""
    return batch


def _seed_all_rng(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (user mappers may draw from numpy's global RNG)
    torch.manual_seed(seed)


def worker_init_reset_seed(worker_id: int) -> None:
    """Seeds python, numpy and torch RNGs of a data-loader worker from its torch seed (different for every
    worker, derived from the loader's generator)."""
    _seed_all_rng(torch.initial_seed() % 2**31)


class _SeededMainProcessLoader:
    """Iterates ``loader`` after seeding this process's RNGs: with ``num_workers=0`` the mapper runs here,
    so this makes its augmentations reproducible, as :func:`worker_init_reset_seed` does in workers."""

    def __init__(self, loader: Iterable, seed: int):
        self.loader = loader
        self.seed = seed

    def __iter__(self) -> Iterator:
        _seed_all_rng(self.seed)
        yield from self.loader


def _check_names(names: str | list[str]) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("get_detection_dataset_dicts: no dataset names given")
    return names


def get_detection_dataset_dicts(
    names: str | list[str],
    filter_empty: bool = True,
    check_consistency: bool = True,
    check_image_files: bool = False,
) -> list[dict]:
    """The dataset dicts of one or several registered datasets, concatenated.

    Args:
        names: a dataset name or a list of names (``DatasetCatalog``).
        filter_empty: drop images with no non-crowd annotation.
        check_consistency: raise if the datasets' ``thing_classes`` differ.
        check_image_files: raise FileNotFoundError naming the missing image files, if any.
    """
    names = _check_names(names)
    per_dataset = [DatasetCatalog.get(name) for name in names]
    for name, dicts in zip(names, per_dataset, strict=True):
        if not dicts:
            raise ValueError(f"Dataset '{name}' is empty!")
    if check_consistency:
        _check_thing_classes(names)
    dataset_dicts = list(itertools.chain.from_iterable(per_dataset))

    if filter_empty and "annotations" in dataset_dicts[0]:
        before = len(dataset_dicts)
        dataset_dicts = [d for d in dataset_dicts if any(a.get("iscrowd", 0) == 0 for a in d["annotations"])]
        logger.info(
            f"Removed {before - len(dataset_dicts)} images with no usable annotations. "
            f"{len(dataset_dicts)} images left."
        )
    if not dataset_dicts:
        raise ValueError(f"No valid data found in {','.join(names)}.")
    if check_image_files:
        _check_image_files(dataset_dicts, names)
    return dataset_dicts


def _check_thing_classes(names: list[str]) -> None:
    classes = {name: MetadataCatalog.get(name).get("thing_classes") for name in names}
    classes = {name: value for name, value in classes.items() if value is not None}
    reference = next(iter(classes.items()), None)
    for name, value in classes.items():
        if list(value) != list(reference[1]):
            raise ValueError(
                f"Datasets '{reference[0]}' and '{name}' have different thing_classes: "
                f"{reference[1]} != {value}"
            )


def _check_image_files(dataset_dicts: list[dict], names: list[str]) -> None:
    missing = [d["file_name"] for d in dataset_dicts if not os.path.isfile(d["file_name"])]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(dataset_dicts)} image files of {','.join(names)} are missing, "
            f"e.g. {', '.join(missing[:3])}"
        )


def _as_dataset(dataset, mapper: Callable | None, filter_empty: bool) -> Dataset:
    """A map-style dataset of mapped items from dataset dicts, a dataset, or registered dataset name(s)."""
    if isinstance(dataset, str):
        dataset = [dataset]
    if isinstance(dataset, Sequence) and len(dataset) > 0 and all(isinstance(n, str) for n in dataset):
        dataset = get_detection_dataset_dicts(list(dataset), filter_empty=filter_empty)
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    return dataset if mapper is None else MapDataset(dataset, mapper)


def build_batch_data_loader(
    dataset: Dataset,
    sampler: Sampler,
    total_batch_size: int,
    *,
    aspect_ratio_grouping: bool = False,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    seed: int | None = None,
) -> Iterable[list]:
    """Batches of ``total_batch_size // world_size`` items of ``dataset`` in ``sampler`` order (optionally
    grouped by aspect ratio), loaded by ``num_workers`` workers seeded by :func:`worker_init_reset_seed`.
    With ``seed``, the workers' seeds (or, with no workers, this process's RNGs) derive from ``seed`` and
    the rank, so the batches are reproducible."""
    world_size = comm.get_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size ({total_batch_size}) must be divisible by the number of processes "
            f"({world_size})."
        )
    batch_size = total_batch_size // world_size
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed + comm.get_rank())
    common = {"num_workers": num_workers, "worker_init_fn": worker_init_reset_seed, "generator": generator}
    if aspect_ratio_grouping:
        loader = DataLoader(
            dataset, sampler=sampler, batch_size=None, collate_fn=trivial_batch_collator, **common
        )
        loader = AspectRatioGroupedDataset(loader, batch_size)
        if collate_fn is not None:
            loader = _MappedIterable(loader, collate_fn)
    else:
        batch_sampler = BatchSampler(sampler, batch_size, drop_last=True)
        loader = DataLoader(
            dataset, batch_sampler=batch_sampler, collate_fn=collate_fn or trivial_batch_collator, **common
        )
    if seed is not None and num_workers == 0:
        return _SeededMainProcessLoader(loader, seed + comm.get_rank())
    return loader


class _MappedIterable:
    """``func(x)`` for every ``x`` of ``iterable``."""

    def __init__(self, iterable: Iterable, func: Callable):
        self.iterable = iterable
        self.func = func

    def __iter__(self) -> Iterator:
        return map(self.func, self.iterable)


def build_detection_train_loader(
    dataset: list[dict] | Dataset | str | list[str],
    *,
    mapper: Callable | None,
    sampler: Sampler | None = None,
    total_batch_size: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    seed: int | None = None,
) -> Iterable[list]:
    """An infinite iterable of training batches (lists of ``mapper(dataset_dict)``).

    Args:
        dataset: dataset dicts, a map-style dataset, or registered dataset name(s) (loaded with
            ``filter_empty=True``).
        mapper: maps a dataset dict to the model's input dict (None: items are used as they are).
        sampler: index sampler; default ``TrainingSampler(len(dataset), seed=seed)``.
        total_batch_size: batch size summed over all ranks.
        aspect_ratio_grouping: batch landscape and portrait images separately (detectron2's default).
        num_workers: data-loader worker processes.
        collate_fn: applied to each batch (default: keep the list).
        seed: seed of the shuffling and of the augmentations (None: random, shared across ranks).
    """
    dataset = _as_dataset(dataset, mapper, filter_empty=True)
    if sampler is None:
        sampler = TrainingSampler(len(dataset), seed=seed)
    return build_batch_data_loader(
        dataset,
        sampler,
        total_batch_size,
        aspect_ratio_grouping=aspect_ratio_grouping,
        num_workers=num_workers,
        collate_fn=collate_fn,
        seed=seed,
    )


def build_detection_test_loader(
    dataset: list[dict] | Dataset | str | list[str],
    *,
    mapper: Callable | None,
    sampler: Sampler | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """Batches (lists) of ``batch_size`` mapped items that visit this rank's shard of ``dataset`` once, in
    order (:class:`InferenceSampler`). ``dataset`` as in :func:`build_detection_train_loader`, names loaded
    with ``filter_empty=False``."""
    dataset = _as_dataset(dataset, mapper, filter_empty=False)
    if sampler is None:
        sampler = InferenceSampler(len(dataset))
    return DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
        num_workers=num_workers,
        collate_fn=collate_fn or trivial_batch_collator,
    )
