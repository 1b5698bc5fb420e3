"""Necks between the backbone and the transformer."""

from detrkit.modeling.neck.channel_mapper import ChannelMapper

__all__ = ["ChannelMapper"]
