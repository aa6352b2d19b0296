"""Environment of every benchmark process: pinned thread counts and where the repository's data is.

Import this module FIRST in every benchmark module (before JAX, NumPy or fieldbench): XLA reads
``XLA_FLAGS`` and fieldbench reads ``FIELDBENCH_CPU_DEVICES`` when they are first imported, and
the BLAS/OpenMP runtimes read their variables when they load. asv runs every benchmark in a fresh
process (``"launch_method": "spawn"`` in asv.conf.json), so setting them here always takes effect.

Thread pinning (docs/benchmarks.md, "Pitfalls"): every benchmark runs on ONE core.

* ``FIELDBENCH_CPU_DEVICES=1``: fieldbench otherwise asks JAX for one CPU device per core
  and splits direct sums across them, so timings would depend on the runner's core count.
* ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``: XLA's CPU
  backend runs its Eigen kernels (matmuls of the learned models) on one thread.
* ``OMP_NUM_THREADS=1`` (pyfmmlib's OpenMP FMM), ``OPENBLAS_NUM_THREADS=1``,
  ``MKL_NUM_THREADS=1`` (NumPy's BLAS).
* Dataset generation uses Dask's threaded scheduler with ``workers=1`` (bench_pipeline).

One thread is the choice that makes a number comparable between a laptop, this project's 2-core
machines and a 4-core CI runner, and that is least disturbed by other work on a shared machine;
multi-core scaling of the direct sum is measured by ``fieldbench bench solvers`` instead.
Set ``FIELDBENCH_ASV_THREADS=N`` to pin to N threads/devices instead (results are then not
comparable with the published history).

Data: the dataset specs and the registry are package data (``fieldbench/datasets/standard/``), in
the wheel that asv installs into its own virtualenvs as in an editable install (``--python=same``).
Commits from before that kept them in the repository's ``datasets/`` folder, which their wheels
lack: for those, ``FIELDBENCH_REGISTRY`` is pointed at the checkout of the commit being measured
(``$ASV_ENV_DIR/project/datasets``). Datasets are cached per environment.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

THREADS = max(1, int(os.environ.get("FIELDBENCH_ASV_THREADS", "1")))

#: The directory holding this benchmark suite's repository (asv.conf.json, baselines/, fieldbench/).
SUITE_ROOT = Path(__file__).resolve().parents[1]


def _pin_threads() -> None:
    count = str(THREADS)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                 "NUMEXPR_NUM_THREADS"):
        os.environ[name] = count
    os.environ["FIELDBENCH_CPU_DEVICES"] = count
    flags = os.environ.get("XLA_FLAGS", "")
    # Drop any thread or device-count setting from the caller's flags, then add ours.
    flags = re.sub(r"(--)?(xla_cpu_multi_thread_eigen|intra_op_parallelism_threads|"
                   r"xla_force_host_platform_device_count)=\S*", "", flags)
    pinned = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if THREADS == 1 else ""
    os.environ["XLA_FLAGS"] = " ".join(f"{flags} {pinned}".split())


def measured_checkout() -> Path:
    """The source tree of the commit being measured: asv's checkout in its environment, else this
    suite's repository (``--python=same`` measures the working tree)."""
    env_dir = os.environ.get("ASV_ENV_DIR")
    if env_dir and (Path(env_dir) / "project" / "pyproject.toml").is_file():
        return Path(env_dir) / "project"
    return SUITE_ROOT


def _point_at_data() -> None:
    if "FIELDBENCH_REGISTRY" not in os.environ:
        spec = importlib.util.find_spec("fieldbench")  # locates the package without importing it
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        # The package data of this commit, or (an older commit installed editable) the checkout's
        # datasets/ next to it; its registry.json tells it from site-packages/datasets, HF's package.
        shipped = origin is not None and ((origin.parent / "datasets" / "standard").is_dir()
                                          or (origin.parents[1] / "datasets" / "registry.json").is_file())
        if not shipped:
            registry = measured_checkout() / "datasets"
            if registry.is_dir():
                os.environ["FIELDBENCH_REGISTRY"] = str(registry)
    env_dir = os.environ.get("ASV_ENV_DIR")
    if "FIELDBENCH_CACHE" not in os.environ and env_dir and (Path(env_dir) / "project").is_dir():
        os.environ["FIELDBENCH_CACHE"] = str(Path(env_dir) / "fieldbench-cache")
    os.environ.setdefault("FIELDBENCH_MIRROR", "")  # never reach for the network: rebuild locally


_pin_threads()
_point_at_data()


def _settle_arrow_at_exit() -> None:
    """Work around an abort at interpreter exit after pyarrow reads Parquet from a Python file
    object, which ``fieldbench.datasets.load`` does (``pq.read_table(fs.open(...))``): pyarrow's
    leftover cleanup races interpreter finalisation and ~5% of such processes die with "terminate
    called without an active exception" (exit 134) AFTER their work is done (apache/arrow#33975,
    #50482; pyarrow 26.0.1 here). asv would record a finished benchmark as failed. Collecting
    garbage and yielding briefly in an exit handler, while the interpreter is still whole, avoided
    it (pipeline.Load through asv's runner: 0 aborts in 60 runs; 1 in 12 without). Reading from a
    buffer did not cure it; fieldbench.datasets._load now registers the same handler itself, and
    this one stays for measured commits from before.
    """
    import sys

    if "pyarrow" in sys.modules:
        import gc
        import time

        gc.collect()
        time.sleep(0.05)


import atexit  # noqa: E402

atexit.register(_settle_arrow_at_exit)
