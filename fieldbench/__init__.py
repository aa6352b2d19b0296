"""fieldbench: exact solvers, datasets and a benchmark for source-to-field surrogate models.

The package follows the data: ``families`` (what each source family is) -> ``sources`` ->
``physics`` -> (pipeline, datasets) -> (models, evaluation, leaderboard). The most used names are
re-exported here. ``fieldbench.pipeline``, ``.datasets``, ``.models``, ``.evaluation`` and
``.leaderboard`` are attributes too (``import fieldbench as fb; fb.datasets.load(...)``), imported
on first use: ``import fieldbench`` stays fast (no Dask, pyarrow, equinox or optax until needed).
Every error fieldbench raises on purpose derives from :class:`FieldbenchError` (all of them in
``fieldbench.exceptions``). The physics contract (units, signs, closed forms, values on
boundaries) is ``docs/physics.md``.
"""

from ._config import configure_jax as _configure_jax

_configure_jax()  # float64 and one CPU device per core, before any module of fieldbench starts JAX

import importlib  # noqa: E402

from . import physics  # noqa: E402
from ._version import __version__  # noqa: E402
from .exceptions import FieldbenchError  # noqa: E402
from .physics import field, potential, potential_and_field  # noqa: E402
from .sources import Family, SourceBatch, Sources  # noqa: E402

__all__ = ["FieldbenchError", "Family", "SourceBatch", "Sources", "__version__", "field", "physics", "potential",
           "potential_and_field"]

#: Subpackages imported on first attribute access (module ``__getattr__``, PEP 562), not at import.
_LAZY = ("pipeline", "datasets", "models", "evaluation", "leaderboard")


def __getattr__(name: str):
    if name in _LAZY:
        # import_module binds the subpackage as an attribute of this module: later lookups skip this.
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
