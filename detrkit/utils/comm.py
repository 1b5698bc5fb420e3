"""Process-group helpers with detectron2's names; every function also works without torch.distributed
(one process: rank 0 of a world of 1)."""

import torch
import torch.distributed as dist

__all__ = [
    "all_gather",
    "average_over_processes",
    "gather",
    "get_local_rank",
    "get_local_size",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "reduce_dict",
    "shared_random_seed",
    "synchronize",
]

_LOCAL_PROCESS_GROUP = None  # set by detrkit.engine.launch: the processes of this machine


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _distributed() else 1


def get_rank() -> int:
    return dist.get_rank() if _distributed() else 0


def get_local_rank() -> int:
    """Rank of this process among the processes of its machine."""
    if not _distributed() or _LOCAL_PROCESS_GROUP is None:
        return 0
    return dist.get_rank(group=_LOCAL_PROCESS_GROUP)


def get_local_size() -> int:
    if not _distributed() or _LOCAL_PROCESS_GROUP is None:
        return 1
    return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op with one process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_gather(data, group=None) -> list:
    """Every process's picklable ``data``, in rank order, on every process."""
    if get_world_size() == 1:
        return [data]
    output = [None] * dist.get_world_size(group=group)
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data, dst: int = 0, group=None) -> list:
    """Every process's picklable ``data`` in rank order on rank ``dst``; ``[]`` on the others."""
    if get_world_size() == 1:
        return [data]
    world = dist.get_world_size(group=group)
    output = [None] * world if dist.get_rank(group=group) == dst else None
    dist.gather_object(data, output, dst=dst, group=group)
    return output if output is not None else []


def average_over_processes(value: torch.Tensor) -> float:
    """A scalar tensor's mean over all processes (itself in one process), as a float; not differentiated."""
    value = value.detach().float().reshape(1)
    if get_world_size() > 1:
        dist.all_reduce(value)
    return value.item() / get_world_size()


def shared_random_seed() -> int:
    """A random int drawn on rank 0 and shared by all processes."""
    seed = int(torch.randint(2**31, (1,)).item())
    return all_gather(seed)[0]


def reduce_dict(input_dict: dict, average: bool = True) -> dict:
    """Sums (or averages) a dict of scalar tensors over all processes; same keys on every process."""
    world = get_world_size()
    if world == 1:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict)
        values = torch.stack([input_dict[k] for k in names])
        dist.all_reduce(values)
        if average:
            values /= world
        return dict(zip(names, values, strict=True))
