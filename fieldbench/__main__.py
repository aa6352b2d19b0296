"""`python -m fieldbench ...`: the same as the `fieldbench` command."""

from .cli import app

app()
