"""The `fieldbench` command: a thin layer over the Python API (one function call per command)."""

from ._app import app

__all__ = ["app"]
