"""The user's settings for standard datasets: where the cache is, which mirror to download from.

Both are read from arguments, environment variables and the TOML config file (see ``_fetch`` for
the order; the environment is read through ``fieldbench._config``); nothing here touches the data.
"""

from __future__ import annotations

import os
import tomllib
import urllib.parse
from pathlib import Path

import platformdirs

from .._config import CACHE_ENV, CONFIG_ENV, MIRROR_ENV, cache_folder, config_file, mirror_setting

__all__ = ["CACHE_ENV", "MIRROR_ENV", "CONFIG_ENV", "cache_root", "dataset_path", "config_path", "load_config",
           "resolve_mirror", "how_to_configure"]

_SCHEMES = ("http", "https", "ftp")


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


def resolve_mirror(mirror: str | None = None) -> str | None:
    """The mirror base URL (no trailing slash) or None: argument, ``$FIELDBENCH_MIRROR``, config file."""
    if mirror is not None:
        value, origin = mirror, "--mirror (mirror= in Python)"
    elif mirror_setting() is not None:
        value, origin = mirror_setting(), f"${MIRROR_ENV}"
    else:
        value, origin = load_config().get("mirror"), f"'mirror' in {config_path()}"
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{origin} must be a URL string; got {value!r}")
    value = value.strip().rstrip("/")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in _SCHEMES or not parts.netloc:
        raise ValueError(f"{origin} = {value!r} is not an http(s) or ftp base URL (e.g. 'http://HOST:8000', "
                         "where HOST serves the folder written by `fieldbench datasets publish`)")
    return value


def how_to_configure() -> str:
    """How to set a mirror (named in every message about a missing or failing one)."""
    return (f"pass --mirror URL (mirror=URL in Python), set {MIRROR_ENV}=URL, or put `mirror = \"URL\"` in "
            f"{config_path()} (any static server of a folder written by `fieldbench datasets publish` is a mirror)")
