"""Sources: what a source is, collections of them, and seeded samplers of configurations."""

from ._sources import Family, SourceBatch, Sources

__all__ = ["Family", "SourceBatch", "Sources"]
