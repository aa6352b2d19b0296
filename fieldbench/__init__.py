"""fieldbench: exact solvers, datasets and a benchmark for source-to-field surrogate models.

The package follows the data: ``families`` (what each source family is) -> ``sources`` ->
``physics`` -> (pipeline, datasets) -> (models, evaluation, leaderboard). The most used names are
re-exported here.
"""

from ._version import __version__
from .sources import Family, SourceBatch, Sources
from . import physics
from .physics import field, potential, potential_and_field

__all__ = ["Family", "SourceBatch", "Sources", "__version__", "field", "physics", "potential", "potential_and_field"]
