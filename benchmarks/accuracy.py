"""Quantities that are not times: the accuracy of the shipped baseline checkpoints.

All checkpoints are evaluated once, in ``setup_cache`` (one process); every (model, dataset)
then only reads its numbers, so this module imports nothing heavy at the top.
"""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

MODELS = ["fourier", "fc-ilr", "fc-ilr-bilinear", "fc-inr", "linear"]
DATASETS = ["circles2d", "prisms2d"]
SPLIT = "test_single"
#: The (model, dataset) pairs whose ``fieldbench/models/checkpoints/<model>-<dataset>-seed0.eqx`` ships
#: (tests/test_benchmarks.py checks this against the folder). The other pairs are declared skipped
#: (asv's ``skip_params``); a shipped one that is missing or fails fails the benchmark, never skips.
SHIPPED = {
    ("fourier", "circles2d"), ("fc-ilr", "circles2d"), ("fc-ilr-bilinear", "circles2d"), ("fc-inr", "circles2d"),
    ("linear", "circles2d"), ("fc-ilr", "prisms2d"), ("fc-ilr-bilinear", "prisms2d"), ("linear", "prisms2d"),
}


def checkpoint_folder():
    """The shipped checkpoints of the measured commit: package data of the installed fieldbench
    (``fieldbench.models.shipped_checkpoint_dir``), or for a commit from before they were package data,
    ``baselines/checkpoints`` in its checkout."""
    import fieldbench.models

    shipped = getattr(fieldbench.models, "shipped_checkpoint_dir", None)
    return shipped() if shipped is not None else _env.measured_checkout() / "baselines" / "checkpoints"


def _evaluate_checkpoints() -> dict:
    """{(model, dataset): {"phi": %, "field": %}} for every shipped pair. Any failure raises: a
    benchmark whose data or checkpoint is broken must fail, not turn into asv's silent "n/a"."""
    import warnings

    from fieldbench.datasets import get
    from fieldbench.evaluation import evaluate
    from fieldbench.models import load_checkpoint

    folder = checkpoint_folder()
    results = {}
    for dataset in DATASETS:
        mini = f"{dataset}-mini"
        with warnings.catch_warnings():  # "no mirror configured: rebuilding" (see _env)
            warnings.simplefilter("ignore")
            get(mini, progress=False)
        for name in MODELS:
            if (name, dataset) not in SHIPPED:
                continue
            path = folder / f"{name}-{dataset}-seed0.eqx"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing but benchmarks/accuracy.py lists it in SHIPPED; restore "
                                        "the checkpoint or drop it from SHIPPED")
            model, _ = load_checkpoint(path)
            result = evaluate(model, mini, SPLIT)
            results[(name, dataset)] = {"phi": float(result.phi_error), "field": float(result.field_error)}
    return results


class CheckpointError:
    """Median relative error (paper Eq. 10, %) of ``fieldbench/models/checkpoints/<model>-<dataset>-seed0.eqx`` on
    ``<dataset>-mini``'s test_single split (``fieldbench.evaluation.evaluate``), for the pairs in
    SHIPPED (the others are skipped by declaration). A change means a model, the evaluator or the
    data changed."""

    params = (MODELS, DATASETS)
    param_names = ["model", "dataset"]
    skip_params = [(name, dataset) for name in MODELS for dataset in DATASETS if (name, dataset) not in SHIPPED]
    unit = "%"
    timeout = 600

    def setup_cache(self):
        return _evaluate_checkpoints()

    def track_phi_error(self, results, name, dataset):
        return results[(name, dataset)]["phi"]

    def track_field_error(self, results, name, dataset):
        return results[(name, dataset)]["field"]
