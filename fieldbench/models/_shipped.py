"""The shipped baseline checkpoints: package data, ``fieldbench/models/checkpoints/``.

Default recipes, seeds 0-2: ``baselines/train_baselines.py`` writes them, ``baselines/
evaluate_baselines.py`` scores them into the committed leaderboard records, ``fieldbench
benchmark`` (the main job) scores the first seed of each. Found with ``importlib.resources``: in a
wheel the installed folder, in an editable install the checkout's own (so the scripts write in place).

A record names a checkpoint by its path relative to the records' repository. The shipped ones lay
in ``baselines/checkpoints/`` before they became package data, and the committed records, sealed
by their content digest, still name them so: :func:`shipped_checkpoint` finds a shipped checkpoint
by its file name under either path, so old and new records verify from a checkout and from a wheel.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path, PurePosixPath

from ..exceptions import MissingPackageDataError

__all__ = ["SHIPPED_PATH", "LEGACY_SHIPPED_PATHS", "shipped_checkpoint_dir", "shipped_checkpoint"]

#: The folder of the shipped checkpoints inside the package (``fieldbench.models``).
FOLDER = "checkpoints"
#: The shipped checkpoints' folder as a repository-relative path (how a record made in a checkout names them).
SHIPPED_PATH = f"fieldbench/models/{FOLDER}"
#: Where they lay before; records committed then name them so.
LEGACY_SHIPPED_PATHS = ("baselines/checkpoints",)


def shipped_checkpoint_dir() -> Path:
    """The folder of the shipped checkpoints; ``MissingPackageDataError`` if this installation lacks it."""
    folder = resources.files(__package__).joinpath(FOLDER)
    # A real folder (globbed, and written by the training script in a checkout), not any Traversable.
    if not isinstance(folder, Path) or not folder.is_dir():
        raise MissingPackageDataError(f"the shipped baseline checkpoints ({SHIPPED_PATH}) are missing from this "
                                      f"installation ({folder}): reinstall fieldbench, or in a checkout restore "
                                      f"them with `git checkout -- {SHIPPED_PATH}`")
    return folder


def shipped_checkpoint(stored: str) -> Path | None:
    """The shipped checkpoint that a record's relative path names (``baselines/checkpoints/NAME`` or
    ``fieldbench/models/checkpoints/NAME``), found by its file name in the package; None when the path
    names no shipped checkpoint (another folder, or no such file)."""
    path = PurePosixPath(stored)
    if path.is_absolute() or path.parent.as_posix() not in (SHIPPED_PATH, *LEGACY_SHIPPED_PATHS):
        return None
    try:
        candidate = shipped_checkpoint_dir() / path.name
    except MissingPackageDataError:
        return None
    return candidate if candidate.is_file() else None
