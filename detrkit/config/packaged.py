"""Configs shipped with detrkit, found the same way in any install and from any folder: the common ones
(``detrkit/config/configs/``) and the paper projects' (``projects/...``, in the ``detrkit_projects``
package)."""

from pathlib import Path
from typing import Any

from detrkit.config.lazy import LazyConfig
from detrkit.config.project_configs import PROJECTS_PREFIX, project_config_file

__all__ = ["get_config", "get_config_file"]

_CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def get_config_file(config_path: str) -> str:
    """Absolute path of a shipped config, e.g. ``get_config_file("common/train.py")`` or
    ``get_config_file("projects/dino/configs/dino_shapes.py")``."""
    if config_path.startswith(PROJECTS_PREFIX):
        return project_config_file(config_path)
    path = _CONFIGS_DIR / config_path
    if not path.is_file():
        raise FileNotFoundError(f"{config_path!r} is not a detrkit config (looked for {path})")
    return str(path)


def get_config(config_path: str) -> Any:
    """Load a shipped config, e.g. ``get_config("common/optim.py").AdamW``.

    Args:
        config_path: path relative to ``detrkit/config/configs/`` (``"common/..."``), or a project config
            as its path in the repository (``"projects/<project>/configs/<file>.py"``).

    Returns:
        the DictConfig :meth:`LazyConfig.load` returns for that file.
    """
    return LazyConfig.load(get_config_file(config_path))
