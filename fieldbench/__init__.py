"""fieldbench: exact solvers, datasets and a benchmark for source-to-field surrogate models.

The package follows the data: ``sources`` -> ``physics`` -> (pipeline, datasets) -> (models,
evaluation, leaderboard). The most used names are re-exported here. Every error fieldbench raises
on purpose derives from :class:`FieldbenchError` (all of them in ``fieldbench.exceptions``).
"""

from ._version import __version__
from .exceptions import FieldbenchError
from .sources import Family, SourceBatch, Sources
from . import physics
from .physics import field, potential, potential_and_field

__all__ = ["FieldbenchError", "Family", "SourceBatch", "Sources", "__version__", "field", "physics", "potential", "potential_and_field"]
