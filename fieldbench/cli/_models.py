"""The modelling commands: demo, train, evaluate and ceiling."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ._common import check_writable, console, json_option, say, show, user_errors, write_json


@user_errors
def demo(
    out: Path = typer.Option(Path("fieldbench-out"), help="Folder for the PNG."),
    seed: int = typer.Option(7, help="Seed of the random configuration."),
) -> None:
    """Compute and plot the exact potential and field of a few discs and prisms; cross-check with magpylib."""
    check_writable(out, "--out", folder=True)
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


@user_errors
def train(
    model: str = typer.Argument(..., help="A baseline's name (README, Models; an unknown name is answered "
                                          "with the list) or path/file.py:Class."),
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
    check_writable(plan.checkpoint, "--checkpoint", folder=False)  # before training, not at its first checkpoint
    console.print(plan.describe(), highlight=False)

    def report(record):
        console.print("  " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in record.items()), highlight=False, soft_wrap=True)

    result = plan.run(restart=restart, progress=report)
    last = result.history[-1] if result.history else {}
    console.print(f"checkpoint: {result.checkpoint}; {result.seconds:.1f} s; validation: "
                  f"phi {last.get('phi_error', float('nan')):.3g}%, H {last.get('field_error', float('nan')):.3g}%",
                  highlight=False)


@user_errors
def ceiling(
    dataset: str = typer.Argument(..., help="Standard dataset name or a dataset directory (needs a train split)."),
    split: list[str] = typer.Option(["test_single", "test_multi"],
                                    help="Splits to score (repeatable; test-multi means test_multi)."),
    ranks: str = typer.Option("32,64,128,256,400,1024", help="Code sizes L, comma-separated."),
    points: int = typer.Option(4096, help="Points of the fixed evaluation set P."),
    train_sources: int = typer.Option(8000, help="Training sources whose potentials span the optimal basis."),
    field: bool = typer.Option(False, help="Also the field's ceiling: the best rank-L space for potential and "
                                           "field together (an SVD of the stacked vectors; minutes at the defaults)."),
    json_out: Path = json_option("the results"),
) -> None:
    """The rank-L ceiling: Eq. 10 of the best additive model with an L-dimensional code (SVD of exact
    potentials of training sources; held-out samples scored at the same points)."""
    from ..evaluation import ceiling as run_ceiling, ceiling_table

    check_writable(json_out, "--json", folder=False)
    try:
        wanted = [int(r) for r in ranks.split(",") if r.strip()]
    except ValueError:
        raise ValueError(f"--ranks must be comma-separated integers, e.g. 32,64,128; got {ranks!r}") from None
    results = [run_ceiling(dataset, name, wanted, points=points, train_sources=train_sources, field=field)
               for name in split]
    show(ceiling_table(results))
    write_json(json_out, [r.as_dict() for r in results])


#: The splits ``evaluate`` scores a model on when no --split is given.
EVALUATE_SPLITS = ("test_single", "test_multi", "test_overlap")


@user_errors
def evaluate(
    model: str = typer.Argument(None, help="A reference (exact, fmm, fmm-dipole, fmm-pure), a baseline name, or "
                                           "path/file.py:Class. Omit it with --predictions."),
    dataset: str = typer.Option("circles2d", help="Standard dataset name or a dataset directory."),
    split: list[str] = typer.Option(None, help="Splits (repeatable; test-multi means test_multi). Default: "
                                               "test_single, test_multi, test_overlap; with --predictions, every "
                                               "split in the file."),
    checkpoint: Path = typer.Option(None, help="Checkpoint of a learned model."),
    predictions: Path = typer.Option(None, help="Score precomputed predictions instead of a model: an .npz "
                                                "(numpy.savez) with <split>/phi (samples, points) and <split>/H "
                                                "(samples, points, dim) per split, or phi and H for the one "
                                                "--split; flat (samples*points[, dim]) arrays work too. Values "
                                                "at the points of fieldbench.datasets.load(dataset, split), in "
                                                "its order (docs/evaluation_input.md)."),
    limit: int = typer.Option(None, help="Only the first N samples of each split (with --predictions, the file "
                                         "holds those N)."),
    json_out: Path = json_option("every metric of every split"),
) -> None:
    """Score a model on dataset splits with the paper's Eq. 10 metrics (the model never sees targets),
    or score precomputed predictions from any framework: --predictions FILE.npz, no model."""
    from ..evaluation import evaluate_prediction_file, evaluate_splits, evaluation_table

    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive number of samples; got {limit}")
    if predictions is not None and model is not None:
        raise ValueError(f"give a model ({model}) or --predictions {predictions}, not both")
    if predictions is None and model is None:
        raise ValueError("name a model to score (e.g. fieldbench evaluate exact), or pass --predictions FILE.npz")
    if predictions is not None and checkpoint is not None:
        raise ValueError("--checkpoint belongs to a model; --predictions needs none: drop --checkpoint")
    check_writable(json_out, "--json", folder=False)
    if predictions is not None:
        results = evaluate_prediction_file(predictions, dataset, split or None, limit=limit)
        title = f"{predictions.name} on {dataset} (median relative error, %)"
    else:
        results = evaluate_splits(model, dataset, split or list(EVALUATE_SPLITS), checkpoint=checkpoint, limit=limit)
        title = f"{model} on {dataset} (median relative error, %)"
    show(evaluation_table(results, title))
    write_json(json_out, [result.as_dict() for result in results])
