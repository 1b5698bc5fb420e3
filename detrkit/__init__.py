"""detrkit: query-based object detectors on a detectron2-compatible library with compiled ops."""

from detrkit._extension import ops_info

__version__ = "0.1.0"

__all__ = ["ops_info", "__version__"]
