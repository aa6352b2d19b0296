"""The user's settings for standard datasets: where the cache is, which mirrors to download from.

Both are read from arguments, environment variables and the TOML config file (see ``_fetch`` for
the order; the environment is read through ``fieldbench._config``); nothing here touches the data.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from .._config import CACHE_ENV, CONFIG_ENV, MIRROR_ENV, cache_folder, config_file, mirror_setting
from ._mirrors import Mirror, parse_mirror

__all__ = ["CACHE_ENV", "MIRROR_ENV", "CONFIG_ENV", "cache_root", "dataset_path", "config_path", "load_config",
           "resolve_mirrors", "how_to_configure"]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The fieldbench cache root: argument, else ``$FIELDBENCH_CACHE``, else the user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if cache_folder():
        return Path(cache_folder()).expanduser()
    return Path(platformdirs.user_cache_dir("fieldbench"))


def dataset_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``get`` keeps dataset ``name``: ``<cache root>/datasets/<name>``."""
    return cache_root(cache_dir) / "datasets" / name


def config_path() -> Path:
    """The config file: ``$FIELDBENCH_CONFIG``, else ``<user config dir>/fieldbench/config.toml``."""
    configured = config_file()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("fieldbench")) / "config.toml"


def load_config() -> dict:
    """The parsed config file ({} when there is none)."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"cannot parse the fieldbench config file {path}: {error}") from None


def _split(value) -> list:
    """A setting as a list: a string holds one mirror or several separated by spaces or commas."""
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def resolve_mirrors(mirror: str | Sequence[str] | None = None) -> list[Mirror]:
    """The mirrors to try, in order (empty: no mirror): the argument, else ``$FIELDBENCH_MIRROR``,
    else the key ``mirror`` of the config file. Each of them is a string of one or more mirrors
    (separated by spaces or commas) or a list of strings; an empty one means "no mirror". The kinds
    of mirror are listed in ``fieldbench.datasets._mirrors``."""
    if mirror is not None:
        value, origin = mirror, "--mirror (mirror= in Python)"
    elif mirror_setting() is not None:
        value, origin = mirror_setting(), f"${MIRROR_ENV}"
    else:
        value, origin = load_config().get("mirror"), f"'mirror' in {config_path()}"
    if value is None:
        return []
    mirrors = []
    for item in _split(value):
        if isinstance(item, str) and not item.strip():
            continue  # --mirror '' among others: no mirror from that one
        parsed = parse_mirror(item, origin)
        if parsed not in mirrors:
            mirrors.append(parsed)
    return mirrors


def how_to_configure() -> str:
    """How to set mirrors (named in every message about a missing or failing one)."""
    return (f"pass --mirror URL, repeatable (mirror=URL or a list in Python), set {MIRROR_ENV}='URL [URL ...]', or "
            f"put `mirror = [\"URL\", ...]` in {config_path()}; a mirror is any static server of a folder written "
            "by `fieldbench datasets publish`, a doi:10.NNNN/ID record or a hf://datasets/ORG/NAME repository, "
            "tried in order")
