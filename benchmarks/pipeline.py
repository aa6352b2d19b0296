"""The dataset pipeline: generating the mini standard dataset to Parquet, and loading it back."""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

import shutil
import tempfile
from pathlib import Path

from ._data import memo

DATASET = "circles2d-mini"
#: Dask's threaded scheduler with one worker: the generator's own code path, on one core (_env).
WORKERS = 1


def _generate(root: Path) -> None:
    from fieldbench.datasets import dataset_spec
    from fieldbench.pipeline import generate

    generate(dataset_spec(DATASET), str(root), workers=WORKERS)


def _warm_up() -> bool:
    """One full generation, discarded: compiles the solver for the dataset's shapes and imports
    Dask and pyarrow, so the timed generations measure the pipeline, not JIT compilation."""
    scratch = Path(tempfile.mkdtemp(prefix="fieldbench-asv-warmup-"))
    try:
        _generate(scratch / DATASET)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return True


class Generate:
    """``fieldbench.pipeline.generate`` of circles2d-mini (5 splits x 48 samples x 1024 points,
    exact float64 targets, Parquet shards, card and checksums) into a fresh directory per call."""

    number = 1  # one generation per sample: each one writes a new directory
    timeout = 300

    def setup(self):
        memo("generate-warm-up", _warm_up)
        self.scratch = Path(tempfile.mkdtemp(prefix="fieldbench-asv-generate-"))
        self.calls = 0

    def teardown(self):
        shutil.rmtree(self.scratch, ignore_errors=True)

    def time_generate(self):
        self.calls += 1
        _generate(self.scratch / f"{DATASET}-{self.calls}")


class Load:
    """``fieldbench.datasets.load(path, split)``: a whole split of circles2d-mini from Parquet into
    NumPy arrays (``test_multi`` pads 2-8 sources per sample)."""

    params = ["train", "test_multi"]
    param_names = ["split"]
    timeout = 300

    def setup_cache(self):
        # Runs once, in a temporary directory that asv shares with the benchmarks of this class.
        root = Path.cwd() / DATASET
        _generate(root)
        return str(root)

    def setup(self, root, split):
        from fieldbench.datasets import load

        self.load = load
        load(root, split)  # warm-up: imports pyarrow and fsspec, reads the card once

    def time_load(self, root, split):
        self.load(root, split)
