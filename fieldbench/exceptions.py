"""Every error (and warning) that fieldbench itself defines, in one place.

All errors derive from :class:`FieldbenchError`, so ``except FieldbenchError`` catches exactly the
problems fieldbench reports on purpose (the command line shows them as one line). Each also keeps
the built-in base it always had (``ValueError``, ``KeyError``, ``RuntimeError``), so code that
catches those keeps working. Plain bad arguments stay plain ``ValueError``/``TypeError``.

The classes are re-exported where they are raised (``fieldbench.datasets.ChecksumError``,
``fieldbench.evaluation.InvalidPrediction``, ...): import them from either place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotation only: this module imports nothing of fieldbench at run time
    from .datasets import VerificationReport

__all__ = [
    "FieldbenchError", "DamagedFileError", "MissingPackageDataError", "CardError", "OldLayoutError",
    "DatasetExistsError", "UnknownDatasetError", "UnknownSplitError", "StaleRegistryError", "DatasetVerificationError",
    "PublishError", "ChecksumError", "DatasetUnavailableError", "UnknownCheckpointError", "CheckpointUnavailableError",
    "InvalidModelError", "TrainingDivergedError", "InvalidPrediction", "MirrorWarning",
]


class FieldbenchError(Exception):
    """The base of every error fieldbench raises on purpose, with a message that says what to do."""


class _Unquoted:
    """A ``KeyError`` would quote its message when printed: print it as written."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- files ---------------------------------------------------------------------------------------------
class DamagedFileError(FieldbenchError, ValueError):
    """A JSON file exists but cannot be parsed; the message names the file and the fix."""


class MissingPackageDataError(FieldbenchError, FileNotFoundError):
    """A folder that ships inside the package (dataset specs and registry, baseline checkpoints) is
    missing from this installation (a FileNotFoundError); the message names it and the fix."""


# -- datasets ------------------------------------------------------------------------------------------
class CardError(FieldbenchError, ValueError):
    """A card (or manifest) that is valid JSON but not one this fieldbench reads; one line."""


class OldLayoutError(CardError):
    """A dataset folder in an older layout (card ``schema_version`` 1): ``fieldbench datasets migrate``
    moves it into the current one in place."""


class DatasetExistsError(FieldbenchError, ValueError):
    """The target holds a different dataset: fieldbench never overwrites one."""


class UnknownDatasetError(_Unquoted, FieldbenchError, KeyError, ValueError):
    """No standard dataset of that name (a KeyError and a ValueError, with a readable message)."""


class UnknownSplitError(_Unquoted, FieldbenchError, KeyError):
    """A dataset has no split of that name (a KeyError); the message lists the splits it has."""


class StaleRegistryError(FieldbenchError, RuntimeError):
    """The registry has no (or outdated) checksums for a dataset whose spec exists."""


class DatasetVerificationError(FieldbenchError, ValueError):
    """A dataset failed verification; ``.report`` holds the details."""

    def __init__(self, report: VerificationReport, headline: str | None = None):
        self.report = report
        super().__init__((headline + "\n" if headline else "") + str(report))


class PublishError(FieldbenchError, RuntimeError):
    """The dataset cannot serve as a mirror for the registry."""


class ChecksumError(FieldbenchError, ValueError):
    """Downloaded content does not match the registry (the file was discarded)."""


class DatasetUnavailableError(FieldbenchError, RuntimeError):
    """No mirror could provide the dataset and a local rebuild was not allowed."""


class MirrorWarning(UserWarning):
    """No mirror configured, or the mirror failed: falling back to a local rebuild."""


# -- models --------------------------------------------------------------------------------------------
class UnknownCheckpointError(_Unquoted, FieldbenchError, KeyError, ValueError):
    """No registered checkpoint of that name (a KeyError and a ValueError, with a readable message)."""


class CheckpointUnavailableError(FieldbenchError, RuntimeError):
    """No mirror could provide a registered checkpoint; the message names the training command."""


class InvalidModelError(FieldbenchError, TypeError):
    """A user model ('file.py:Class') is not a fieldbench model class (a TypeError)."""


class TrainingDivergedError(FieldbenchError, FloatingPointError):
    """Training went non-finite (a FloatingPointError); the message names the rate to lower."""


# -- evaluation ----------------------------------------------------------------------------------------
class InvalidPrediction(FieldbenchError, ValueError):
    """A model returned output of the wrong shape, dtype, or with NaN/inf."""
