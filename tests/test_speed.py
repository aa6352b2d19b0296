"""The leaderboard's speed figure: warm (the first call excluded), on a labelled device."""

import time

import jax
import numpy as np
import pytest

from fieldbench.models import Predictor
from fieldbench.models._speed import evaluation_speed, timing_device


class SlowFirstCall(Predictor):
    """Its first call costs 0.5 s (as tracing and compilation do), every later one almost nothing."""

    name = "slow-first-call"

    def __init__(self):
        self.calls = 0

    def encode(self, batch):
        self.calls += 1
        if self.calls == 1:
            time.sleep(0.5)
        return batch

    def evaluate(self, code, points):
        return np.zeros(points.shape[:2]), np.zeros(points.shape)


def test_the_first_call_is_excluded_from_the_speed():
    predictor = SlowFirstCall()
    speed = evaluation_speed(predictor, "circles2d-mini", "test_multi", samples=4, repeats=3)
    assert predictor.calls == 1 + 3 and speed["warmup_calls"] == 1
    assert speed["samples"] == 4 and speed["points"] == 4 * 1024
    # 0.5 s over 4096 points would be 122 us/point: the figure must not contain it.
    assert speed["eval_us_per_point"] * speed["points"] < 0.05 * 1e6
    assert speed["eval_us_per_point"] <= speed["median_us_per_point"]


def test_the_timing_device_is_labelled():
    device = timing_device()
    assert device["platform"] == jax.devices()[0].platform and device["devices"] == len(jax.devices())
    assert device["kind"] == jax.devices()[0].device_kind and device["cpu_count"] >= 1
    assert device["label"]


def test_the_training_step_is_compared_with_the_paper_code_only_at_its_core_count(monkeypatch):
    """The paper code's step times are constants measured on 2 cores: every row says so, and a run on
    another core count reports the speed-up as not comparable instead of judging the target."""
    from fieldbench._tables import training_step_table
    from fieldbench.models import _speed

    for cores, comparable in ((_speed.PAPER_CODE_CORES, True), (1, False)):
        monkeypatch.setattr("fieldbench.bench.usable_cores", lambda cores=cores: cores)
        (row,) = _speed.training_step_speed(("fc-ilr",), preset="paper", repeats=1)
        assert row["comparable"] is comparable and row["cores"] == cores
        assert row["paper_code_s"] == _speed.PAPER_CODE_SECONDS["fc-ilr"] and "constant" in row["paper_code_source"]
        assert row["speedup"] == pytest.approx(row["paper_code_s"] / (row["step_ms"] / 1e3))
        assert (row["meets_target"] is None) is not comparable
        table = training_step_table([row], "test device")
        verdict = table.rows[0][-1]
        assert verdict in ("met", "missed") if comparable else verdict.startswith("not comparable (1 cores")
        assert any("measured once" in note for note in table.notes)
