"""The paper projects' configs, found in the installed ``detrkit_projects`` package (the repository's
``projects/`` folder), so that a config in any folder can start from them:
``get_config("projects/dino/configs/dino_shapes.py")``."""

import importlib.util
from pathlib import Path

__all__ = ["PROJECTS_PREFIX", "project_config_file", "project_config_files"]

#: modules of a ``configs/`` folder that are not configs: the package marker and the config helpers
NOT_CONFIGS = ("__init__.py", "helpers.py")

PROJECTS_PREFIX = "projects/"


def _projects_root() -> Path:
    spec = importlib.util.find_spec("detrkit_projects")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "detrkit_projects is not installed: install detrkit (pip install --no-build-isolation -e .), "
            "which installs the folder projects/ as detrkit_projects"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def project_config_file(config_path: str) -> str:
    """Absolute path of a project config, e.g.
    ``project_config_file("projects/dino/configs/dino_shapes.py")``.

    Args:
        config_path: ``"projects/<project>/configs/<file>.py"``, as the path in the repository.

    Raises:
        ValueError: if ``config_path`` does not start with ``projects/``.
        FileNotFoundError: naming the path looked at and the projects that exist.
    """
    if not config_path.startswith(PROJECTS_PREFIX):
        raise ValueError(f"{config_path!r} is not a project config path (it must start with 'projects/')")
    root = _projects_root()
    path = root / config_path[len(PROJECTS_PREFIX) :]
    if not path.is_file():
        projects = sorted(p.name for p in root.iterdir() if (p / "configs").is_dir())
        raise FileNotFoundError(
            f"{config_path!r} is not a detrkit project config (looked for {path}); projects: {projects}"
        )
    return str(path)


def project_config_files() -> list[Path]:
    """Every config file of every project (``projects/<project>/configs/*.py``, sorted, without the
    :data:`NOT_CONFIGS` modules)."""
    return sorted(p for p in _projects_root().glob("*/configs/*.py") if p.name not in NOT_CONFIGS)
