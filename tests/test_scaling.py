"""The scaling harness (paper Fig. 5a) on tiny sizes: rows, slopes, the figure, budgets, errors.

Timings on a shared machine are noisy, so only robust facts are asserted: the exact O(M N) sum's
time grows faster with M = N than a learned model's, and steeply (slope > 1.5) once the work
dominates (1e3 -> 1e4); the budget rules are checked with a fake predictor whose cost is a
deterministic sleep.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from _helpers import PNG_SIGNATURE

from fieldbench.evaluation import ScalingResult, scaling, scaling_configuration, scaling_predictors
from fieldbench.models import ExactPredictor, Predictor, build_model


class SleepyPredictor(Predictor):
    """Evaluation sleeps ``scale * N**power`` seconds (a deterministic O(N^power) method)."""

    name = "sleepy"

    def __init__(self, scale: float, power: float = 2.0, fail: BaseException | None = None):
        self.scale, self.power, self.fail = scale, power, fail

    def encode(self, batch):
        return batch

    def evaluate(self, code, points):
        if self.fail is not None:
            raise self.fail
        time.sleep(self.scale * len(points) ** self.power)
        return np.zeros((1, len(points))), np.zeros((1, len(points), 2))


@pytest.fixture(scope="module")
def result() -> ScalingResult:
    predictors = {"exact": ExactPredictor(), "fc-ilr": build_model("fc-ilr", preset="quick")[0]}
    return scaling(predictors, sizes_m=(1e2, 1e3, 1e4), time_budget=20.0, repeats=2)


def test_rows_for_both_phases_and_every_size(result):
    for method in ("exact", "fc-ilr"):
        for phase in ("encode", "evaluate"):
            rows = [r for r in result.rows if r.method == method and r.phase == phase]
            assert [(r.M, r.N) for r in rows] == [(100, 100), (1000, 1000), (10000, 10000)]
            assert all(r.status == "ok" and r.seconds > 0 and r.compile_seconds > 0 and r.repeats >= 2
                       for r in rows), rows
            assert all(r.points == "outside" and r.sweep == "M" for r in rows)
    assert result.environment["backend"] in ("cpu", "gpu", "cuda", "rocm", "tpu")
    assert result.environment["device"] and result.environment["threads"] >= 1


def test_slopes_are_finite_and_the_direct_sum_grows_fastest(result):
    assert {(s["method"], s["phase"]) for s in result.slopes} == {
        (m, p) for m in ("exact", "fc-ilr") for p in ("encode", "evaluate")}
    assert all(math.isfinite(s["slope"]) and math.isfinite(s["tail_slope"]) for s in result.slopes)
    exact, learned = result.slope("exact"), result.slope("fc-ilr")
    assert exact > learned, (exact, learned)
    # 1e3 -> 1e4 with N = M: 100 times the pairs; the direct sum is compute-bound there (~2).
    seconds = {r.M: r.seconds for r in result.rows if r.method == "exact" and r.phase == "evaluate"}
    assert math.log10(seconds[10000] / seconds[1000]) > 1.5, seconds


def test_tables(result):
    records = result.to_table()
    assert len(records) == len(result.rows) == 12
    assert set(records[0]) >= {"method", "phase", "M", "N", "seconds", "compile_seconds", "status"}
    markdown = result.to_table("markdown")
    assert markdown.startswith("| method |") and markdown.count("\n") == 13
    assert "| exact |" in result.slope_table("markdown")
    assert result.as_dict()["settings"]["sizes_m"] == [100, 1000, 10000]
    with pytest.raises(ValueError, match="fmt"):
        result.to_table("csv")


def test_plot_writes_a_png(result, tmp_path):
    path = result.plot(tmp_path / "figures" / "scaling.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 500 and height > 300


def test_a_result_survives_a_records_json_form(result):
    """A leaderboard record stores ``as_dict`` as JSON with NaN as null; ``from_dict`` reads it back."""
    import json

    stored = json.loads(json.dumps(result.as_dict(), default=str).replace("NaN", "null"))
    back = ScalingResult.from_dict(stored)
    assert back.rows == result.rows and back.slopes == result.slopes
    assert back.environment == result.environment and back.settings == result.settings
    twice = ScalingResult.combined([back, ScalingResult.from_dict(stored)])  # two records of one run
    assert twice.rows == result.rows and twice.slopes == result.slopes


def test_measured_over_budget_stops_the_method():
    result = scaling({"sleepy": SleepyPredictor(1e-6, power=1.0)}, sizes_m=(100, 200, 400), time_budget=1e-5,
                     repeats=1, fmm_both=False)
    evaluate = [r for r in result.rows if r.phase == "evaluate"]
    assert [(r.M, r.status) for r in evaluate] == [(100, "over budget")]
    assert evaluate[0].seconds >= 1e-4


def test_predicted_over_budget_is_skipped():
    # 1e-7 N^2 s: 1 ms, 9 ms, then ~0.1 s predicted at N = 1000 (slope ~2 from the first two).
    result = scaling({"sleepy": SleepyPredictor(1e-7)}, sizes_m=(100, 300, 1000, 3000), time_budget=0.04,
                     repeats=1)
    evaluate = [r for r in result.rows if r.phase == "evaluate"]
    assert [r.M for r in evaluate] == [100, 300, 1000]
    assert [r.status for r in evaluate[:2]] == ["ok", "ok"]
    assert evaluate[2].status.startswith("skipped (predicted") and math.isnan(evaluate[2].seconds)
    assert result.slope("sleepy") > 1.5


def test_errors_are_recorded_and_stop_only_that_method():
    predictors = {"oom": SleepyPredictor(0, fail=MemoryError()),
                  "broken": SleepyPredictor(0, fail=ValueError("bad shapes")),
                  "fine": SleepyPredictor(0, power=1.0)}
    result = scaling(predictors, sizes_m=(10, 20), time_budget=10.0, repeats=1)
    status = {(r.method, r.M, r.phase): r.status for r in result.rows}
    assert status[("oom", 10, "evaluate")] == "out of memory"
    assert status[("broken", 10, "evaluate")].startswith("error: ValueError: bad shapes")
    assert status[("oom", 10, "encode")] == "ok"
    assert ("oom", 20, "evaluate") not in status and ("broken", 20, "evaluate") not in status
    assert status[("fine", 20, "evaluate")] == "ok"


def test_sweep_over_points_with_sources_fixed():
    result = scaling({"sleepy": SleepyPredictor(0, power=1.0)}, sizes_m=(10, 30), m_fixed=50, repeats=1)
    n_rows = [r for r in result.rows if r.sweep == "N" and r.phase == "evaluate"]
    assert [(r.M, r.N) for r in n_rows] == [(50, 10), (50, 30)]
    fixed = scaling({"sleepy": SleepyPredictor(0, power=1.0)}, sizes_m=(10, 30), n_equals_m=False, n_fixed=7,
                    repeats=1)
    assert {(r.M, r.N) for r in fixed.rows} == {(10, 7), (30, 7)}


@pytest.mark.parametrize("family", ["disc", "prism"])
def test_configurations_do_not_overlap_and_points_are_where_asked(family):
    sources, outside = scaling_configuration(600, 2000, family=family, seed=3)
    assert len(sources) == 600 and outside.shape == (2000, 2)
    assert not sources.contains(outside, strict=False).any()
    centers, half = np.asarray(sources.centers), np.asarray(sources.sizes)[:, 0] / 2
    gap = np.abs(centers[:, None, :] - centers[None, :, :])
    reach = half[:, None] + half[None, :]
    others = ~np.eye(len(sources), dtype=bool)
    if family == "disc":
        assert np.all(np.hypot(gap[..., 0], gap[..., 1])[others] > reach[others])
    else:
        assert not np.any(((gap[..., 0] < reach) & (gap[..., 1] < reach))[others])
    assert np.all(np.abs(centers) + half[:, None] <= 0.5)
    assert 0.2 < half.mean() * math.sqrt(600) < 0.35  # radius ~0.3 / sqrt(M)
    _, inside = scaling_configuration(600, 1000, family=family, points_inside=True, seed=3)
    np.testing.assert_array_equal(inside[:600], centers)
    assert np.all(sources.contains(inside).sum(axis=1) == 1)


def test_a_configuration_of_fig_5a_size_is_whole():
    # Its cost is tracked by asv (models.ScalingInputs), not timed here.
    sources, points = scaling_configuration(1_000_000, 1_000_000)
    assert len(sources) == 1_000_000 and points.shape == (1_000_000, 2)
    assert np.isfinite(sources.centers).all() and np.isfinite(points).all()


def test_bad_arguments_raise_clear_errors():
    good = {"sleepy": SleepyPredictor(0)}
    cases = [
        (dict(predictors={}), ValueError, "non-empty"),
        (dict(predictors={"x": object()}), TypeError, "Predictor"),
        (dict(sizes_m=()), ValueError, "empty"),
        (dict(sizes_m=(100, 10)), ValueError, "increasing"),
        (dict(sizes_m=(0, 10)), ValueError, "positive whole"),
        (dict(sizes_m=(10.5, 20)), ValueError, "positive whole"),
        (dict(sizes_m="1e3"), TypeError, "sequence"),
        (dict(n_fixed=10), ValueError, "n_equals_m"),
        (dict(n_equals_m=False), ValueError, "n_fixed"),
        (dict(m_fixed=-1), ValueError, "m_fixed"),
        (dict(family="cuboid"), ValueError, "disc"),
        (dict(family="blob"), ValueError, "family"),
        (dict(time_budget=0), ValueError, "time_budget"),
        (dict(repeats=0), ValueError, "repeats"),
        (dict(points_inside="yes"), TypeError, "points_inside"),
    ]
    for overrides, error, message in cases:
        arguments = dict(predictors=good, sizes_m=(10,)) | overrides
        with pytest.raises(error, match=message):
            scaling(arguments.pop("predictors"), **arguments)


def test_scaling_predictors_builds_the_paper_methods():
    predictors = scaling_predictors(("exact", "fc-ilr"))
    assert isinstance(predictors["exact"], ExactPredictor) and predictors["fc-ilr"].name == "fc-ilr"
    with pytest.raises(ValueError, match="unknown model"):
        scaling_predictors(("nope",))


@pytest.mark.parametrize("damage", ["empty", "no rows", "a row without seconds"])
def test_a_damaged_result_is_refused_naming_what_is_missing(result, damage):
    stored = json.loads(json.dumps(result.as_dict(), default=str).replace("NaN", "null"))
    if damage == "empty":
        stored, expected = {}, "non-empty list 'rows'"
    elif damage == "no rows":
        stored["rows"], expected = [], "non-empty list 'rows'"
    else:
        del stored["rows"][1]["seconds"]
        expected = "row 1 lacks seconds"
    with pytest.raises(ValueError, match=expected):
        ScalingResult.from_dict(stored)


def test_the_board_names_a_damaged_scaling_file_and_its_fix(tmp_path):
    from fieldbench.leaderboard._render import _scaling_runs

    (tmp_path / "circles2d").mkdir()
    (tmp_path / "circles2d" / "scaling.json").write_text("{}")
    with pytest.raises(ValueError, match=r"circles2d/scaling.json is not a scaling result.*rerun"):
        _scaling_runs(tmp_path)
