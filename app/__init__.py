"""Daybook: a local, private desktop assistant that remembers your day."""

__version__ = "0.1.0"
