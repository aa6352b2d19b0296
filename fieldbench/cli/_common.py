"""What every command shares: the Typer apps, the console, user-error handling, printing, and the
checks and parsers of options (run before any work)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._version import __version__
from ..exceptions import FieldbenchError

app = typer.Typer(
    help="fieldbench: exact solvers, datasets and a benchmark suite for source-to-field models.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Speed measurements (benchmarks, never unit tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
datasets_app = typer.Typer(help="Standard datasets: list, get (download or rebuild, verified), verify, publish; "
                                "register and build (maintain the registry).",
                           no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
leaderboard_app = typer.Typer(help="Render the leaderboard (README.md + index.html), or verify its records.",
                              invoke_without_command=True)
app.add_typer(leaderboard_app, name="leaderboard")
#: Never cut a number: off a terminal (CI logs, pipes) rich would assume 80 columns and elide cells.
#: No markup: everything printed is plain text (user text such as fieldbench[fmm], [lo, hi]^d or a
#: path with brackets would otherwise be eaten as markup); styled parts are ``Text`` pieces.
console = Console(width=None if sys.stdout.isatty() else 240, markup=False)
#: Errors caused by what the user asked for: shown as one clear line, not a traceback. fieldbench's
#: own errors, bad values, a missing or existing file, a missing optional extra (ImportError). Never
#: TypeError or RuntimeError wholesale: those are bugs, and a bug must surface with its traceback.
USER_ERRORS = (FieldbenchError, ValueError, FileNotFoundError, FileExistsError, ImportError)


def user_errors(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            # As plain text: rich markup would eat bracketed words such as fieldbench[fmm].
            console.print(Text.assemble(("error: ", "bold red"), str(error)), soft_wrap=True)  # one line, however long
            raise typer.Exit(1) from None

    return wrapper


def say(*parts) -> None:
    """Print plain text pieces, each a string or (string, style): user text is never read as markup."""
    console.print(Text.assemble(*parts), soft_wrap=True)


def show(table) -> None:
    """Render a library :class:`fieldbench._tables.Table` with rich, then its notes."""
    rendered = Table(title=table.title)
    for heading, justify in table.columns:
        rendered.add_column(heading, justify=justify)
    for row in table.rows:
        rendered.add_row(*row)
    console.print(rendered)
    for note in table.notes:
        console.print(note)


#: Dask's local schedulers by the names it accepts (``--scheduler``).
LOCAL_SCHEDULERS = ("threads", "threading", "processes", "multiprocessing", "sync", "synchronous", "single-threaded")


def check_scheduler(scheduler: str | None) -> None:
    if scheduler is not None and "://" not in scheduler and scheduler not in LOCAL_SCHEDULERS:
        raise ValueError(f"--scheduler {scheduler!r} is not a scheduler: use threads (the default), processes, sync, "
                         "or the address of a running dask.distributed scheduler (tcp://HOST:PORT)")


def check_writable(path, option: str, *, folder: bool) -> None:
    """Refuse, before any work, an output that cannot be written: a file where a folder must be
    (or the reverse), a file among its parents (``--out afile/sub``), or a place this process may
    not write (probed by creating a temporary file there: permission bits alone do not tell, e.g.
    for root or on a read-only mount). URLs (memory://, s3://) are left to their file system."""
    import tempfile

    if path is None or "://" in str(path):
        return
    target = Path(path).expanduser()
    if folder and target.exists() and not target.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder: choose another {option}")
    if not folder and target.is_dir():
        raise ValueError(f"{option} {path} is a folder, not a file: name a file, e.g. {Path(path) / 'out.json'}")
    existing = target if folder and target.is_dir() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, so nothing can be created under it; choose another "
                         f"{option}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{option} {path}: cannot write in {existing} ({error.strerror or error}); choose a writable "
                         f"{option}") from None


def write_json(path: Path | None, data) -> None:
    """Write what a command reports to its ``--json`` file, every value unrounded: the one writer of
    every ``--json`` option (``check_writable`` checks the path before the work)."""
    if path is None:
        return
    import json

    from .._io import atomic_write_text

    # NumPy and JAX values as plain numbers (and lists); anything else that JSON lacks (a Path) as text.
    atomic_write_text(path, json.dumps(data, indent=1, default=lambda value: value.tolist() if hasattr(
        value, "tolist") else str(value)))
    console.print(f"wrote {path}", highlight=False)


def json_option(what: str = "every value of the table"):
    """The ``--json`` option (one per command: typer needs a fresh default object for each)."""
    return typer.Option(None, "--json", help=f"Also write {what} to this JSON file.")


def parse_range(text: str, kind=float):
    """'3' -> 3, '2-8' or '2:8' -> (2, 8) (for counts and size ranges)."""
    for separator in (":", "-"):
        head, sep, tail = text.partition(separator)
        if sep and head and tail:
            return kind(head), kind(tail)
    return kind(text)


def progress_bar(description: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # markup=False: the description holds the dataset's name, which may contain brackets.
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def print_version(value: bool) -> None:
    if value:
        console.print(f"fieldbench {__version__}")
        raise typer.Exit()
