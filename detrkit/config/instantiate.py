"""Build objects from LazyCall configs: ``instantiate`` and the dotted-name helpers it relies on.

Semantics follow ``detectron2.config.instantiate``: a mapping with a ``_target_`` key is a call whose
other keys are keyword arguments (instantiated first, depth first); lists and list/tuple config nodes
are instantiated element-wise; anything else (numbers, strings, mappings without ``_target_``, objects
already built) is returned as is.
"""

import dataclasses
import importlib
from collections import abc
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["instantiate", "locate", "target_to_string"]


def locate(name: str) -> Any:
    """Return the object named by a dotted path such as ``"torch.optim.AdamW"``.

    The longest importable module prefix is imported and the rest is looked up as attributes.
    Raises ImportError naming ``name`` when nothing matches.
    """
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Only "this prefix does not exist" means: try a shorter one; a module that exists but
            # fails to import its own dependencies is a real error.
            if e.name is not None and (module_name + ".").startswith(e.name + "."):
                continue
            raise
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                raise ImportError(f"Cannot locate {name!r}: {obj!r} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"Cannot locate {name!r}: no module {parts[0]!r}")


def target_to_string(target: Any) -> str:
    """Inverse of :func:`locate`: the shortest ``module.qualname`` path that locates ``target``.

    E.g. ``torch.optim.adamw.AdamW`` becomes ``"torch.optim.AdamW"``.
    """
    module, qualname = target.__module__, target.__qualname__
    module_parts = module.split(".")
    for k in range(1, len(module_parts)):
        candidate = ".".join(module_parts[:k]) + "." + qualname
        try:
            if locate(candidate) is target:
                return candidate
        except ImportError:
            pass
    return f"{module}.{qualname}"


def instantiate(cfg: Any) -> Any:
    """Recursively build the objects a config describes.

    Args:
        cfg: a mapping with ``_target_`` (a callable or its dotted name) and keyword arguments, a list
            of such, or any other value (returned unchanged).

    Returns:
        the object ``_target_(**kwargs)`` returned, with every nested call built first.
    """
    if isinstance(cfg, ListConfig):
        return ListConfig([instantiate(x) for x in cfg], flags={"allow_objects": True})
    if isinstance(cfg, list):
        return [instantiate(x) for x in cfg]
    if OmegaConf.is_config(cfg) and isinstance(cfg, abc.Sequence):  # omegaconf >= 2.4 keeps tuples as such
        return tuple(instantiate(x) for x in cfg)
    if isinstance(cfg, DictConfig) and dataclasses.is_dataclass(cfg._metadata.object_type):
        return OmegaConf.to_object(cfg)
    if not (isinstance(cfg, abc.Mapping) and "_target_" in cfg):
        return cfg

    kwargs = {k: instantiate(v) for k, v in cfg.items()}
    target = kwargs.pop("_target_")
    if isinstance(target, str):
        target = locate(target)
    if not callable(target):
        raise TypeError(f"_target_ {target!r} is not callable")
    try:
        return target(**kwargs)
    except TypeError as e:
        raise TypeError(f"Error when instantiating {_describe(target)}: {e}") from e


def _describe(target: Any) -> str:
    """``module.qualname`` of a callable when it has one, else its repr (for error messages)."""
    if hasattr(target, "__module__") and hasattr(target, "__qualname__"):
        return f"{target.__module__}.{target.__qualname__}"
    return repr(target)
