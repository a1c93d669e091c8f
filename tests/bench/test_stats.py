"""Percentiles and summaries: numpy's linear interpolation, by hand and against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from hrm.bench.stats import median, percentile, ratio, summarize_ms


def test_percentile_by_hand():
    v = [4.0, 1.0, 3.0, 2.0]  # sorted 1 2 3 4; rank = q/100 * 3
    assert median(v) == 2.5
    assert percentile(v, 0) == 1.0 and percentile(v, 100) == 4.0
    assert percentile(v, 90) == pytest.approx(3.7)  # rank 2.7: 3 + 0.7 * (4 - 3)
    assert percentile(v, 25) == pytest.approx(1.75)  # rank 0.75
    assert median([5.0]) == 5.0
    assert median([3.0, 1.0, 2.0]) == 2.0


@pytest.mark.parametrize("n", [1, 2, 7, 100, 101])
def test_percentile_matches_numpy(n):
    rng = np.random.default_rng(n)
    v = rng.lognormal(size=n).tolist()
    for q in (0, 1, 10, 50, 90, 99, 100):
        assert percentile(v, q) == pytest.approx(float(np.percentile(v, q)), rel=1e-12)


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_ms_converts_and_orders():
    s = summarize_ms([0.001, 0.003, 0.002, 0.010])
    assert s["n"] == 4 and s["p50"] == 2.5 and s["min"] == 1.0 and s["max"] == 10.0 and s["mean"] == 4.0
    assert s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert summarize_ms([]) == {"n": 0}


def test_ratio():
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 1.0) is None and ratio(1.0, 0.0) is None
