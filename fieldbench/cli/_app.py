from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._version import __version__

app = typer.Typer(
    help="fieldbench: exact solvers, datasets and a benchmark suite for source-to-field models.",
    no_args_is_help=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Speed measurements (benchmarks, never unit tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"fieldbench {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run with no command for the main job on its embedded defaults (currently: `demo`)."""
    if ctx.invoked_subcommand is None:
        _demo(Path("fieldbench-out"), seed=7)


@app.command()
def demo(
    out: Path = typer.Option(Path("fieldbench-out"), help="Folder for the PNG."),
    seed: int = typer.Option(7, help="Seed of the random configuration."),
) -> None:
    """Compute and plot the exact potential and field of a few discs and prisms; cross-check with magpylib."""
    _demo(out, seed)


def _demo(out: Path, seed: int) -> None:
    from ..demo import run_demo

    start = time.perf_counter()
    with console.status("computing fields and the magpylib cross-check..."):
        result = run_demo(out, seed=seed)
    console.print(f"[bold]sources:[/bold] {result.sources}")
    console.print(f"[bold]picture:[/bold] {result.image}")
    table = Table(title="cross-check of H against magpylib (long magnets, extrapolated)")
    table.add_column("points")
    table.add_column("median relative deviation", justify="right")
    table.add_column("max relative deviation", justify="right")
    table.add_row(str(result.check_points), f"{result.median_deviation:.1e}", f"{result.max_deviation:.1e}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - start:.1f} s")


@bench_app.command("solvers")
def bench_solvers(
    sources: int = typer.Option(2000, help="Sources M per configuration."),
    points: int = typer.Option(50_000, help="Evaluation points N."),
    repeats: int = typer.Option(3, help="Timed repetitions (best is reported)."),
) -> None:
    """Exact (source, point) pairs per second, potential + field, float64; magpylib in the same run."""
    from ..bench import device_description, solver_throughput

    with console.status("timing solvers (compilation excluded)..."):
        results = solver_throughput(sources, points, repeats=repeats)
    table = Table(title=f"exact solver throughput on {device_description()}")
    for column in ("solver", "family", "M", "N", "best time (s)", "compile (s)", "M pairs/s"):
        table.add_column(column, justify="right" if column not in ("solver", "family") else "left")
    for r in results:
        table.add_row(r.solver, r.family, str(r.sources), str(r.points), f"{r.seconds:.3f}",
                      f"{r.compile_seconds:.2f}", f"{r.pairs_per_second / 1e6:,.1f}")
    console.print(table)
    magpylib = results[-1].pairs_per_second
    for r in results[:-1]:
        console.print(f"{r.family}: {r.pairs_per_second / magpylib:,.0f}x magpylib's cuboid_field")
