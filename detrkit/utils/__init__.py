"""Utilities shared by the library: distributed helpers, logging, events, visualisation."""
