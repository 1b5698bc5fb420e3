"""Bipartite matchers between predictions and ground truth."""

from detrkit.modeling.matcher.hungarian import HungarianMatcher

__all__ = ["HungarianMatcher"]
