"""The leaderboard's speed figure: warm (the first call excluded), on a labelled device."""

import time

import jax
import numpy as np

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
