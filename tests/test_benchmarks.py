"""Smoke test of the asv benchmark suite (benchmarks/, asv.conf.json; docs/benchmarks.md).

A benchmark broken by a change to fieldbench should fail here, in CI, rather than silently in the
nightly job. ``asv check`` imports the suite and validates every benchmark; ``asv run --quick``
then runs each benchmark (and each parameter combination) exactly once against this environment
(``--python=same``) without writing results (``--dry-run``). Budget: ~3 minutes on 2 cores.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("time_", "peakmem_", "track_", "mem_", "timeraw_")


def _asv(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asv", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _declared_benchmarks() -> set[str]:
    """module.Class.method (or module.function) of every benchmark, read from the sources."""
    names = set()
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith(PREFIXES):
                names.add(f"{path.stem}.{node.name}")
            if isinstance(node, ast.ClassDef):
                names.update(f"{path.stem}.{node.name}.{item.name}" for item in node.body
                             if isinstance(item, ast.FunctionDef) and item.name.startswith(PREFIXES))
    return names


@pytest.fixture(scope="module")
def asv_env(tmp_path_factory) -> dict:
    pytest.importorskip("asv", reason="asv is in the dev extra: pip install -e '.[dev]'")
    env = dict(os.environ)
    if "FIELDBENCH_CACHE" not in env:  # keep the usual dataset cache although HOME moves
        import platformdirs

        env["FIELDBENCH_CACHE"] = platformdirs.user_cache_dir("fieldbench")
    # asv keeps its machine description in ~/.asv-machine.json: use a private HOME for it.
    env["HOME"] = str(tmp_path_factory.mktemp("asv-home"))
    env.pop("ASV_ENV_DIR", None)
    machine = _asv(["machine", "--yes"], env, timeout=120)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    return env


def test_declared_benchmarks_cover_the_suite():
    names = _declared_benchmarks()
    for expected in ("physics.DirectSum.time_direct_sum", "physics.DirectSum.peakmem_direct_sum",
                     "physics.PotentialAndField.time_potential_and_field",
                     "physics.MagpylibAgreement.track_max_relative_deviation", "pipeline.Generate.time_generate",
                     "pipeline.Load.time_load", "training.TrainStep.time_train_step", "models.Encode.time_encode",
                     "models.Evaluate.time_evaluate", "models.FMM.time_fmm",
                     "models.ScalingInputs.time_scaling_configuration",
                     "accuracy.CheckpointError.track_phi_error", "accuracy.CheckpointError.track_field_error"):
        assert expected in names


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_benchmark_runs_once(asv_env):
    check = _asv(["check", "--python=same"], asv_env, timeout=300)
    assert check.returncode == 0 and "No problems found" in check.stdout, check.stdout + check.stderr

    run = _asv(["run", "--python=same", "--quick", "--dry-run", "--show-stderr"], asv_env, timeout=1500)
    output = run.stdout + run.stderr
    failed = [line.strip() for line in output.splitlines() if re.search(r"\bfailed\b", line)]
    assert run.returncode == 0 and not failed, "\n".join(failed) + "\n\n" + output[-20000:]
    missing = sorted(name for name in _declared_benchmarks() if name not in output)
    # asv shortens long names in its progress lines ("...gpylibAgreement.track_max_..."): match the tail.
    missing = [name for name in missing if name.split(".", 1)[1][-30:] not in output]
    assert not missing, f"benchmarks that did not run: {missing}\n\n{output[-20000:]}"


# -- a broken benchmark fails; only a missing optional dependency may skip ------------------------------

#: Run in a fresh process: ``benchmarks._env`` pins threads and devices through the environment at
#: import, which must not leak into this test session. Each check prints "name: outcome".
_BROKEN_SETUPS = r"""
import pathlib, tempfile
import fieldbench.datasets, fieldbench.physics
from benchmarks import _env, accuracy, physics

def outcome(name, call):
    try:
        call()
        print(f"{name}: no error")
    except Exception as error:  # noqa: BLE001 -- reported to the test
        print(f"{name}: {type(error).__name__}: {error}")

def broken(*args, **kwargs):
    raise RuntimeError("broken on purpose")

real_get = fieldbench.datasets.get
fieldbench.datasets.get = broken
outcome("dataset", lambda: accuracy.CheckpointError().setup_cache())
fieldbench.datasets.get = lambda *args, **kwargs: None
accuracy.checkpoint_folder = lambda: pathlib.Path(tempfile.mkdtemp())
outcome("checkpoint", lambda: accuracy.CheckpointError().setup_cache())
def wrong_call(*args, **kwargs):
    raise TypeError("direct_sum() got an unexpected keyword argument")
fieldbench.physics.direct_sum = wrong_call
outcome("direct_sum", lambda: physics._direct_sum_case("disc", "100x1000"))
"""


def test_a_broken_benchmark_setup_raises_instead_of_skipping():
    """asv reports a NotImplementedError in setup as "n/a" (skipped), which the smoke test below
    cannot tell from success: a failing dataset, a missing shipped checkpoint or a broken solver
    call must raise their own error instead."""
    run = subprocess.run([sys.executable, "-c", _BROKEN_SETUPS], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    outcomes = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    assert outcomes["dataset"] == "RuntimeError: broken on purpose", run.stdout
    assert outcomes["checkpoint"].startswith("FileNotFoundError: ") and "SHIPPED" in outcomes["checkpoint"], run.stdout
    assert outcomes["direct_sum"].startswith("TypeError: direct_sum()"), run.stdout


def test_shipped_checkpoints_are_the_ones_the_accuracy_benchmark_declares():
    """Pairs without a checkpoint are skipped by declaration (asv's skip_params), not by an error."""
    tree = ast.parse((ROOT / "benchmarks" / "accuracy.py").read_text())
    values = {node.targets[0].id: node.value for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    models, datasets, shipped = (ast.literal_eval(values[name]) for name in ("MODELS", "DATASETS", "SHIPPED"))
    on_disk = {(model, dataset) for model in models for dataset in datasets
               if (ROOT / "fieldbench" / "models" / "checkpoints" / f"{model}-{dataset}-seed0.eqx").is_file()}
    assert shipped == on_disk
    assert "skip_params = [" in (ROOT / "benchmarks" / "accuracy.py").read_text()
