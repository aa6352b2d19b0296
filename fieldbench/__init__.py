"""fieldbench: exact solvers, datasets and a benchmark for source-to-field surrogate models.

The package follows the data: ``families`` (what each source family is) -> ``sources`` ->
``physics`` -> (pipeline, datasets) -> (models, evaluation, leaderboard). The most used names are
re-exported here. Every error fieldbench raises on purpose derives from :class:`FieldbenchError`
(all of them in ``fieldbench.exceptions``).
"""

from ._config import configure_jax as _configure_jax

_configure_jax()  # float64 and one CPU device per core, before any module of fieldbench starts JAX

from . import physics  # noqa: E402
from ._version import __version__  # noqa: E402
from .exceptions import FieldbenchError  # noqa: E402
from .physics import field, potential, potential_and_field  # noqa: E402
from .sources import Family, SourceBatch, Sources  # noqa: E402

__all__ = ["FieldbenchError", "Family", "SourceBatch", "Sources", "__version__", "field", "physics", "potential",
           "potential_and_field"]
