"""Fixtures shared by the test files: small generated datasets, the standard mini datasets and seeded
random generators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fieldbench.datasets import dataset_spec
from fieldbench.pipeline import DatasetSpec, SplitSpec, generate
from fieldbench.sources import ConfigurationSpec

MINIS = ("circles2d-mini", "prisms2d-mini")


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory) -> Callable[..., Path]:
    """``make_dataset(name, splits, root=None, *, with_card=False)``: generate the dataset ``name`` of
    ``splits`` (split name -> :class:`SplitSpec`) with Dask's synchronous scheduler (no thread pool to
    start for a few shards) into ``root / name`` (default: a fresh temporary folder) and return its
    folder, or ``(folder, card)`` with ``with_card=True`` (the :class:`DatasetCard` ``generate`` returned).

    Session-scoped so module-scoped fixtures can use it; it keeps no state, so every call generates
    what it is asked for (share a dataset through a module-scoped fixture of the test file)."""

    def make(name: str, splits: dict[str, SplitSpec], root: Path | None = None, *, with_card: bool = False):
        target = Path(root if root is not None else tmp_path_factory.mktemp(name)) / name
        card = generate(DatasetSpec(name, splits), str(target), scheduler="sync")
        return (target, card) if with_card else target

    return make


@pytest.fixture(scope="session")
def standard_minis(tmp_path_factory) -> dict[str, Path]:
    """circles2d-mini and prisms2d-mini (name -> folder), generated once per session from their
    registered specs with ``generate``'s default scheduler, as ``fieldbench datasets build`` does.

    Shared by several test files: tests must not modify these folders (copy one to change it)."""
    root = tmp_path_factory.mktemp("standard-minis")
    out = {}
    for name in MINIS:
        generate(dataset_spec(name), str(root / name))
        out[name] = root / name
    return out


@pytest.fixture(scope="session")
def disc_configuration() -> Callable[..., ConfigurationSpec]:
    """``disc_configuration(sources=1, size=1.0, domain=3.0, **options)``: a configuration of discs (by default
    one disc of radius 1 centred in [-3, 3]^2, the circles2d distribution's single-source case)."""

    def configuration(sources=1, size=1.0, domain=3.0, **options) -> ConfigurationSpec:
        return ConfigurationSpec(families=("disc",), sources=sources, domain=domain, size=size, **options)

    return configuration


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed (0): a test's random inputs are the same on every run."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def full_circles2d() -> str:
    """The full standard circles2d, verified against the registry (rebuilt into the cache when it is not
    there: ~20 s), for what only a full dataset can show: official records, rescoring committed ones."""
    from fieldbench.datasets import get

    get("circles2d", progress=False)
    return "circles2d"
