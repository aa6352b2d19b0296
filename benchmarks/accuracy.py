"""Quantities that are not times: the accuracy of the shipped baseline checkpoints.

All checkpoints are evaluated once, in ``setup_cache`` (one process); every (model, dataset)
then only reads its numbers, so this module imports nothing heavy at the top.
"""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

MODELS = ["fourier", "fc-ilr", "fc-ilr-bilinear", "fc-inr", "linear"]
DATASETS = ["circles2d", "prisms2d"]
SPLIT = "test-single"


def _evaluate_checkpoints() -> dict:
    """{(model, dataset): {"phi": %, "field": %} or the reason it is missing}."""
    import warnings

    from fieldbench.datasets import get
    from fieldbench.evaluation import evaluate
    from fieldbench.models import load_checkpoint

    folder = _env.measured_checkout() / "baselines" / "checkpoints"
    results = {}
    for dataset in DATASETS:
        mini = f"{dataset}-mini"
        with warnings.catch_warnings():  # "no mirror configured: rebuilding" (see _env)
            warnings.simplefilter("ignore")
            try:
                get(mini, progress=False)
            except Exception as error:  # noqa: BLE001 -- reported per benchmark as a skip
                results.update({(m, dataset): f"{mini} unavailable: {error}" for m in MODELS})
                continue
        for name in MODELS:
            path = folder / f"{name}-{dataset}-seed0.eqx"
            if not path.is_file():
                results[(name, dataset)] = f"no checkpoint {path.name} at this commit"
                continue
            model, _ = load_checkpoint(path)
            result = evaluate(model, mini, SPLIT)
            results[(name, dataset)] = {"phi": float(result.phi_error), "field": float(result.field_error)}
    return results


class CheckpointError:
    """Median relative error (paper Eq. 10, %) of ``baselines/checkpoints/<model>-<dataset>-seed0.eqx`` on
    ``<dataset>-mini``'s test-single split (``fieldbench.evaluation.evaluate``). Skipped where the
    commit ships no such checkpoint. A change means a model, the evaluator or the data changed."""

    params = (MODELS, DATASETS)
    param_names = ["model", "dataset"]
    unit = "%"
    timeout = 600

    def setup_cache(self):
        return _evaluate_checkpoints()

    def setup(self, results, name, dataset):
        if not isinstance(results[(name, dataset)], dict):
            raise NotImplementedError(results[(name, dataset)])

    def track_phi_error(self, results, name, dataset):
        return results[(name, dataset)]["phi"]

    def track_field_error(self, results, name, dataset):
        return results[(name, dataset)]["field"]
