"""Where ``get`` keeps verified copies of the standard datasets (the cache; no I/O here)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["CACHE_ENV", "cache_root", "dataset_path"]

CACHE_ENV = "FIELDBENCH_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The fieldbench cache root: argument, else ``$FIELDBENCH_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(platformdirs.user_cache_dir("fieldbench"))


def dataset_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``get`` keeps dataset ``name``: ``<cache root>/datasets/<name>``."""
    return cache_root(cache_dir) / "datasets" / name
