"""The leaderboard commands: submit, the leaderboard group (render, verify, migrate), benchmark (the
main job) and scaling."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import check_writable, console, say, show, user_errors


@user_errors
def submit(
    model: str = typer.Argument(..., help="exact | fmm | fmm-dipole | fmm-pure | a baseline name | path/file.py:Class"),
    name: str = typer.Option(..., help="Leaderboard name."),
    checkpoint: list[Path] = typer.Option(None, help="Checkpoint of a learned model; repeat it for one checkpoint "
                                                     "per seed (the record then holds mean +- std over seeds; the "
                                                     "official board wants >= 3)."),
    checkpoint_url: list[str] = typer.Option(None, help="Where each checkpoint is published (https://.../NAME.eqx, its "
                                                        ".json beside it), one per --checkpoint in the same order: "
                                                        "verify downloads it when it is not in the clone."),
    dataset: list[str] = typer.Option(None, help="Standard datasets (default: the training dataset, or all)."),
    records: Path = typer.Option(Path("leaderboard/records"), help="Records folder."),
    scaling: bool = typer.Option(True, help="Run the runtime-scaling measurement for the record."),
    replace: bool = typer.Option(False, help="Overwrite an existing record of this name."),
    author: list[str] = typer.Option(None, help="An author of the model (repeat it for each)."),
    contact: str = typer.Option(None, help="Who to write to about the record (an e-mail or a handle)."),
    code_url: str = typer.Option(None, help="Where the model's code is (https://...)."),
    paper: str = typer.Option(None, help="The paper: a URL or a DOI (10.xxxx/...)."),
    description: str = typer.Option(None, help="One or two sentences on the model."),
) -> None:
    """Evaluate on all test splits, measure scaling, and write a validated result record (with who
    submitted it and where to read about it: --author, --contact, --code-url, --paper, --description)."""
    from ..leaderboard import submit_measured

    check_writable(records, "--records", folder=True)
    paths = submit_measured(model, name, checkpoints=checkpoint or (), datasets=dataset or None, directory=records,
                            scaling=scaling, replace=replace, say=lambda text: say((text, "dim")),
                            submission={"authors": author or [], "contact": contact, "code_url": code_url,
                                        "paper": paper, "description": description},
                            checkpoint_urls=checkpoint_url or None)
    for path in paths:
        console.print(f"record: {path}")


@user_errors
def leaderboard(
    ctx: typer.Context,
    records: Path = typer.Option(Path("leaderboard/records"), help="Records folder."),
    out: Path = typer.Option(None, help="Output folder (default: the records' parent)."),
) -> None:
    """Render leaderboard/README.md and leaderboard/index.html (sortable tables and plots)."""
    ctx.obj = {"records": records}
    if ctx.invoked_subcommand is not None:
        return
    from ..leaderboard import render

    check_writable(out or records.parent, "--out", folder=True)
    paths = render(records, out)
    console.print(f"rendered {paths['readme']} and {paths['html']}")


@user_errors
def leaderboard_verify(
    ctx: typer.Context,
    records: Path = typer.Option(None, help="Records folder (default: the group's --records, else "
                                            "leaderboard/records)."),
    rescore: bool = typer.Option(False, help="Also re-evaluate every metric and seed value (counts exact, errors "
                                             "within 1e-3 relative) and re-time the speed and short scaling rows "
                                             "(within 3x, on the same device only)."),
    allow_local: bool = typer.Option(False, help="Accept local results: records on a -mini dataset or the first N "
                                                 "samples of each split, learned models with fewer than 3 seeds, "
                                                 "or without submission metadata (the board lists them apart)."),
    only: list[Path] = typer.Option(None, help="With --rescore: rescore only these record files (repeat it; e.g. "
                                               "the records a pull request adds or changes). Every record is "
                                               "still checked without a rescore."),
) -> None:
    """Validate every record: schema, content digest (catches any edit by hand), registry checksums,
    checkpoint hashes, flags and parameter count re-derived from the checkpoint, duplicates, ranges."""
    from ..leaderboard import load_records, verify_records

    records = _records_folder(ctx, records)
    problems = verify_records(records, rescore=rescore, allow_local=allow_local, only=only or None)
    _print_problems(problems)
    if problems:
        raise typer.Exit(1)
    console.print(f"{len(load_records(records))} record(s) valid")


@user_errors
def leaderboard_migrate(
    ctx: typer.Context,
    records: Path = typer.Option(None, help="Records folder (default: the group's --records, else "
                                            "leaderboard/records)."),
    metadata: Path = typer.Option(None, help="A JSON file of submission metadata by record name ({NAME: {authors, "
                                             "code_url, paper, description}}) for records that have none "
                                             "(the baselines': baselines/submissions.json)."),
) -> None:
    """Upgrade records of earlier versions: version 1 is rescored (as verify --rescore) and upgraded
    only if every number is reproduced; version 2 is verified (its digest included) and gets its
    validation-split score (every seed) and, from --metadata, submission metadata. Current records
    are never rewritten."""
    from .._io import read_json
    from ..leaderboard import migrate_records

    records = _records_folder(ctx, records)
    check_writable(records, "--records", folder=True)
    shape = '{NAME: {"authors": [...], "description": ...}}'
    blocks = read_json(metadata, f"fix the JSON: {shape}") if metadata else None
    if blocks is not None and not (isinstance(blocks, dict) and all(isinstance(v, dict) for v in blocks.values())):
        raise ValueError(f"{metadata} must map record names to submission blocks: {shape}")
    written, problems = migrate_records(records, metadata=blocks)
    _print_problems(problems)
    console.print(f"upgraded {len(written)} record(s)" + "".join(f"\n  {path}" for path in written))
    if problems:
        raise typer.Exit(1)


def _records_folder(ctx: typer.Context, records: Path | None) -> Path:
    return records or (ctx.obj or {}).get("records") or Path("leaderboard/records")


def _print_problems(problems) -> None:
    for problem in problems:
        say(("problem: ", "red"), str(problem))


@user_errors
def benchmark(out: Path = typer.Option(Path("fieldbench-out/benchmark"), help="Output folder.")) -> None:
    """The main job: mini datasets, shipped checkpoints, all test splits, quick scaling, the leaderboard page."""
    check_writable(out, "--out", folder=True)
    run_benchmark_job(out)


def run_benchmark_job(out: Path) -> None:
    from ..leaderboard import benchmark_tables, run_benchmark

    result = run_benchmark(out, say=lambda text: say((text, "dim")))
    for table in benchmark_tables(result):
        show(table)
    console.print(f"leaderboard page: {result.page}  ({result.seconds:.0f} s)")


@user_errors
def scaling_command(
    methods: str = typer.Option("exact,fmm,fmm-pure,fc-ilr,fourier", help="Comma-separated methods."),
    checkpoint: list[str] = typer.Option(None, help="NAME=FILE: time a trained or user model (repeatable)."),
    preset: str = typer.Option("quick", help="Size of the learned baselines (untrained weights time the same)."),
    sizes: str = typer.Option("1e2,1e3,1e4,1e5,1e6", help="Comma-separated M (= N unless --n-fixed)."),
    n_fixed: int = typer.Option(None, help="Keep N fixed instead of N = M."),
    m_fixed: int = typer.Option(None, help="Also sweep N with this M fixed."),
    family: str = typer.Option("disc", help="disc | prism."),
    points_inside: bool = typer.Option(False, help="Points at the source centres (FMM needs its correction)."),
    time_budget: float = typer.Option(60.0, help="Stop growing a method past this many seconds per call."),
    repeats: int = typer.Option(3, help="Timed repeats (best kept)."),
    out: Path = typer.Option(Path("fieldbench-out/scaling"), help="Folder for the table, JSON and plot."),
) -> None:
    """Wall time against M (N = M) and N, encoding and evaluation apart, compile excluded; fits slopes."""
    from ..evaluation import scaling_study

    check_writable(out, "--out", folder=True)
    result = scaling_study(out, [m.strip() for m in methods.split(",") if m.strip()], checkpoints=checkpoint or (),
                           preset=preset, sizes_m=tuple(float(s) for s in sizes.split(",")),
                           n_equals_m=n_fixed is None, n_fixed=n_fixed, m_fixed=m_fixed, family=family,
                           points_inside=points_inside, time_budget=time_budget, repeats=repeats,
                           progress=lambda row: say((str(row), "dim")))
    console.print(result.to_table("markdown"))
    console.print(result.slope_table("markdown"))
    console.print(f"device: {result.environment.get('device', '')}; written to {out}")
