"""LazyConfig system with detectron2's names and semantics, and the configs shipped with detrkit."""

from detrkit.config.instantiate import instantiate, locate
from detrkit.config.lazy import LazyCall, LazyConfig
from detrkit.config.packaged import get_config, get_config_file

L = LazyCall

__all__ = ["L", "LazyCall", "LazyConfig", "get_config", "get_config_file", "instantiate", "locate"]
