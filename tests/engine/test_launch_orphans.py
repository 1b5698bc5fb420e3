"""The gloo workers of ``launch`` exit when their launcher dies (SIGTERM or SIGKILL to it), instead of
training on as orphans; the parent watchdog (the fallback where prctl is unavailable) ends a process whose
parent died.

The launcher runs with SIGINT ignored, as a job started with ``&`` from a script or with ``nohup`` does:
torch's spawn asks for SIGINT on the parent's death, which such workers inherit as ignored."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LAUNCHER = textwrap.dedent(
    """
    import os, sys, time
    from detrkit.engine import launch
    from detrkit.utils import comm

    def main(out_dir):
        with open(os.path.join(out_dir, f"worker{comm.get_rank()}.pid"), "w") as f:
            f.write(str(os.getpid()))
        while True:  # "training" until killed
            time.sleep(0.1)

    if __name__ == "__main__":
        launch(main, 2, dist_url="auto", args=(sys.argv[1],))
    """
)

WATCHED_PARENT = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from detrkit.engine.launch import _start_parent_watchdog

    def child(parent_pid, out_dir):
        _start_parent_watchdog(parent_pid, 0.1)
        with open(os.path.join(out_dir, "worker0.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)

    if __name__ == "__main__":
        multiprocessing.get_context("spawn").Process(target=child, args=(os.getpid(), sys.argv[1])).start()
        time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def run_and_kill_parent(tmp_path, script: str, num_workers: int, sig: signal.Signals) -> list[int]:
    """Runs ``script`` (it writes ``worker<i>.pid`` files), kills it with ``sig`` once every worker is up;
    returns the worker pids."""
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, str(path), str(tmp_path)],
        cwd=REPO,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    pid_files = [tmp_path / f"worker{i}.pid" for i in range(num_workers)]
    try:
        assert wait_for(lambda: all(f.exists() and f.read_text() for f in pid_files), 120), "no workers"
        workers = [int(f.read_text()) for f in pid_files]
        assert all(alive(pid) for pid in workers)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        return workers
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_workers_exit_when_the_launcher_is_killed(tmp_path, sig):
    workers = run_and_kill_parent(tmp_path, LAUNCHER, 2, sig)
    orphans = lambda: [pid for pid in workers if alive(pid)]  # noqa: E731
    try:
        assert wait_for(lambda: not orphans(), 15), f"workers {orphans()} outlived their launcher"
    finally:
        for pid in orphans():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_parent_watchdog_ends_an_orphan(tmp_path):
    (worker,) = run_and_kill_parent(tmp_path, WATCHED_PARENT, 1, signal.SIGKILL)
    try:
        assert wait_for(lambda: not alive(worker), 15), "the watched process outlived its parent"
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
