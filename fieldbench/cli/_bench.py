"""The bench group: speed measurements of the solvers, dataset generation and training steps."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import check_writable, console, json_option, show, user_errors, write_json


@user_errors
def bench_solvers(
    sources: int = typer.Option(2000, help="Sources M per configuration."),
    points: int = typer.Option(50_000, help="Evaluation points N."),
    repeats: int = typer.Option(3, help="Timed repetitions (best is reported)."),
    families: str = typer.Option("disc,prism", help="Comma-separated families (disc, prism, cuboid, sphere)."),
    json_out: Path = json_option("every measurement and the device"),
) -> None:
    """Exact (source, point) pairs per second, potential + field, float64, through the raw core and
    the public API (calls alternated); magpylib in the same run."""
    from .._tables import solver_table
    from ..bench import device_description, solver_throughput

    check_writable(json_out, "--json", folder=False)
    with console.status("timing solvers (compilation excluded)..."):
        results = solver_throughput(sources, points, families=families.split(","), repeats=repeats)
    show(solver_table(results, device_description()))
    write_json(json_out, {"device": device_description(), "results": [r.as_dict() for r in results]})


@user_errors
def bench_datasets(
    dataset: list[str] = typer.Option(["circles2d", "prisms2d"], help="Standard datasets to time."),
    split: str = typer.Option("train", help="Split to generate."),
    workers: int = typer.Option(2, help="Dask threads."),
    json_out: Path = json_option("every measurement (stage seconds and shares) and the device"),
) -> None:
    """End-to-end generation throughput (points with potential and field written to Parquet per second)."""
    import dataclasses

    from .._tables import generation_table
    from ..bench import device_description, generation_throughput

    check_writable(json_out, "--json", folder=False)
    results = []
    for name in dataset:
        with console.status(f"generating {name}/{split}..."):
            results.append(generation_throughput(name, split, workers=workers))
    show(generation_table(results, device_description()))
    write_json(json_out, {"device": device_description(), "results": [
        dataclasses.asdict(r) | {"points_per_second": r.points_per_second, "shares": r.shares()} for r in results]})


@user_errors
def bench_training(
    preset: str = typer.Option("paper", help="paper (Table 3 sizes) | quick."),
    model: list[str] = typer.Option(["fourier", "fc-ilr", "fc-inr", "linear"], help="Models (repeatable)."),
    repeats: int = typer.Option(5, help="Timed steps (best kept)."),
    json_out: Path = json_option("every measurement of every model and the device"),
) -> None:
    """One Adam training step per baseline (batch 100 x 1024 shared points), against the paper's code."""
    from .._tables import training_step_table
    from ..bench import device_description
    from ..models._speed import training_step_speed

    check_writable(json_out, "--json", folder=False)
    with console.status("timing training steps (compilation excluded)..."):
        rows = training_step_speed(tuple(model), preset=preset, repeats=repeats)
    show(training_step_table(rows, device_description()))
    write_json(json_out, {"device": device_description(), "results": rows})
