"""Fixtures shared by the test files: small generated datasets and seeded random generators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fieldbench.pipeline import DatasetSpec, SplitSpec, generate
from fieldbench.sources import ConfigurationSpec


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory) -> Callable[..., Path]:
    """``make_dataset(name, splits, root=None)``: generate the dataset ``name`` of ``splits``
    (split name -> :class:`SplitSpec`) with Dask's synchronous scheduler (no thread pool to start
    for a few shards) into ``root / name`` (default: a fresh temporary folder) and return its folder.

    Session-scoped so module-scoped fixtures can use it; it keeps no state, so every call generates
    what it is asked for (share a dataset through a module-scoped fixture of the test file)."""

    def make(name: str, splits: dict[str, SplitSpec], root: Path | None = None) -> Path:
        target = Path(root if root is not None else tmp_path_factory.mktemp(name)) / name
        generate(DatasetSpec(name, splits), str(target), scheduler="sync")
        return target

    return make


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
