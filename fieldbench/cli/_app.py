from __future__ import annotations

import functools
import sys
import time
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


def _check_scheduler(scheduler: str | None) -> None:
    if scheduler is not None and "://" not in scheduler and scheduler not in LOCAL_SCHEDULERS:
        raise ValueError(f"--scheduler {scheduler!r} is not a scheduler: use threads (the default), processes, sync, "
                         "or the address of a running dask.distributed scheduler (tcp://HOST:PORT)")


def _writable(path, option: str, *, folder: bool) -> None:
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


def _write_json(path: Path | None, data) -> None:
    """Write what a command reports to its ``--json`` file, every value unrounded: the one writer of
    every ``--json`` option (``_writable`` checks the path before the work)."""
    if path is None:
        return
    import json

    from .._io import atomic_write_text

    # NumPy and JAX values as plain numbers (and lists); anything else that JSON lacks (a Path) as text.
    atomic_write_text(path, json.dumps(data, indent=1, default=lambda value: value.tolist() if hasattr(
        value, "tolist") else str(value)))
    console.print(f"wrote {path}", highlight=False)


def _json_option(what: str = "every value of the table"):
    """The ``--json`` option (one per command: typer needs a fresh default object for each)."""
    return typer.Option(None, "--json", help=f"Also write {what} to this JSON file.")


def _range(text: str, kind=float):
    """'3' -> 3, '2-8' or '2:8' -> (2, 8) (for counts and size ranges)."""
    for separator in (":", "-"):
        head, sep, tail = text.partition(separator)
        if sep and head and tail:
            return kind(head), kind(tail)
    return kind(text)


def _progress_bar(description: str):
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


def _version(value: bool) -> None:
    if value:
        console.print(f"fieldbench {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run with no command for the main job on its embedded defaults: `benchmark`."""
    if ctx.invoked_subcommand is None:
        _benchmark(Path("fieldbench-out/benchmark"))


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("fieldbench-out"), help="Folder for the PNG."),
    seed: int = typer.Option(7, help="Seed of the random configuration."),
) -> None:
    """Compute and plot the exact potential and field of a few discs and prisms; cross-check with magpylib."""
    _writable(out, "--out", folder=True)
    _demo(out, seed)


def _demo(out: Path, seed: int) -> None:
    from .._tables import demo_table
    from ..demo import run_demo

    start = time.perf_counter()
    with console.status("computing fields and the magpylib cross-check..."):
        result = run_demo(out, seed=seed)
    say(("sources: ", "bold"), str(result.sources))
    say(("picture: ", "bold"), str(result.image))
    show(demo_table(result))
    console.print(f"done in {time.perf_counter() - start:.1f} s")


@bench_app.command("solvers")
@user_errors
def bench_solvers(
    sources: int = typer.Option(2000, help="Sources M per configuration."),
    points: int = typer.Option(50_000, help="Evaluation points N."),
    repeats: int = typer.Option(3, help="Timed repetitions (best is reported)."),
    families: str = typer.Option("disc,prism", help="Comma-separated families (disc, prism, cuboid, sphere)."),
    json_out: Path = _json_option("every measurement and the device"),
) -> None:
    """Exact (source, point) pairs per second, potential + field, float64, through the raw core and
    the public API (calls alternated); magpylib in the same run."""
    from ..bench import API, CORE, device_description, solver_throughput

    _writable(json_out, "--json", folder=False)
    with console.status("timing solvers (compilation excluded)..."):
        results = solver_throughput(sources, points, families=families.split(","), repeats=repeats)
    table = Table(title=f"exact solver throughput on {device_description()}")
    for column in ("solver", "family", "M", "N", "best time (s)", "compile (s)", "M pairs/s"):
        table.add_column(column, justify="right" if column not in ("solver", "family") else "left")
    for r in results:
        table.add_row(r.solver, r.family, str(r.sources), str(r.points), f"{r.seconds:.3f}",
                      f"{r.compile_seconds:.2f}", f"{r.pairs_per_second / 1e6:,.1f}")
    console.print(table)
    magpylib = results[-1].pairs_per_second
    core = {r.family: r.pairs_per_second for r in results if r.solver == CORE}
    for r in results:
        if r.solver == API:
            console.print(f"{r.family}: core {core[r.family] / magpylib:,.0f}x magpylib's cuboid_field, API "
                          f"{r.pairs_per_second / magpylib:,.0f}x (API at {r.pairs_per_second / core[r.family]:.0%} "
                          "of the core's pairs/s)")
    _write_json(json_out, {"device": device_description(), "results": [r.as_dict() for r in results]})


@bench_app.command("datasets")
@user_errors
def bench_datasets(
    dataset: list[str] = typer.Option(["circles2d", "prisms2d"], help="Standard datasets to time."),
    split: str = typer.Option("train", help="Split to generate."),
    workers: int = typer.Option(2, help="Dask threads."),
    json_out: Path = _json_option("every measurement (stage seconds and shares) and the device"),
) -> None:
    """End-to-end generation throughput (points with potential and field written to Parquet per second)."""
    import dataclasses

    from .._tables import generation_table
    from ..bench import device_description, generation_throughput

    _writable(json_out, "--json", folder=False)
    results = []
    for name in dataset:
        with console.status(f"generating {name}/{split}..."):
            results.append(generation_throughput(name, split, workers=workers))
    show(generation_table(results, device_description()))
    _write_json(json_out, {"device": device_description(), "results": [
        dataclasses.asdict(r) | {"points_per_second": r.points_per_second, "shares": r.shares()} for r in results]})


@app.command()
@user_errors
def generate(
    spec: str = typer.Argument(None, help="A standard dataset name (see `fieldbench datasets list`) or a JSON "
                                          "spec file; omit to describe one split with the options below."),
    out: str = typer.Option(..., "--out", "-o", help="Target directory or fsspec URL (memory://, s3://, ...)."),
    split: list[str] = typer.Option(None, help="Only these splits (repeatable)."),
    scheduler: str = typer.Option(None, help="'threads' (default), 'processes', 'sync', or tcp://HOST:PORT of a "
                                             "running dask.distributed scheduler."),
    workers: int = typer.Option(None, help="Workers for the local schedulers."),
    families: str = typer.Option("disc", help="Comma-separated families: disc, prism (2D) or cuboid, sphere (3D)."),
    sources: str = typer.Option("1", help="Sources per sample: K or a range like 2-8."),
    overlap: str = typer.Option("none", help="none | allowed | forced."),
    domain: float = typer.Option(3.0, help="Half-width h of the domain [-h, h]^d."),
    size: str = typer.Option("1", help="Radius (discs, spheres) or full side (prisms, cuboids): value or lo-hi."),
    aspect: str = typer.Option("square", help="square | free (prisms and cuboids)."),
    magnetisation: float = typer.Option(1.0, help="Std of the normal magnetisation components."),
    points: int = typer.Option(1024, help="Evaluation points per sample."),
    point_method: str = typer.Option("uniform", help="uniform | grid."),
    exclude_interiors: bool = typer.Option(False, help="Keep points outside every source."),
    samples: int = typer.Option(1000, help="Samples (configurations)."),
    seed: int = typer.Option(0, help="Seed of the split."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    name: str = typer.Option("custom", help="Dataset name (options mode)."),
) -> None:
    """Generate (or resume) a dataset of Parquet shards and its card; rerun to resume after an interruption."""
    from ..datasets import resolve_spec
    from ..pipeline import generate as run_generate

    _check_scheduler(scheduler)
    _writable(out, "--out", folder=True)
    dataset = resolve_spec(spec, name=name, families=[f.strip() for f in families.split(",")],
                           sources=_range(sources, int), overlap=overlap, domain=domain, size=_range(size),
                           aspect=aspect, magnetisation=magnetisation, points=points, point_method=point_method,
                           exclude_interiors=exclude_interiors, samples=samples, seed=seed, shard_size=shard_size)
    with _progress_bar("shards") as bar:
        task = bar.add_task(f"generating {dataset.name}", total=None)
        card = run_generate(dataset, out, splits=split or None, scheduler=scheduler, workers=workers,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    say((dataset.name, "bold"), f" -> {out}: {len(card.splits)} split(s), {card.points:,} points; "
                                f"content sha256 {card.content_sha256[:16]}...")


@datasets_app.command("list")
@user_errors
def datasets_list(json_out: Path = _json_option("every dataset, split (samples, points) and cache state")) -> None:
    """The standard datasets, their splits and sizes, and whether a verified copy is cached."""
    from ..datasets import dataset_path, dataset_spec, list_datasets

    _writable(json_out, "--json", folder=False)
    listed = []
    table = Table(title="standard datasets")
    for column in ("name", "splits (samples)", "points/sample", "cached"):
        table.add_column(column)
    for name in list_datasets():
        spec = dataset_spec(name)
        splits = ", ".join(f"{s} ({v.samples:,})" for s, v in spec.splits.items())
        points = {v.points for v in spec.splits.values()}
        cached = (dataset_path(name) / "card.json").is_file()
        table.add_row(name, splits, ",".join(map(str, points)), "yes" if cached else "-")
        listed.append({"name": name, "splits": {s: {"samples": v.samples, "points": v.points, "dim": v.dim}
                                                for s, v in spec.splits.items()},
                       "cached": cached, "path": str(dataset_path(name))})
    console.print(table)
    _write_json(json_out, listed)


@datasets_app.command("get")
@user_errors
def datasets_get(
    name: str = typer.Argument(..., help="Standard dataset name."),
    mirror: str = typer.Option(None, help="Mirror base URL (else $FIELDBENCH_MIRROR or the config file)."),
    cache_dir: Path = typer.Option(None, help="Cache root (else $FIELDBENCH_CACHE or the OS cache folder)."),
    rebuild: bool = typer.Option(True, help="Rebuild locally (and verify) when no mirror is reachable."),
    full_check: bool = typer.Option(False, help="Re-hash every file of a cached copy and check it against the "
                                                "registry again (by default only files whose stamp changed)."),
) -> None:
    """Download a standard dataset from a mirror (sha256-checked) or rebuild it, verified against the registry."""
    from ..datasets import get

    _writable(cache_dir, "--cache-dir", folder=True)
    path = get(name, mirror=mirror, cache_dir=cache_dir, rebuild=rebuild, full_check=full_check)
    say((name, "bold"), f": {path}")


@datasets_app.command("verify")
@user_errors
def datasets_verify(
    path: Path = typer.Argument(..., help="A dataset directory (with card.json)."),
    reference: Path = typer.Option(None, help="A copy identical to the registry: values that are not bit-identical "
                                              "to it are compared elementwise, to float32 rounding."),
) -> None:
    """Re-hash every file against its card, report stray files, and compare a standard dataset with the registry."""
    from ..datasets import verify

    report = verify(path, reference=reference)
    console.print(str(report))
    if not report.ok:
        raise typer.Exit(1)


@datasets_app.command("publish")
@user_errors
def datasets_publish(
    name: str = typer.Argument(..., help="Standard dataset name."),
    to: Path = typer.Option(..., "--to", help="Folder to fill with mirror-ready files."),
) -> None:
    """Write mirror-ready files (serve the folder with any static file server) and print registry lines."""
    from ..datasets import publish

    _writable(to, "--to", folder=True)
    lines = publish(name, to)
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"{len(lines)} files under {to / name}; serve {to} (e.g. `python -m http.server`) and set "
                  "FIELDBENCH_MIRROR to its URL")


@datasets_app.command("register")
@user_errors
def datasets_register(
    name: str = typer.Argument(..., help="Standard dataset name."),
    dataset_dir: Path = typer.Argument(..., help="A complete copy generated from its current spec (e.g. the cached "
                                                 "one); nothing is regenerated."),
) -> None:
    """Write the registry's checksums of a standard dataset from an existing copy (datasets/registry.json)."""
    from ..datasets import register

    console.print(str(register(name, dataset_dir)), highlight=False, soft_wrap=True)


@datasets_app.command("build")
@user_errors
def datasets_build(
    names: list[str] = typer.Argument(None, help="Standard datasets (default: all)."),
    workdir: Path = typer.Option(None, help="Where to generate (WORKDIR/NAME is deleted first; default "
                                            "/tmp/fieldbench-registry-build)."),
) -> None:
    """Regenerate standard datasets from scratch and register them (after a change to a spec or the generator)."""
    from ..datasets import build_registry

    for registration in build_registry(names or None, workdir):
        console.print(str(registration), highlight=False, soft_wrap=True)


@app.command()
@user_errors
def train(
    model: str = typer.Argument(..., help="A baseline (fc-ilr, fc-ilr-bilinear, fourier, fourier-bilinear, "
                                          "fourier-harmonic, fc-inr, linear) or path/file.py:Class."),
    dataset: str = typer.Option("circles2d", help="Standard dataset name or a dataset directory."),
    recipe: str = typer.Option(None, help="two-stage (basis by variable projection, then the hypernetwork in "
                                          "whitened coordinates; models linear in their code) or adam (end to end). "
                                          "Default: the model's own (see README, Training)."),
    config: Path = typer.Option(None, help="JSON file of recipe fields (FitConfig or TrainConfig); options "
                                           "below override it."),
    checkpoint: Path = typer.Option(None, help="Checkpoint path (.eqx) to write. Default: "
                                               "fieldbench-out/checkpoints/<model>-<dataset>[-seed<N>].eqx. An "
                                               "interrupted run resumes from it (same options); a finished one is "
                                               "never replaced: pass --restart to train again over it, or "
                                               "--init-from it with a new --checkpoint to fine-tune it."),
    init_from: Path = typer.Option(None, help="Fine-tune (adam recipe): start from the weights of this checkpoint, "
                                              "of the same model and hyperparameters (--preset), instead of a fresh "
                                              "initialisation, with a new optimiser and the schedule of --steps and "
                                              "--learning-rate; --checkpoint must be another file, and records this "
                                              "one's path and sha256 (training.init_from)."),
    preset: str = typer.Option(None, help="Model sizes: cpu | quick | paper (Table 3)."),
    epochs: int = typer.Option(None, help="two-stage: hypernetwork epochs (whitened stage)."),
    basis_steps: int = typer.Option(None, help="two-stage: variable-projection steps of the basis."),
    steps: int = typer.Option(None, help="adam: optimiser steps."),
    batch_size: int = typer.Option(None, help="Samples per step."),
    learning_rate: list[float] = typer.Option(None, help="adam: schedule rates, repeatable; two-stage: one rate."),
    seed: int = typer.Option(0, help="Seed (initialisation, data order, points)."),
    restart: bool = typer.Option(False, help="Train from scratch (from --init-from's weights if given) and REPLACE "
                                             "an existing --checkpoint and its training state."),
) -> None:
    """Train a model with its recipe (defaults reproduce the shipped baselines); checkpoints and resumes.
    An existing --checkpoint is only ever resumed (an interrupted run, same options): to start over in
    its place pass --restart; to train a finished or shipped checkpoint further, fine-tune it into a
    new file: --recipe adam --init-from OLD.eqx --checkpoint NEW.eqx."""
    from ..models import plan_training

    plan = plan_training(model, dataset, recipe=recipe, config=config, checkpoint=checkpoint, init_from=init_from,
                         preset=preset, epochs=epochs, basis_steps=basis_steps, steps=steps, batch_size=batch_size,
                         learning_rates=learning_rate or (), seed=seed)
    _writable(plan.checkpoint, "--checkpoint", folder=False)  # before training, not at its first checkpoint
    console.print(plan.describe(), highlight=False)

    def report(record):
        console.print("  " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in record.items()), highlight=False, soft_wrap=True)

    result = plan.run(restart=restart, progress=report)
    last = result.history[-1] if result.history else {}
    console.print(f"checkpoint: {result.checkpoint}; {result.seconds:.1f} s; validation: "
                  f"phi {last.get('phi_error', float('nan')):.3g}%, H {last.get('field_error', float('nan')):.3g}%",
                  highlight=False)


@app.command()
@user_errors
def ceiling(
    dataset: str = typer.Argument(..., help="Standard dataset name or a dataset directory (needs a train split)."),
    split: list[str] = typer.Option(["test-single", "test-multi"], help="Splits to score (repeatable)."),
    ranks: str = typer.Option("32,64,128,256,400,1024", help="Code sizes L, comma-separated."),
    points: int = typer.Option(4096, help="Points of the fixed evaluation set P."),
    train_sources: int = typer.Option(8000, help="Training sources whose potentials span the optimal basis."),
    json_out: Path = _json_option("the results"),
) -> None:
    """The rank-L ceiling: Eq. 10 of the best additive model with an L-dimensional code (SVD of exact
    potentials of training sources; held-out samples scored at the same points)."""
    from ..evaluation import ceiling as run_ceiling, ceiling_table

    _writable(json_out, "--json", folder=False)
    try:
        wanted = [int(r) for r in ranks.split(",") if r.strip()]
    except ValueError:
        raise ValueError(f"--ranks must be comma-separated integers, e.g. 32,64,128; got {ranks!r}") from None
    results = [run_ceiling(dataset, name, wanted, points=points, train_sources=train_sources) for name in split]
    show(ceiling_table(results))
    _write_json(json_out, [r.as_dict() for r in results])


@app.command()
@user_errors
def evaluate(
    model: str = typer.Argument(..., help="A reference (exact, fmm, fmm-pure), a baseline name, or "
                                          "path/file.py:Class."),
    dataset: str = typer.Option("circles2d", help="Standard dataset name or a dataset directory."),
    split: list[str] = typer.Option(["test-single", "test-multi", "test-overlap"], help="Splits (repeatable)."),
    checkpoint: Path = typer.Option(None, help="Checkpoint of a learned model."),
    limit: int = typer.Option(None, help="Only the first N samples of each split."),
    json_out: Path = _json_option("every metric of every split"),
) -> None:
    """Score a model on dataset splits with the paper's Eq. 10 metrics (the model never sees targets)."""
    from ..evaluation import evaluate_splits, evaluation_table

    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive number of samples; got {limit}")
    _writable(json_out, "--json", folder=False)
    results = evaluate_splits(model, dataset, split, checkpoint=checkpoint, limit=limit)
    show(evaluation_table(results, f"{model} on {dataset} (median relative error, %)"))
    _write_json(json_out, [result.as_dict() for result in results])


@app.command()
@user_errors
def submit(
    model: str = typer.Argument(..., help="exact | fmm | fmm-pure | a baseline name | path/file.py:Class"),
    name: str = typer.Option(..., help="Leaderboard name."),
    checkpoint: list[Path] = typer.Option(None, help="Checkpoint of a learned model; repeat it for one checkpoint "
                                                     "per seed (the record then holds mean +- std over seeds)."),
    dataset: list[str] = typer.Option(None, help="Standard datasets (default: the training dataset, or all)."),
    records: Path = typer.Option(Path("leaderboard/records"), help="Records folder."),
    scaling: bool = typer.Option(True, help="Run the runtime-scaling measurement for the record."),
    replace: bool = typer.Option(False, help="Overwrite an existing record of this name."),
) -> None:
    """Evaluate on all test splits, measure scaling, and write a validated result record."""
    from ..leaderboard import submit_measured

    _writable(records, "--records", folder=True)
    paths = submit_measured(model, name, checkpoints=checkpoint or (), datasets=dataset or None, directory=records,
                            scaling=scaling, replace=replace, say=lambda text: say((text, "dim")))
    for path in paths:
        console.print(f"record: {path}")


@leaderboard_app.callback()
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

    _writable(out or records.parent, "--out", folder=True)
    paths = render(records, out)
    console.print(f"rendered {paths['readme']} and {paths['html']}")


@leaderboard_app.command("verify")
@user_errors
def leaderboard_verify(
    ctx: typer.Context,
    records: Path = typer.Option(None, help="Records folder (default: the group's --records, else "
                                            "leaderboard/records)."),
    rescore: bool = typer.Option(False, help="Also re-evaluate every metric and seed value (counts exact, errors "
                                             "within 1e-3 relative) and re-time the speed and short scaling rows "
                                             "(within 3x, on the same device only)."),
    allow_limited: bool = typer.Option(False, help="Accept records scored on only the first N samples of each "
                                                   "split (local results; the board lists them apart)."),
) -> None:
    """Validate every record: schema, content digest (catches any edit by hand), registry checksums,
    checkpoint hashes, flags and parameter count re-derived from the checkpoint, duplicates, ranges."""
    from ..leaderboard import load_records, verify_records

    records = _records_folder(ctx, records)
    problems = verify_records(records, rescore=rescore, allow_limited=allow_limited)
    _print_problems(problems)
    if problems:
        raise typer.Exit(1)
    console.print(f"{len(load_records(records))} record(s) valid")


@leaderboard_app.command("migrate")
@user_errors
def leaderboard_migrate(
    ctx: typer.Context,
    records: Path = typer.Option(None, help="Records folder (default: the group's --records, else "
                                            "leaderboard/records)."),
) -> None:
    """Upgrade version-1 records: rescore each (as verify --rescore) and only if every number is
    reproduced, time it warm and stamp its content digest. Current records are never rewritten."""
    from ..leaderboard import migrate_records

    records = _records_folder(ctx, records)
    _writable(records, "--records", folder=True)
    written, problems = migrate_records(records)
    _print_problems(problems)
    console.print(f"upgraded {len(written)} record(s)" + "".join(f"\n  {path}" for path in written))
    if problems:
        raise typer.Exit(1)


def _records_folder(ctx: typer.Context, records: Path | None) -> Path:
    return records or (ctx.obj or {}).get("records") or Path("leaderboard/records")


def _print_problems(problems) -> None:
    for problem in problems:
        say(("problem: ", "red"), str(problem))


@app.command()
@user_errors
def benchmark(out: Path = typer.Option(Path("fieldbench-out/benchmark"), help="Output folder.")) -> None:
    """The main job: mini datasets, shipped checkpoints, all test splits, quick scaling, the leaderboard page."""
    _writable(out, "--out", folder=True)
    _benchmark(out)


def _benchmark(out: Path) -> None:
    from ..leaderboard import benchmark_tables, run_benchmark

    result = run_benchmark(out, say=lambda text: say((text, "dim")))
    for table in benchmark_tables(result):
        show(table)
    console.print(f"leaderboard page: {result.page}  ({result.seconds:.0f} s)")


@app.command("scaling")
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

    _writable(out, "--out", folder=True)
    result = scaling_study(out, [m.strip() for m in methods.split(",") if m.strip()], checkpoints=checkpoint or (),
                           preset=preset, sizes_m=tuple(float(s) for s in sizes.split(",")),
                           n_equals_m=n_fixed is None, n_fixed=n_fixed, m_fixed=m_fixed, family=family,
                           points_inside=points_inside, time_budget=time_budget, repeats=repeats,
                           progress=lambda row: say((str(row), "dim")))
    console.print(result.to_table("markdown"))
    console.print(result.slope_table("markdown"))
    console.print(f"device: {result.environment.get('device', '')}; written to {out}")


@bench_app.command("training")
@user_errors
def bench_training(
    preset: str = typer.Option("paper", help="paper (Table 3 sizes) | quick."),
    model: list[str] = typer.Option(["fourier", "fc-ilr", "fc-inr", "linear"], help="Models (repeatable)."),
    repeats: int = typer.Option(5, help="Timed steps (best kept)."),
    json_out: Path = _json_option("every measurement of every model and the device"),
) -> None:
    """One Adam training step per baseline (batch 100 x 1024 shared points), against the paper's code."""
    from .._tables import training_step_table
    from ..bench import device_description
    from ..models._speed import training_step_speed

    _writable(json_out, "--json", folder=False)
    with console.status("timing training steps (compilation excluded)..."):
        rows = training_step_speed(tuple(model), preset=preset, repeats=repeats)
    show(training_step_table(rows, device_description()))
    _write_json(json_out, {"device": device_description(), "results": rows})
