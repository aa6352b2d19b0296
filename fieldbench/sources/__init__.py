"""Sources: what a source is, collections of them, and seeded samplers of configurations.

The families themselves (what a disc or a cuboid is) are defined in :mod:`fieldbench.families`;
``Family`` is re-exported here.
"""

from ..families import Family
from ._configuration import ConfigurationSpec
from ._geometry import boundary_distance, pairwise_overlaps
from ._input_checks import as_points
from ._sampling import sample_configurations, sample_points, sample_sources
from ._sources import SourceBatch, Sources

__all__ = [
    "Family", "SourceBatch", "Sources",
    "ConfigurationSpec", "sample_sources", "sample_configurations", "sample_points", "as_points", "pairwise_overlaps",
    "boundary_distance",
]
