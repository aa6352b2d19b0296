"""The `fieldbench` command: a thin layer over the Python API (one function call per command).

``_common`` holds what every command shares (the Typer apps, the console, user errors, option
checks); ``_data``, ``_models``, ``_board`` and ``_bench`` hold the commands by group; ``_app``
registers them all on the app.
"""

from ._app import app

__all__ = ["app"]
