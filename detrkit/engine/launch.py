"""``launch``: runs a main function in one process, or in one process per device with torch.distributed
initialised (NCCL on GPUs, gloo on CPU), with detectron2's signature. The worker processes die with the
launcher (SIGTERM, SIGKILL or a crash of it), so none is left training and writing checkpoints."""

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detrkit.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

logger = logging.getLogger(__name__)


def _find_free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (it may be taken again before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _exit_with_launcher(launcher_pid: int, poll_seconds: float = 1.0) -> None:
    """Makes this worker process exit when ``launcher_pid``, its parent, dies: on Linux the kernel sends it
    SIGKILL (``prctl(PR_SET_PDEATHSIG)``); elsewhere, or when that call fails, a daemon thread checks every
    ``poll_seconds`` whether the parent changed (an orphan is re-parented) and then ends the process."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
                    os._exit(1)
                return
            logger.warning(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
        except (OSError, AttributeError) as error:
            logger.warning(f"prctl(PR_SET_PDEATHSIG) is unavailable: {error}")
    _start_parent_watchdog(launcher_pid, poll_seconds)


def _start_parent_watchdog(launcher_pid: int, poll_seconds: float) -> threading.Thread:
    """A daemon thread that ends this process (exit status 1) once its parent is no longer
    ``launcher_pid``."""

    def watch() -> None:
        while os.getppid() == launcher_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    thread = threading.Thread(target=watch, name="detrkit-launcher-watchdog", daemon=True)
    thread.start()
    return thread


def launch(
    main_func: Callable,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Runs ``main_func(*args)``.

    With a world size (``num_machines * num_gpus_per_machine``) of 1 it runs in this process. Otherwise it
    spawns ``num_gpus_per_machine`` processes on this machine, each joining the process group (backend
    "nccl" when CUDA is available, else "gloo": ``num_gpus_per_machine`` is then the number of CPU
    processes, each using an equal share of the CPU threads).

    Args:
        main_func: a picklable (module-level) function.
        num_gpus_per_machine: processes per machine.
        num_machines: machines taking part.
        machine_rank: this machine's rank.
        dist_url: ``tcp://host:port`` of the rank-0 machine, or "auto"/None (one machine only): a free port
            on 127.0.0.1.
        args: arguments of ``main_func``.
        timeout: of the process-group operations.
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise ValueError(
                f"dist_url={dist_url!r} picks a local port, which needs num_machines=1, got {num_machines}"
            )
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(
            main_func,
            world_size,
            num_gpus_per_machine,
            machine_rank,
            dist_url,
            args,
            timeout,
            os.getpid(),
        ),
        daemon=False,
        start_method="spawn",
    )


def _distributed_worker(
    local_rank: int,
    main_func: Callable,
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta,
    launcher_pid: int,
) -> None:
    _exit_with_launcher(launcher_pid)
    has_gpu = torch.cuda.is_available()
    if has_gpu and num_gpus_per_machine > torch.cuda.device_count():
        raise ValueError(
            f"{num_gpus_per_machine} processes per machine, but only {torch.cuda.device_count()} GPUs"
        )
    if has_gpu:
        torch.cuda.set_device(local_rank)
    else:
        torch.set_num_threads(max(1, _available_cpus() // num_gpus_per_machine))
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    dist.init_process_group(
        backend="nccl" if has_gpu else "gloo",
        init_method=dist_url,
        world_size=world_size,
        rank=global_rank,
        timeout=timeout,
    )
    try:
        num_machines = world_size // num_gpus_per_machine
        for machine in range(num_machines):  # every process must create every group, in the same order
            ranks = list(range(machine * num_gpus_per_machine, (machine + 1) * num_gpus_per_machine))
            group = dist.new_group(ranks)
            if machine == machine_rank:
                comm._LOCAL_PROCESS_GROUP = group
        comm.synchronize()
        main_func(*args)
    finally:
        dist.destroy_process_group()
