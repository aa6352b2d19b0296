"""The `fieldbench` app assembled: the root callback and every command, registered here in the
order `--help` lists them (Typer lists commands in registration order)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._bench import bench_datasets, bench_solvers, bench_training
from ._board import (
    benchmark,
    leaderboard,
    leaderboard_migrate,
    leaderboard_verify,
    run_benchmark_job,
    scaling_command,
    submit,
)
from ._common import app, bench_app, datasets_app, leaderboard_app, print_version
from ._data import (
    datasets_build,
    datasets_get,
    datasets_list,
    datasets_migrate,
    datasets_publish,
    datasets_register,
    datasets_verify,
    generate,
)
from ._models import ceiling, demo, evaluate, train


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True, help="Print the version."),
) -> None:
    """Run with no command for the main job on its embedded defaults: `benchmark`."""
    if ctx.invoked_subcommand is None:
        run_benchmark_job(Path("fieldbench-out/benchmark"))


for command in (demo, generate, train, ceiling, evaluate, submit, benchmark):
    app.command()(command)
app.command("scaling")(scaling_command)

bench_app.command("solvers")(bench_solvers)
bench_app.command("datasets")(bench_datasets)
bench_app.command("training")(bench_training)

datasets_app.command("list")(datasets_list)
datasets_app.command("get")(datasets_get)
datasets_app.command("verify")(datasets_verify)
datasets_app.command("migrate")(datasets_migrate)
datasets_app.command("publish")(datasets_publish)
datasets_app.command("register")(datasets_register)
datasets_app.command("build")(datasets_build)

leaderboard_app.callback()(leaderboard)
leaderboard_app.command("verify")(leaderboard_verify)
leaderboard_app.command("migrate")(leaderboard_migrate)

__all__ = ["app"]
