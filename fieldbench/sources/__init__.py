"""Sources: what a source is, collections of them, and seeded samplers of configurations."""

from ._geometry import boundary_distance
from ._sampling import ConfigurationSpec, as_points, pairwise_overlaps, sample_configurations, sample_points, sample_sources
from ._sources import Family, SourceBatch, Sources

__all__ = [
    "Family", "SourceBatch", "Sources",
    "ConfigurationSpec", "sample_sources", "sample_configurations", "sample_points", "as_points", "pairwise_overlaps",
    "boundary_distance",
]
