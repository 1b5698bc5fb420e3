"""LazyCall and LazyConfig: Python (or YAML) config files made of lazily-described calls.

Same names and semantics as ``detectron2.config.LazyCall`` / ``LazyConfig``, so one config file loads
with either library:

* ``LazyCall(f)(**kwargs)`` records a call as an omegaconf DictConfig with ``_target_ = f``;
* ``LazyConfig.load`` runs a Python config file; inside it, relative imports (``from .base import x``,
  ``from ..common.optim import AdamW``) load other config *files* by location (no ``__init__.py``
  needed, nothing cached, imported dicts become DictConfigs);
* ``LazyConfig.save`` writes YAML, plus a cloudpickle file when YAML cannot hold the config;
* ``LazyConfig.apply_overrides`` applies command-line ``key=value`` overrides.
"""

import ast
import builtins
import logging
import os
import types
from collections import abc
from typing import Any

import cloudpickle
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, SCMode

from detrkit.config.instantiate import locate, target_to_string

__all__ = ["LazyCall", "LazyConfig"]

logger = logging.getLogger(__name__)

_CONFIG_MODULE_PREFIX = "detrkit._cfg_loader."
# Lower-case words Hydra's override grammar (used by detectron2) reads as booleans and None.
_OVERRIDE_KEYWORDS = {"true": True, "false": False, "null": None}


class LazyCall:
    """Wrap a callable so that calling it records the call instead of running it.

    ``LazyCall(torch.nn.Linear)(in_features=4, out_features=2)`` returns the DictConfig
    ``{in_features: 4, out_features: 2, _target_: torch.nn.Linear}``; edit it like any config, then
    build the object with :func:`detrkit.config.instantiate`. Only keyword arguments are supported.
    """

    def __init__(self, target: Any):
        if not (callable(target) or isinstance(target, (str, abc.Mapping))):
            raise TypeError(f"LazyCall target must be a callable or a dotted name, got {target!r}")
        self._target = target

    def __call__(self, **kwargs: Any) -> DictConfig:
        kwargs["_target_"] = self._target
        return DictConfig(content=kwargs, flags={"allow_objects": True})


def _as_config(obj: Any) -> Any:
    """A dict becomes a DictConfig (allowing arbitrary objects as values); anything else is unchanged."""
    if isinstance(obj, dict):
        return DictConfig(obj, flags={"allow_objects": True})
    return obj


def _relative_config_path(importer: str, name: str, level: int) -> str:
    """The file that ``from <level dots><name> import ...`` in config file ``importer`` refers to."""
    if not name:
        raise ImportError(
            f"{importer}: 'from {'.' * level} import ...' imports a folder; a config file can only "
            "import names from other config files, e.g. 'from .base import model'"
        )
    folder = os.path.dirname(importer)
    for _ in range(level - 1):
        folder = os.path.dirname(folder)
    path = os.path.join(folder, *name.split(".")) + ".py"
    if not os.path.isfile(path):
        raise ImportError(f"{importer}: cannot import {'.' * level}{name}: {path} does not exist")
    return path


def _config_import(name, globals=None, locals=None, fromlist=(), level=0):
    """The ``__import__`` config files see: relative imports load config files by location."""
    if level == 0 or not globals or "__file__" not in globals:
        return builtins.__import__(name, globals, locals, fromlist, level)
    module = _execute_config_file(_relative_config_path(globals["__file__"], name, level))
    for attr in fromlist or ():
        if attr in module.__dict__:
            module.__dict__[attr] = _as_config(module.__dict__[attr])
    return module


_CONFIG_BUILTINS = {**vars(builtins), "__import__": _config_import}


def _execute_config_file(filename: str) -> types.ModuleType:
    """Run a Python config file in a fresh module whose relative imports go through ``_config_import``."""
    with open(filename, encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as e:
        raise SyntaxError(f"Config file {filename} has a syntax error at line {e.lineno}: {e.msg}") from e
    stem = os.path.splitext(os.path.basename(filename))[0]
    module = types.ModuleType(_CONFIG_MODULE_PREFIX + stem)
    module.__file__ = filename
    module.__builtins__ = _CONFIG_BUILTINS
    exec(code, module.__dict__)
    return module


def _name_targets(obj: Any) -> None:
    """In a plain container, replace callable ``_target_`` values by dotted names that locate them."""
    if isinstance(obj, dict):
        target = obj.get("_target_")
        if callable(target) and hasattr(target, "__qualname__"):
            name = target_to_string(target)
            try:
                if locate(name) is target:
                    obj["_target_"] = name
            except ImportError:
                pass  # e.g. a lambda: it stays an object and the config is pickled as well
        for value in obj.values():
            _name_targets(value)
    elif isinstance(obj, list):
        for value in obj:
            _name_targets(value)


#: the Python objects a config YAML may hold (``!!python/object:<name>``, rebuilt as ``cls(**fields)``)
_YAML_OBJECTS = ("detrkit.layers.shape_spec.ShapeSpec",)


class _ConfigYamlLoader(yaml.SafeLoader):
    """YAML's safe loader plus what ``LazyConfig.save`` writes besides plain data: tuples
    (``!!python/tuple``) and the dataclasses of :data:`_YAML_OBJECTS`. Other Python tags
    (``!!python/object/apply:os.system``, ``!!python/name:...``) are errors, so loading runs no code."""

    def construct_tuple(self, node: yaml.Node) -> tuple:
        """``!!python/tuple [a, b]`` -> ``(a, b)``."""
        return tuple(self.construct_sequence(node, deep=True))

    def construct_allowed_object(self, name: str, node: yaml.Node) -> Any:
        """``!!python/object:<name> {fields}`` -> ``cls(**fields)`` for a ``name`` of :data:`_YAML_OBJECTS`;
        any other name is a ``ConstructorError`` naming it, and nothing is imported."""
        if name not in _YAML_OBJECTS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"!!python/object:{name} is not allowed (allowed: {', '.join(_YAML_OBJECTS)})",
                node.start_mark,
            )
        return locate(name)(**self.construct_mapping(node, deep=True))


_ConfigYamlLoader.add_constructor("tag:yaml.org,2002:python/tuple", _ConfigYamlLoader.construct_tuple)
_ConfigYamlLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/object:", _ConfigYamlLoader.construct_allowed_object
)


def _load_yaml(stream: Any) -> Any:
    return yaml.load(stream, Loader=_ConfigYamlLoader)


def _loads_back(dumped: str) -> bool:
    """Whether YAML text written by ``yaml.dump`` can be read again (by the loader of ``LazyConfig.load``)."""
    try:
        _load_yaml(dumped)
    except Exception:
        return False
    return True


def _parse_override_value(text: str) -> Any:
    """A Python literal when ``text`` is one (``1``, ``1e-4``, ``[1, 2]``, ``None``), Hydra's
    ``true/false/null``, else the string itself (``./output``, ``${train.lr}``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return _OVERRIDE_KEYWORDS.get(text.lower(), text)


def _check_override_key(cfg: DictConfig, key: str, allow_new: bool) -> None:
    """Raise KeyError unless ``key`` names an existing entry (or, with ``allow_new``, can be added)."""
    node: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, DictConfig):
            exists = part in node.keys()
        elif isinstance(node, ListConfig):
            exists = part.isdigit() and int(part) < len(node)
        else:
            parent = ".".join(parts[:depth])
            raise KeyError(f"Cannot override {key!r}: {parent!r} is a {type(node).__name__}, not a config")
        if not exists:
            if allow_new:
                return
            missing = ".".join(parts[: depth + 1])
            raise KeyError(
                f"Cannot override {key!r}: {missing!r} is not in the config (write +{key}=... to add it)"
            )
        if depth + 1 < len(parts):
            node = node[int(part)] if isinstance(node, ListConfig) else node[part]


def _checked_override_value(cfg: DictConfig, key: str, value: Any, override: str) -> Any:
    """``value`` for ``key`` when it fits the type of the value it replaces, else TypeError naming the
    override: a bool takes a bool, an int an int (an integral float such as ``1e4`` becomes one), a float any
    number. ``None``, interpolations (``${...}``), new keys and other types are not checked."""
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if value is None or isinstance(value, str) and value.startswith("${"):
        return value
    if not isinstance(parent, DictConfig | ListConfig):
        return value
    index = int(last) if isinstance(parent, ListConfig) else last
    if isinstance(parent, DictConfig) and last not in parent:
        return value  # a new key (+key=value)
    if OmegaConf.is_interpolation(parent, index) or OmegaConf.is_missing(parent, index):
        return value
    old = parent[index]
    if isinstance(old, bool):
        expected, fits = "a bool (true/false)", isinstance(value, bool)
    elif isinstance(old, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        expected, fits = "an int", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(old, float):
        expected, fits = "a number", isinstance(value, int | float) and not isinstance(value, bool)
    else:
        return value
    if not fits:
        raise TypeError(
            f"Override {override!r}: {key} must be {expected}, like the value it replaces ({old!r}); "
            f"got {value!r} ({type(value).__name__})"
        )
    return value


class LazyConfig:
    """Load, save and override omegaconf configs that may describe lazily-built objects."""

    @staticmethod
    def load(filename: str | os.PathLike, keys: None | str | tuple[str, ...] = None) -> Any:
        """Load a ``.py`` or ``.yaml``/``.yml`` config file.

        Args:
            filename: path of the file (relative to the working directory or absolute).
            keys: top-level names to return; ``None`` returns them all.

        Returns:
            for ``keys=None``, a DictConfig of the file's module-level configs (dicts, DictConfigs and
            ListConfigs whose names do not start with ``_``; a YAML file's whole content); for a string
            key, that value; for a tuple of keys, a tuple of values.
        """
        filename = os.fspath(filename)
        extension = os.path.splitext(filename)[1]
        if extension not in (".py", ".yaml", ".yml"):
            raise ValueError(f"Config file {filename} has to be a .py, .yaml or .yml file")
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"Config file {filename} does not exist")
        if extension == ".py":
            namespace = vars(_execute_config_file(filename))
        else:
            with open(filename, encoding="utf-8") as f:
                try:
                    content = _load_yaml(f)
                except yaml.YAMLError as e:
                    raise ValueError(
                        f"Config file {filename} is not a config YAML that can be read safely: {e}"
                    ) from None
            namespace = OmegaConf.create(content, flags={"allow_objects": True})

        if keys is not None:
            wanted = (keys,) if isinstance(keys, str) else tuple(keys)
            for key in wanted:
                if key not in namespace:
                    raise KeyError(f"Config file {filename} has no top-level {key!r}")
            values = tuple(_as_config(namespace[key]) for key in wanted)
            return values[0] if isinstance(keys, str) else values
        if extension != ".py":
            return namespace
        return DictConfig(
            {
                name: _as_config(value)
                for name, value in namespace.items()
                if not name.startswith("_") and isinstance(value, (DictConfig, ListConfig, dict))
            },
            flags={"allow_objects": True},
        )

    @staticmethod
    def save(cfg: DictConfig, filename: str | os.PathLike) -> None:
        """Write ``cfg`` to ``filename`` as YAML, interpolations unresolved and targets as dotted names.

        When the config holds something YAML cannot represent or read back (e.g. a lambda), the YAML
        (if any) stays for humans, a warning is logged and the config is also written with cloudpickle
        to ``filename + ".pkl"``.
        """
        filename = os.fspath(filename)
        container = OmegaConf.to_container(cfg, resolve=False, structured_config_mode=SCMode.INSTANTIATE)
        _name_targets(container)
        try:
            dumped = yaml.dump(container, default_flow_style=None, allow_unicode=True, width=9999)
        except Exception as e:
            logger.warning(f"Config cannot be written as YAML to {filename}: {e}")
            dumped = None
        else:
            with open(filename, "w", encoding="utf-8") as f:
                f.write(dumped)
        if dumped is not None and _loads_back(dumped):
            return
        pickle_file = filename + ".pkl"
        try:
            with open(pickle_file, "wb") as f:
                cloudpickle.dump(cfg, f)
        except Exception:
            logger.exception(f"Config cannot be saved with cloudpickle to {pickle_file} either")
        else:
            logger.warning(
                f"Config holds objects YAML cannot read back; it is saved with cloudpickle at {pickle_file}"
            )

    @staticmethod
    def apply_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
        """Apply command-line overrides to ``cfg`` in place and return it.

        Each override is ``key=value`` with a dotted key (``train.max_iter=10``, ``model.dims=[1,2]``);
        the value is a Python literal when it parses as one, Hydra's ``true``/``false``/``null``, or else
        a string. The key must already exist; ``+key=value`` (Hydra's syntax, also accepted by
        detectron2) adds a new one. Dict values are merged into existing dict nodes. A value that replaces a
        bool, int or float must be one too (TypeError naming the override, e.g. ``train.max_iter=abc``).
        """
        for override in overrides:
            key, sep, text = override.partition("=")
            if not sep or not key.strip("+"):
                raise ValueError(f"Override {override!r} is not of the form key=value")
            if key.startswith("~"):
                raise ValueError(f"Override {override!r}: deleting keys is not supported")
            allow_new = key.startswith("+")
            key = key.lstrip("+")
            _check_override_key(cfg, key, allow_new)
            value = _checked_override_value(cfg, key, _parse_override_value(text), override)
            OmegaConf.update(cfg, key, value, merge=True)
        return cfg
