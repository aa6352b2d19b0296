"""Benchmark (not a test): wall time of one Adam training step per baseline.

One step is exactly what :func:`fieldbench.models.train` runs with its default ``points="shared"``:
``make_step`` (jitted loss, gradient and Adam update) on a batch of ``batch_size`` single-source
configurations and ONE set of ``points`` evaluation points shared by the batch, so linear-in-code
models (Fourier, FC+ILR, Linear) take the basis-once path of ``LinearBasisModel.evaluate``.
Compilation is timed separately and excluded; every timed call ends in ``jax.block_until_ready``.

The reference figures are the paper code's training steps (batch 100 x 1024 points, paper sizes):
3.36 s per step for FC+ILR and 5.44 s for Fourier. They are constants, measured once on this kind
of machine with 2 CPU cores: the paper's code (cmt-dtu-energy/hypermagnetics) is not on PyPI, so
it cannot be installed and run beside the suite in the same run. Every row says so
(``paper_code_source``), and the speed-up is only called comparable, and judged against the
target, when this run had the same number of CPU cores (``PAPER_CODE_CORES``); on another core
count it is reported as not comparable. The target is a 40x speed-up, i.e. <= 84 ms (FC+ILR) and
<= 136 ms (Fourier).

Run ``python -m fieldbench.models._speed`` for the table (paper and quick presets).

:func:`evaluation_speed` is the leaderboard's "eval us/point": the evaluator's own call, timed warm
(one warm-up call excluded), on the device that :func:`timing_device` labels.
"""

from __future__ import annotations

import os
import statistics
import time

import equinox as eqx
import jax
import numpy as np
import optax

from ..pipeline import canonical_split

__all__ = ["PAPER_CODE_SECONDS", "PAPER_CODE_CORES", "TARGET_SPEEDUP", "training_step_speed",
           "step_breakdown", "evaluation_speed", "timing_device", "main"]

#: The paper code's seconds per training step (batch 100, 1024 points, paper sizes): constants,
#: measured once with PAPER_CODE_CORES CPU cores (the paper's code cannot be installed here).
PAPER_CODE_SECONDS = {"fc-ilr": 3.36, "fourier": 5.44}
PAPER_CODE_CORES = 2
PAPER_CODE_SOURCE = (f"constant: the paper's public code, measured once on a {PAPER_CODE_CORES}-core CPU of this "
                     "machine (not installable here, so not rerun)")

TARGET_SPEEDUP = 40.0


def _batch(batch_size: int, points: int, seed: int, length_scale: float = 3.0):
    """A training batch like ``_train._Data.batch`` draws: single discs of radius 1 in [-3, 3]^2,
    N(0, 1) magnetisations, shared uniform points, exact float32 targets."""
    import jax.numpy as jnp

    from ..physics import potential_and_field_batched
    from ..sources import Family, SourceBatch
    from ._protocol import source_features

    rng = np.random.default_rng(seed)
    family = np.full((batch_size, 1), int(Family.DISC), np.int8)
    centers = rng.uniform(-length_scale, length_scale, (batch_size, 1, 2))
    magnetisations = rng.normal(size=(batch_size, 1, 2))
    sizes = np.full((batch_size, 1, 2), 2.0)
    mask = np.ones((batch_size, 1), bool)
    shared = rng.uniform(-length_scale, length_scale, (points, 2)).astype(np.float32).astype(np.float64)
    phi, field = potential_and_field_batched(SourceBatch(family, centers, magnetisations, sizes, mask), shared)
    features = source_features(jnp.asarray(family), jnp.asarray(centers, jnp.float32),
                               jnp.asarray(magnetisations, jnp.float32), jnp.asarray(sizes, jnp.float32), length_scale)
    # Through NumPy, as training does: the solver's outputs are sharded over the CPU devices.
    return (features, jnp.asarray(mask), jnp.asarray(shared, jnp.float32), jnp.asarray(np.asarray(phi), jnp.float32),
            jnp.asarray(np.asarray(field), jnp.float32))


def _parameters(model) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))


def training_step_speed(models=("fourier", "fc-ilr", "fc-inr", "linear"), preset: str = "paper",
                        batch_size: int = 100, points: int = 1024, repeats: int = 5, *, seed: int = 0,
                        learning_rate: float = 1e-3) -> list[dict]:
    """Time one Adam training step per model; one dict per model.

    Keys: model, preset, parameters, batch_size, points, compile_s (first call, compile included),
    step_ms (median wall time of ``repeats`` timed steps), step_ms_min, cpu_ms (median CPU time of
    the process per step, all threads: on a machine shared with other work, wall time inflates and
    this does not), loss, and, for models with a paper-code
    figure, paper_code_s, target_ms (= paper_code_s / 40), speedup (paper_code_s / step) and
    meets_target.
    """
    from ._registry import build_model
    from ._train import make_step

    if repeats < 1:
        raise ValueError(f"repeats must be positive; got {repeats}")
    batch = _batch(batch_size, points, seed)
    from ..bench import usable_cores

    cores = usable_cores()
    rows = []
    for name in models:
        model, _ = build_model(name, preset=preset, length_scale=3.0, seed=seed)
        optimizer = optax.adam(learning_rate)
        opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
        step = make_step(optimizer, 1.0)
        started = time.perf_counter()
        model, opt_state, loss = jax.block_until_ready(step(model, opt_state, *batch))
        compile_s = time.perf_counter() - started
        times, cpu = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            model, opt_state, loss = jax.block_until_ready(step(model, opt_state, *batch))
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        row = {"model": name, "preset": preset, "parameters": _parameters(model), "batch_size": batch_size,
               "points": points, "compile_s": compile_s, "step_ms": 1e3 * statistics.median(times),
               "step_ms_min": 1e3 * min(times), "cpu_ms": 1e3 * statistics.median(cpu), "loss": float(loss)}
        if name in PAPER_CODE_SECONDS and preset == "paper" and (batch_size, points) == (100, 1024):
            paper = PAPER_CODE_SECONDS[name]
            comparable = cores == PAPER_CODE_CORES
            row |= {"paper_code_s": paper, "paper_code_source": PAPER_CODE_SOURCE, "paper_code_cores": PAPER_CODE_CORES,
                    "cores": cores, "comparable": comparable, "target_ms": 1e3 * paper / TARGET_SPEEDUP,
                    "speedup": paper / (row["step_ms"] / 1e3),
                    "meets_target": row["step_ms"] <= 1e3 * paper / TARGET_SPEEDUP if comparable else None}
        rows.append(row)
    return rows


def step_breakdown(name: str, preset: str = "paper", batch_size: int = 100, points: int = 1024,
                   repeats: int = 5, *, seed: int = 0) -> dict:
    """Where a step's time goes (median ms of each jitted part, compile excluded): the hypernetwork
    forward (codes), the forward pass (codes + potential + field), the loss with its gradient, and
    the whole step (gradient + Adam update). For linear-in-code models also the basis with its
    gradient (``basis_and_gradient``, computed once per batch on shared points)."""
    import jax.numpy as jnp

    from ._protocol import LinearBasisModel
    from ._registry import build_model
    from ._train import loss_fn, make_step

    features, mask, shared, phi, field = _batch(batch_size, points, seed)
    model, _ = build_model(name, preset=preset, length_scale=3.0, seed=seed)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    parts = {
        "codes": eqx.filter_jit(lambda m: m.code_from_features(features, mask)),
        "forward": eqx.filter_jit(lambda m: m.evaluate(m.code_from_features(features, mask), shared)),
        "loss_and_grad": eqx.filter_jit(lambda m: eqx.filter_value_and_grad(loss_fn)(m, features, mask, shared, phi,
                                                                                      field)),
    }
    if isinstance(model, LinearBasisModel):
        parts["basis_and_gradient"] = eqx.filter_jit(lambda m: m.basis_and_gradient(jnp.asarray(shared)))
    step = make_step(optimizer, 1.0)
    parts["step"] = lambda m: step(m, opt_state, features, mask, shared, phi, field)
    out = {"model": name, "preset": preset}
    for part, function in parts.items():
        jax.block_until_ready(function(model))
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            jax.block_until_ready(function(model))
            times.append(time.perf_counter() - started)
        out[part + "_ms"] = 1e3 * statistics.median(times)
    return out


def timing_device() -> dict:
    """The device a timing ran on. ``label`` is what the board prints and compares: timings under two
    labels are never compared. It names JAX's first device (where jitted code runs; on CPU the
    processor model, threads and JAX device count, which change what the solvers can spread over)
    and, for an accelerator, the host's CPU count (encoding and transfers run there)."""
    from ..bench import device_description

    device = jax.devices()[0]
    label = device_description()
    if device.platform != "cpu":
        label += f", host with {os.cpu_count()} CPUs"
    return {"label": label, "platform": device.platform, "kind": device.device_kind, "devices": len(jax.devices()),
            "cpu_count": os.cpu_count()}


def evaluation_speed(predictor, dataset: str, split: str = "test_multi", *, samples: int = 64,
                     repeats: int = 5) -> dict:
    """Warm evaluation time per point of ``predictor``: the evaluator's call (``encode`` then
    ``evaluate``, jitted for equinox models, exactly as ``evaluate`` scores) on the first ``samples``
    samples of ``split`` (the evaluator's batch size).

    The first call is a warm-up and is excluded: it traces and compiles the shapes and pays the
    first dispatch, which is not the model's speed (it inflated the old figure, taken from the whole
    evaluation's wall time, 3-7x for small models). Then ``repeats`` timed calls, each ended by
    ``jax.block_until_ready``; ``eval_us_per_point`` is the best of them (the least disturbed by other
    work on a shared machine), ``median_us_per_point`` their median.
    """
    from ..datasets import iter_batches
    from ..evaluation._evaluate import predict
    from ..sources import SourceBatch

    if repeats < 1 or samples < 1:
        raise ValueError(f"samples and repeats must be positive; got samples={samples}, repeats={repeats}")
    arrays = next(iter_batches(dataset, split, samples, as_jax=False))
    batch = SourceBatch(*(arrays[key] for key in ("family", "centers", "magnetisations", "sizes", "mask")))
    points = arrays["points"]

    def call():
        return jax.block_until_ready(predict(predictor, batch, points))

    call()  # warm-up: tracing, compilation, first dispatch
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    count = int(points.shape[0] * points.shape[1])
    return {"eval_us_per_point": 1e6 * min(times) / count,
            "median_us_per_point": 1e6 * statistics.median(times) / count,
            "split": canonical_split(split),
            "samples": int(points.shape[0]), "points": count, "repeats": repeats, "warmup_calls": 1,
            "device": timing_device()}


def _table(rows: list[dict]) -> str:
    lines = [f"{'model':<10} {'preset':<6} {'params':>10} {'compile s':>9} {'step ms':>9} {'min ms':>8} {'cpu ms':>8} "
             f"{'paper s':>8} {'target ms':>9} {'speed-up':>9}  ok"]
    for r in rows:
        paper = (f"{r['paper_code_s']:>8.2f} {r['target_ms']:>9.0f} {r['speedup']:>8.0f}x  "
                 f"{'yes' if r['meets_target'] else 'NO'}") if "paper_code_s" in r else f"{'-':>8} {'-':>9} {'-':>9}"
        lines.append(f"{r['model']:<10} {r['preset']:<6} {r['parameters']:>10,} {r['compile_s']:>9.2f} "
                     f"{r['step_ms']:>9.1f} {r['step_ms_min']:>8.1f} {r['cpu_ms']:>8.1f} {paper}")
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fourier", "fc-ilr", "fc-inr", "linear"])
    parser.add_argument("--presets", nargs="+", default=["paper", "quick"])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true", help="also time the parts of each step")
    args = parser.parse_args(argv)
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device: {jax.devices()[0]} ({len(jax.devices())} device(s), {os.cpu_count()} CPUs, load average "
          f"{load:.1f}); batch {args.batch_size} x {args.points} shared points; median of {args.repeats} steps, "
          "compile excluded")
    rows = []
    for preset in args.presets:
        rows += training_step_speed(args.models, preset, args.batch_size, args.points, args.repeats)
    print(_table(rows))
    if args.breakdown:
        for preset in args.presets:
            for name in args.models:
                parts = step_breakdown(name, preset, args.batch_size, args.points, args.repeats)
                print(", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
