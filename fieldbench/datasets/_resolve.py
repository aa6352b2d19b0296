"""The dataset spec that ``fieldbench generate`` builds: a standard dataset, a JSON spec file, or
one split described by its options."""

from __future__ import annotations

from pathlib import Path

from ..pipeline import DatasetSpec, SplitSpec
from ..sources import ConfigurationSpec
from ._registry import dataset_spec

__all__ = ["resolve_spec"]


def resolve_spec(spec: str | Path | None = None, *, name: str = "custom", families=("disc",), sources=1,
                 overlap: str = "none", domain=3.0, size=1.0, aspect: str = "square", magnetisation: float = 1.0,
                 points: int = 1024, point_method: str = "uniform", exclude_interiors: bool = False,
                 samples: int = 1000, seed: int = 0, shard_size: int = 1000) -> DatasetSpec:
    """``spec``: a JSON spec file (a ``.json`` name or an existing file) or a standard dataset
    name. Without one, a dataset ``name`` of one split, ``data``, from the other arguments (those
    of :class:`ConfigurationSpec` and :class:`SplitSpec`; ignored when ``spec`` is given)."""
    if spec is None:
        configuration = ConfigurationSpec(families=tuple(families), sources=sources, domain=domain, size=size,
                                          aspect=aspect, magnetisation=magnetisation, overlap=overlap)
        return DatasetSpec(name=name, splits={"data": SplitSpec(
            configuration, samples=samples, points=points, point_method=point_method,
            exclude_interiors=exclude_interiors, seed=seed, shard_size=shard_size)})
    if Path(spec).suffix == ".json" or Path(spec).is_file():
        return DatasetSpec.from_file(spec)
    return dataset_spec(str(spec))
