"""argparse types for the tools' numeric options: a bad value is an argparse usage error naming it."""

import argparse
from collections.abc import Callable

__all__ = ["int_at_least", "non_negative_int", "positive_int", "unit_interval_float"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an int ``>= minimum``; anything else is a usage error naming the value, e.g.
    ``argument --repeats: '0' is not an int >= 1``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an int >= {minimum}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def unit_interval_float(text: str) -> float:
    """A float in [0, 1] (a score or IoU threshold)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return value
