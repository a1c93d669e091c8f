"""Small, exact statistics for timings: percentiles (numpy's linear interpolation) and summaries.

Timings are collected in seconds and reported in milliseconds. The median (p50) is the headline
number everywhere: on a loaded machine the mean is dragged by the slowest outliers, the minimum is
luck; p90 / p99 show the tail (p99 needs ~100 samples to mean anything, and ``n`` is always reported).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks, i.e. numpy's
    default ``method="linear"``: rank ``r = q/100 * (n-1)``, value ``v[floor r] + frac(r) * (v[ceil r] - v[floor r])``."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    v = sorted(float(x) for x in values)
    if not v:
        raise ValueError("percentile of an empty sequence")
    r = q / 100 * (len(v) - 1)
    lo = math.floor(r)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (r - lo) * (v[hi] - v[lo])


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle ones for an even count)."""
    return percentile(values, 50)


def summarize_ms(seconds: Iterable[float], digits: int = 4) -> dict[str, float | int]:
    """``{n, p50, p90, p99, mean, min, max}`` in milliseconds from samples in seconds (empty: n=0 only)."""
    ms = [float(s) * 1e3 for s in seconds]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": round(median(ms), digits), "p90": round(percentile(ms, 90), digits),
            "p99": round(percentile(ms, 99), digits), "mean": round(sum(ms) / len(ms), digits),
            "min": round(min(ms), digits), "max": round(max(ms), digits)}


def ratio(value: float | None, reference: float | None, digits: int = 3) -> float | None:
    """``value / reference`` rounded, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference == 0:
        return None
    return round(float(value) / float(reference), digits)


def dig(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...`` or None when a level is missing (results JSON has optional branches)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d
