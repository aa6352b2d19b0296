"""Scoring predictions made outside fieldbench: ``evaluate_predictions``, the .npz file format of
``fieldbench evaluate --predictions``, and the PyTorch example that uses both.

The reference for every metric is ``evaluate`` on a model that returns the same values: one scorer
serves both ways in, so the two results must agree bit for bit (compared as JSON text, which writes
every float exactly and NaN as NaN). ``tests/test_evaluator.py`` checks that scorer against brute force.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fieldbench.cli import app
from fieldbench.datasets import iter_batches, load
from fieldbench.evaluation import (InvalidPrediction, evaluate, evaluate_prediction_file, evaluate_predictions,
                                   read_prediction_file)
from fieldbench.models import Predictor, load_predictor
from fieldbench.pipeline import SplitSpec
from fieldbench.sources import ConfigurationSpec

SPLIT = "test_overlap"  # an identifier: valid under every split-naming rule
SAMPLES, POINTS = 10, 60
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pytorch_training.py"
runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(make_dataset) -> str:
    """10 samples of 2-3 overlapping discs and rectangles, 60 points each, some inside sources."""
    configuration = ConfigurationSpec(families=("disc", "prism"), sources=(2, 3), domain=1.0, size=(0.3, 0.8),
                                      overlap="forced")
    return str(make_dataset("predictions", {SPLIT: SplitSpec(configuration, samples=SAMPLES, points=POINTS,
                                                             point_domain=2.0, seed=5)}))


@pytest.fixture(scope="module")
def data(dataset):
    return load(dataset, SPLIT)


class _Recording(Predictor):
    """Another predictor's outputs, recorded batch by batch as ``evaluate`` receives them."""

    name = "recording"

    def __init__(self, inner):
        self.inner, self.phi, self.field = inner, [], []

    def encode(self, batch):
        return self.inner.encode(batch)

    def evaluate(self, code, points):
        phi, field = self.inner.evaluate(code, points)
        self.phi.append(np.asarray(phi))
        self.field.append(np.asarray(field))
        return phi, field


class _Table(Predictor):
    """Returns given arrays, each sample's row found by its points (whatever the batching)."""

    name = "table"

    def __init__(self, data, phi, field):
        self.row = {data.points[s].tobytes(): s for s in range(len(data))}
        self.phi, self.field = phi, field

    def encode(self, batch):
        return None

    def evaluate(self, code, points):
        rows = [self.row[np.asarray(p).tobytes()] for p in points]
        return self.phi[rows], self.field[rows]


def _metrics(result) -> str:
    """Every metric of a result, exactly, as text (the timing is not a metric)."""
    values = result.as_dict()
    values.pop("seconds")
    return json.dumps(values, sort_keys=True)


def _spoilt(data, dtype=np.float64):
    """Predictions with errors of a few percent that differ by point (so every median is a real one)."""
    rng = np.random.default_rng(3)
    phi = data.phi.astype(np.float64) * (1 + rng.normal(0, 0.05, data.phi.shape))
    field = data.field.astype(np.float64) * (1 + rng.normal(0, 0.05, data.field.shape))
    return phi.astype(dtype), field.astype(dtype)


# -- the same metrics as evaluate, bit for bit --------------------------------------------------------------------
def test_the_exact_solvers_predictions_score_as_the_exact_solver_does(dataset, data):
    recording = _Recording(load_predictor("exact"))
    reference = evaluate(recording, dataset, SPLIT, batch_size=4, name="exact")  # a short last batch
    phi, field = np.concatenate(recording.phi), np.concatenate(recording.field)
    assert phi.shape == data.phi.shape and field.shape == data.field.shape
    got = evaluate_predictions(dataset, SPLIT, phi, field, name="exact")
    assert _metrics(got) == _metrics(reference)
    assert reference.samples == SAMPLES and reference.inside["points"] > 0  # the data exercise inside/outside
    assert np.isnan(got.seconds) and got.model == "exact" and got.split == SPLIT
    # Flat arrays (sample-major) are the same predictions.
    flat = evaluate_predictions(dataset, SPLIT, phi.ravel(), field.reshape(-1, field.shape[-1]), name="exact")
    assert _metrics(flat) == _metrics(reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_imperfect_predictions_score_as_a_model_returning_them(dataset, data, dtype):
    phi, field = _spoilt(data, dtype)
    reference = evaluate(_Table(data, phi, field), dataset, SPLIT, batch_size=3, name="mine")
    got = evaluate_predictions(dataset, SPLIT, phi, field, name="mine")
    assert _metrics(got) == _metrics(reference)
    assert 1 < got.phi_error < 10 and 1 < got.field_error < 10  # a few percent, as made
    limited = evaluate_predictions(dataset, SPLIT, phi[:4], field[:4], limit=4, name="mine")
    assert _metrics(limited) == _metrics(evaluate(_Table(data, phi, field), dataset, SPLIT, limit=4, name="mine"))
    assert limited.samples == 4 and limited.points == 4 * POINTS
    # A limit beyond the split means the whole split, as for evaluate.
    assert _metrics(evaluate_predictions(dataset, SPLIT, phi, field, limit=99, name="mine")) == _metrics(reference)


def test_predictions_in_iter_batches_order_are_loads_order(dataset, data):
    """What the docs promise a user who predicts batch by batch: unshuffled batches come in load's
    order, and a shuffled epoch's ``sample`` puts each prediction back in its place."""
    phi_true, field_true = _spoilt(data)
    phi, field = np.full_like(phi_true, np.nan), np.full_like(field_true, np.nan)
    for batch in iter_batches(dataset, SPLIT, 3, shuffle=True, seed=1, as_jax=False):
        rows = [int(np.flatnonzero((data.points == p).all(axis=(1, 2)))[0]) for p in batch["points"]]
        phi[batch["sample"]], field[batch["sample"]] = phi_true[rows], field_true[rows]
    assert _metrics(evaluate_predictions(dataset, SPLIT, phi, field)) == _metrics(
        evaluate_predictions(dataset, SPLIT, phi_true, field_true))
    ordered = np.concatenate([b["points"] for b in iter_batches(dataset, SPLIT, 4, as_jax=False)])
    np.testing.assert_array_equal(ordered, data.points)


# -- strict input checks ------------------------------------------------------------------------------------------
def _nan_in_sample_6(phi, field):
    field = field.copy()
    field[6, 2, 1] = np.nan
    return phi, field


@pytest.mark.parametrize("spoil, limit, message", [
    (lambda p, f: (p[:, :-1], f), None,
     rf"phi has shape \(10, 59\); split '{SPLIT}' of predictions needs \(10, 60\) \(samples, points\) or "
     r"flat \(600,\)"),
    (lambda p, f: (p, f[..., :1]), None, r"H has shape \(10, 60, 1\); .* needs \(10, 60, 2\) \(samples, points, dims\) "
                                         r"or flat \(600, 2\)"),
    (lambda p, f: (p.ravel()[:-1], f), None, r"phi has shape \(599,\)"),
    (lambda p, f: (p[:, None], f), None, r"phi has shape \(10, 1, 60\)"),
    (lambda p, f: (p[:0], f), None, r"phi has shape \(0, 60\)"),
    (lambda p, f: (p[:7], f[:7]), None, r"phi holds 7 samples; split .* has 10: predict all 10 samples, or score the "
                                        r"first 7 only \(limit=7; --limit 7\)"),
    (lambda p, f: (p, f[:7].reshape(-1, 2)), None, "H holds 7 samples; .* has 10"),
    (lambda p, f: (np.concatenate([p, p]), f), None, "phi holds 20 samples; .* has 10: predict exactly its 10 samples"),
    (lambda p, f: (p[:3], f[:3]), 5, "phi holds 3 samples; .* limit=5 asks for the first 5: predict those, or pass "
                                     "limit=3"),
    (lambda p, f: (p, f), 5, "phi holds 10 samples; .* limit=5 asks for the first 5"),
    (lambda p, f: (np.round(p).astype(np.int64), f), None, r"phi has dtype int64; expected floating point: convert "
                                                           r"it, e.g. phi.astype\(numpy.float32\)"),
    (lambda p, f: (p, f > 0), None, "H has dtype bool; expected floating point"),
    (lambda p, f: (p.astype(np.complex128), f), None, "phi has dtype complex128; expected floating point"),
    (lambda p, f: (p.astype(str), f), None, "phi has dtype <U.*; expected floating point"),
    (lambda p, f: ([[1.0, 2.0], [3.0]], f), None, "phi is not a rectangular array"),
    (_nan_in_sample_6, None, r"H holds NaN or inf for sample 6 \(1 values in all\); every prediction must be finite"),
    (lambda p, f: (p * np.inf, f), None, "phi holds NaN or inf for sample 0"),
], ids=["phi-points", "H-dims", "flat-length", "extra-axis", "empty", "too-few", "flat-too-few", "too-many",
        "limit-too-few", "limit-too-many", "int", "bool", "complex", "text", "ragged", "nan", "inf"])
def test_a_bad_prediction_is_one_line_naming_the_problem_and_the_fix(dataset, data, spoil, limit, message):
    phi, field = spoil(*_spoilt(data))
    with pytest.raises(InvalidPrediction, match=message) as caught:
        evaluate_predictions(dataset, SPLIT, phi, field, limit=limit)
    assert "\n" not in str(caught.value)


def test_a_bad_limit_or_split_is_refused(dataset, data):
    phi, field = _spoilt(data)
    with pytest.raises(ValueError, match="limit must be a positive number of samples; got 0"):
        evaluate_predictions(dataset, SPLIT, phi, field, limit=0)
    with pytest.raises(KeyError, match=rf"split 'nope' not in predictions; available: \['{SPLIT}'\]"):
        evaluate_predictions(dataset, "nope", phi, field)


# -- the .npz file and the command --------------------------------------------------------------------------------
def test_a_file_keyed_by_split_or_bare_scores_as_the_arrays(dataset, data, tmp_path):
    phi, field = _spoilt(data)
    expected = _metrics(evaluate_predictions(dataset, SPLIT, phi, field, name="p.npz"))
    keyed = tmp_path / "p.npz"
    np.savez(keyed, **{f"{SPLIT}/phi": phi, f"{SPLIT}/H": field})
    (result,) = evaluate_prediction_file(keyed, dataset)  # every split in the file
    assert _metrics(result) == expected
    (result,) = evaluate_prediction_file(keyed, dataset, [SPLIT])
    assert _metrics(result) == expected
    bare = tmp_path / "bare" / "p.npz"
    bare.parent.mkdir()
    np.savez(bare, phi=phi.ravel(), H=field)
    (result,) = evaluate_prediction_file(bare, dataset, [SPLIT])
    assert _metrics(result) == expected


def test_a_file_may_name_its_split_by_the_old_hyphenated_name(dataset, data, tmp_path):
    phi, field = _spoilt(data)
    expected = _metrics(evaluate_predictions(dataset, SPLIT, phi, field, name="p.npz"))
    old = SPLIT.replace("_", "-")
    path = tmp_path / "p.npz"
    np.savez(path, **{f"{old}/phi": phi, f"{old}/H": field})
    for splits in (None, [SPLIT], [old]):
        (result,) = evaluate_prediction_file(path, dataset, splits)
        assert result.split == SPLIT and _metrics(result) == expected


def test_bad_prediction_files_are_refused_naming_the_fix(dataset, data, tmp_path):
    phi, field = _spoilt(data)

    def npz(name, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    np.save(tmp_path / "one.npy", phi)
    (tmp_path / "text.npz").write_text("phi,H\n1,2\n")
    cases = [
        (npz("a.npz", **{f"{SPLIT}/phi": phi}), None, rf"has no '{SPLIT}/H' \(it has {SPLIT}/phi\): write both "
                                                      rf"{SPLIT}/phi and {SPLIT}/H"),
        (npz("b.npz", **{f"{SPLIT}/phi": phi, f"{SPLIT}/field": field}), None,
         f"unexpected key '{SPLIT}/field': expected keys <split>/phi and <split>/H for each split, or phi and H"),
        (npz("c.npz", phi=phi, H=field), None, "holds bare phi and H, the predictions of one split: name that one "
                                               r"split \(--split\)"),
        (npz("d.npz", phi=phi, H=field), ["x", "y"], "holds bare phi and H"),
        (npz("e.npz", phi=phi, H=field, **{f"{SPLIT}/phi": phi}), None, r"mixes bare keys \(phi, H\) with <split>/"),
        (npz("f.npz", **{f"{SPLIT}/phi": phi, f"{SPLIT}/H": field}), ["test_multi"],
         f"has no predictions for split 'test_multi' \\(keys test_multi/phi and test_multi/H\\); it holds: {SPLIT}"),
        (npz("g.npz"), None, "is empty: expected keys"),
        (npz("h.npz", **{f"{SPLIT}/phi": np.array([None, 1.0], dtype=object), f"{SPLIT}/H": field}), None,
         f"{SPLIT}/phi or {SPLIT}/H is not a plain numeric array"),
        (tmp_path / "one.npy", None, r"holds one array \(.npy\); expected an .npz"),
        (tmp_path / "text.npz", None, r"is not an .npz archive \(not a zip file\); write it with numpy.savez"),
    ]
    for path, splits, message in cases:
        with pytest.raises(InvalidPrediction, match=message) as caught:
            read_prediction_file(path, splits)
        assert "\n" not in str(caught.value), path
    with pytest.raises(FileNotFoundError, match="no predictions file .*missing.npz: write one with numpy.savez"):
        read_prediction_file(tmp_path / "missing.npz")


def test_the_command_scores_a_file_and_writes_the_same_json(dataset, data, tmp_path):
    phi, field = _spoilt(data)
    path, out = tmp_path / "mine.npz", tmp_path / "scores.json"
    np.savez(path, **{f"{SPLIT}/phi": phi, f"{SPLIT}/H": field})
    result = runner.invoke(app, ["evaluate", "--predictions", str(path), "--dataset", dataset, "--json", str(out)])
    assert result.exit_code == 0, result.output
    (scores,) = json.loads(out.read_text())
    expected = evaluate_predictions(dataset, SPLIT, phi, field, name="mine.npz").as_dict()
    assert json.dumps(scores, sort_keys=True) == json.dumps(json.loads(json.dumps(expected)), sort_keys=True)
    assert f"mine.npz on {dataset}" in result.output and f"{scores['phi_error']:.3g}" in result.output
    limited = runner.invoke(app, ["evaluate", "--predictions", str(path), "--dataset", dataset, "--split", SPLIT,
                                  "--limit", "4"])
    assert limited.exit_code == 1 and "phi holds 10 samples" in limited.output and "--limit 10" in limited.output


@pytest.mark.parametrize("arguments, message", [
    (["exact", "--predictions", "p.npz"], "give a model (exact) or --predictions p.npz, not both"),
    ([], "name a model to score (e.g. fieldbench evaluate exact), or pass --predictions FILE.npz"),
    (["--predictions", "p.npz", "--checkpoint", "m.eqx"], "--checkpoint belongs to a model; --predictions needs "
                                                          "none"),
    (["--predictions", "missing.npz"], "no predictions file missing.npz"),
])
def test_the_command_refuses_a_wrong_combination_in_one_line(tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", *arguments, "--dataset", str(tmp_path / "none")])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


# -- the PyTorch example --------------------------------------------------------------------------------------------
def test_the_pytorch_example_compiles_and_uses_the_neutral_interfaces():
    """Runs everywhere (torch is optional and not installed in CI): the file compiles, and it goes
    through the framework-neutral interfaces this file tests, not through a JAX model."""
    source = EXAMPLE.read_text()
    compile(source, str(EXAMPLE), "exec")
    for used in ("as_jax=False", "evaluate_predictions(", "np.savez("):
        assert used in source, used


# A mark, not importorskip in the body: the fixture would generate the minis only to skip.
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (fieldbench[torch])")
def test_the_pytorch_example_trains_and_scores(standard_minis, tmp_path):
    spec = importlib.util.spec_from_file_location("pytorch_training", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "predictions.npz"
    result = example.main(["--dataset", str(standard_minis["circles2d-mini"]), "--steps", "3", "--out", str(out)])
    assert np.isfinite(result.phi_error) and result.samples > 0
    (again,) = evaluate_prediction_file(out, str(standard_minis["circles2d-mini"]), name=result.model)
    assert _metrics(again) == _metrics(result)
