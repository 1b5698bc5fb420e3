"""``DetectionCheckpointer``: fvcore's ``Checkpointer`` with detectron2's behaviour (saves on the main
process only; reads detectron2 ``.pkl`` and plain state-dict ``.pth`` files such as torchvision's) and
atomic writes, so an interrupted save never leaves a truncated checkpoint or a ``last_checkpoint`` that
names one."""

import os
import re
import tempfile
from collections.abc import Callable
from typing import IO, Any

import torch
from fvcore.common.checkpoint import Checkpointer
from torch import nn

from detrkit.checkpoint.key_matching import align_and_update_state_dicts
from detrkit.checkpoint.safe_load import load_checkpoint_file
from detrkit.utils import comm

__all__ = ["DetectionCheckpointer"]


# The temporary files of _atomic_write: ".<name>.<mkstemp's random part>.tmp".
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]+\.tmp$")


def _atomic_write(path: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Writes ``path`` via a temporary file in the same folder that is fsynced and then renamed over it:
    readers see the old file or the complete new one, never a partial one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _starting_weights_message(model: nn.Module) -> str:
    """What a model that loads no checkpoint starts from: the ``pretrained_weights`` (``{"path",
    "sha256"}``) its modules carry, or its random initialisation."""
    pretrained = [
        f"{name or 'the model'} from {weights['path']} (sha256 {weights['sha256']})"
        for name, module in model.named_modules()
        if (weights := getattr(module, "pretrained_weights", None))
    ]
    if not pretrained:
        return "No checkpoint to load: the model starts from its random initialisation"
    return (
        "No checkpoint to load: the model starts as built, with pretrained weights in "
        f"{'; '.join(pretrained)}, the other parameters randomly initialised"
    )


class DetectionCheckpointer(Checkpointer):
    """Saves and loads a model (unwrapped from DDP) with extra checkpointables, e.g.
    ``DetectionCheckpointer(model, output_dir, trainer=trainer, ema_state=model_ema)``.

    Loads, from local paths:
      * checkpoints written by this class or detectron2 (``.pth`` with a ``"model"`` entry);
      * detectron2 ``.pkl`` files: a pickled dict with ``"model"`` (numpy arrays or tensors) and optionally
        ``"__author__"`` and ``"matching_heuristics"``;
      * plain state dicts (e.g. torchvision's ``resnet50-*.pth``), whose names are matched to the model's
        by suffix (``layer1.0.conv1.weight`` -> ``backbone.layer1.0.conv1.weight``).
    Missing and unexpected keys are logged. Files are read without running code from them (tensors, numpy
    arrays and plain containers only; ``DETRKIT_TRUST_PICKLE=1`` lifts this for trusted files, see
    :mod:`detrkit.checkpoint.safe_load`).

    A checkpointer that writes (``save_to_disk``) removes, when it is built, the temporary files that a
    process killed during a save left in ``save_dir`` (``.model_0000009.pth.<random>.tmp``), and ``save``
    refuses a model with a NaN/inf parameter (``FloatingPointError``): ``last_checkpoint`` keeps naming the
    last finite checkpoint, the one ``--resume`` continues from.

    Args:
        model: the model, possibly wrapped in DistributedDataParallel.
        save_dir: folder of the checkpoints and of the ``last_checkpoint`` file.
        save_to_disk: whether ``save`` writes; default: only on the main process.
        checkpointables: objects with ``state_dict``/``load_state_dict`` saved next to the model.
    """

    def __init__(
        self, model: nn.Module, save_dir: str = "", *, save_to_disk: bool | None = None, **checkpointables
    ):
        super().__init__(
            model,
            save_dir,
            save_to_disk=comm.is_main_process() if save_to_disk is None else save_to_disk,
            **checkpointables,
        )
        if self.save_dir and self.save_to_disk and os.path.isdir(self.save_dir):
            self._remove_leftover_temp_files()

    def _remove_leftover_temp_files(self) -> None:
        """Deletes the temporary files of interrupted saves of checkpoints and ``last_checkpoint``."""
        for entry in os.listdir(self.save_dir):
            match = _TEMP_FILE.match(entry)
            if match and (match["name"].endswith(".pth") or match["name"] == "last_checkpoint"):
                os.unlink(os.path.join(self.save_dir, entry))
                self.logger.info(f"Removed {entry}, left in {self.save_dir} by an interrupted save")

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        """fvcore's ``load``. Without a ``path`` nothing is loaded, and the log says what the model starts
        from (instead of fvcore's "Initializing model from scratch"): the pretrained weights its modules were
        built with (file and sha256, recorded by ``load_backbone_weights``), the rest randomly initialised."""
        if path:
            return super().load(path, checkpointables)
        self.logger.info(_starting_weights_message(self.model))
        return {}

    def save(self, name: str, **kwargs: Any) -> None:
        """Writes ``<save_dir>/<name>.pth`` (model, checkpointables and ``kwargs``) atomically, then points
        ``last_checkpoint`` at it."""
        if not self.save_dir or not self.save_to_disk:
            return
        self._check_finite_parameters(name)
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def _check_finite_parameters(self, name: str) -> None:
        """FloatingPointError naming the model's NaN/inf parameters (nothing is written then)."""
        named = [(key, p) for key, p in self.model.named_parameters() if p.is_floating_point()]
        if not named:
            return
        finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in named]).tolist()
        bad = [key for (key, _), ok in zip(named, finite, strict=True) if not ok]
        if bad:
            last = self.get_checkpoint_file() if self.has_checkpoint() else "none"
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise FloatingPointError(
                f"Not saving {name}.pth: the model's parameters hold NaN or inf ({shown}); the training "
                f"diverged. last_checkpoint still names the last finite checkpoint: {last}"
            )

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Atomically writes ``last_filename_basename`` into ``<save_dir>/last_checkpoint``."""
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_write(path, lambda f: f.write(last_filename_basename.encode()))

    def _load_file(self, filename: str) -> dict:
        if filename.endswith(".pkl"):
            data = load_checkpoint_file(filename)
            if not isinstance(data, dict) or "model" not in data:
                found = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
                raise ValueError(
                    f"{filename}: a detectron2 .pkl checkpoint is a dict with a 'model' entry; found {found}"
                )
            if "__author__" in data:
                self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        loaded = load_checkpoint_file(filename)
        if not isinstance(loaded, dict):
            raise ValueError(
                f"{filename}: expected a checkpoint dict or a state dict, got {type(loaded).__name__}"
            )
        if "model" not in loaded:  # a plain state dict, e.g. torchvision's
            loaded = {"model": loaded, "matching_heuristics": True}
        return loaded

    def _load_model(self, checkpoint: dict):
        if checkpoint.get("matching_heuristics", False):
            self._convert_ndarray_to_tensor(checkpoint["model"])
            checkpoint["model"] = align_and_update_state_dicts(self.model.state_dict(), checkpoint["model"])
        return super()._load_model(checkpoint)
