"""A small demonstration of the exact solvers: a field map PNG and a cross-check against magpylib."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .physics import potential_and_field, reference_field
from .plotting import plot_field_map
from .sources import ConfigurationSpec, Sources, boundary_distance, pairwise_overlaps, sample_points, sample_sources

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    sources: Sources
    image: Path
    check_points: int
    median_deviation: float
    max_deviation: float


def run_demo(out_dir: str | Path = "fieldbench-out", *, seed: int = 7, resolution: int = 240) -> DemoResult:
    """Three discs and three prisms (no overlap) in [-3, 3]^2: plot their potential and field to
    ``out_dir/demo-fields.png`` and compare H at random points with magpylib's long magnets."""
    rng = np.random.default_rng(seed)
    discs = sample_sources(ConfigurationSpec(families=("disc",), sources=3, domain=2.5, size=(0.35, 0.7)), rng)
    while True:  # place the prisms clear of the discs (the sampler's own overlap test, one family at a time)
        prisms = sample_sources(ConfigurationSpec(families=("prism",), sources=3, domain=2.5, size=(0.5, 1.2),
                                                  aspect="free"), rng)
        candidate = Sources.concat([discs, prisms])
        if not pairwise_overlaps(candidate).any():
            break
    sources = candidate
    axis = (np.arange(resolution) + 0.5) / resolution * 6.0 - 3.0
    grid_x, grid_y = np.meshgrid(axis, axis)
    grid = np.c_[grid_x.ravel(), grid_y.ravel()]
    phi, field = potential_and_field(sources, grid, corners="finite-part")
    image = plot_field_map(sources, grid_x, grid_y, phi.reshape(grid_x.shape), field.reshape(*grid_x.shape, 2),
                           Path(out_dir) / "demo-fields.png",
                           title="fieldbench: exact potential and field of 3 discs and 3 prisms")

    # Cross-check away from edges (within 2% of a source size the references' own errors grow).
    check = sample_points(rng, 400, dim=2, domain=3.0)
    distance = boundary_distance(*(np.asarray(a)[None] for a in (sources.family, sources.centers, sources.sizes)),
                                 np.ones((1, len(sources)), bool), check[None])[0]
    check = check[np.abs(distance) > 0.02]
    ours = potential_and_field(sources, check)[1]
    theirs = reference_field(sources, check, backend="magpylib")
    deviation = np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    return DemoResult(sources, image, len(check), float(np.median(deviation)), float(deviation.max()))

