"""The error metric and a Polygraphy compare function that applies it.

Metric, per output tensor: ``max_abs = max|a - b|`` and ``max_rel = max|a - b| / max(max|b|, 1)`` with
``a`` the ONNX output and ``b`` the PyTorch reference. This normwise relative error (max norm) is
scale-free and, unlike Polygraphy's element-wise relative error, is not blown up by the many near-zero
entries of post-norm states and logits; it says "the largest deviation, as a fraction of the largest
value", which is what a rounding-error bound of ``k * eps`` speaks about.

The floor of 1 is the states' RMS: every output is computed from unit-RMS states (RMSNorm), so its
rounding error is of order ``eps * 1`` whatever its own size. An output much smaller than 1 (the Q
head of a random or barely trained model: |q| ~ 0.05 from a dot product of O(1) entries) carries
that absolute error after cancellation, and dividing by its own tiny magnitude would measure the
cancellation, not the export. For states (max|b| ~ 4) and trained logits/Q values (|.| >> 1) the floor
changes nothing.

:class:`NormwiseCompare` follows Polygraphy's compare-function protocol (a callable taking two
``IterationResult`` s and returning ``{output: result}`` whose truthiness is pass/fail), so it plugs into
``Comparator.compare_accuracy`` next to Polygraphy's own ``CompareFunc.simple``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

SCALE_FLOOR = 1.0
METRIC = ("max_rel = max|onnx - torch| / max(max|torch|, 1) per output (normwise relative error in the max "
          "norm; the floor 1 is the RMS of the post-norm states every output is computed from)")


@dataclass
class ErrorStat:
    """Errors of one output (or the worst over several) against a tolerance; ``passed`` is stored so a
    combined stat passes only if every part did."""

    max_abs: float
    max_rel: float
    tolerance: float
    passed: bool = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.passed is None:
            self.passed = bool(np.isfinite(self.max_rel) and self.max_rel <= self.tolerance)

    def __bool__(self) -> bool:
        return self.passed

    def worst(self, other: "ErrorStat") -> "ErrorStat":
        """Combine two stats: the largest ``max_abs``; ``max_rel`` and ``tolerance`` of the part closest to
        (or past) its bound (with one tolerance for all parts: the largest ``max_rel``); passed if both did."""
        binding = max((self, other), key=_ratio)
        return ErrorStat(_nanmax(self.max_abs, other.max_abs), binding.max_rel, binding.tolerance,
                         self.passed and other.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "max_rel": self.max_rel, "tolerance": self.tolerance, "passed": self.passed}


def _ratio(s: ErrorStat) -> float:
    if np.isnan(s.max_rel):
        return float("inf")
    return s.max_rel / s.tolerance if s.tolerance > 0 else float("inf")


def _nanmax(a: float, b: float) -> float:
    return float("nan") if (np.isnan(a) or np.isnan(b)) else max(a, b)


def normwise(a: np.ndarray, b: np.ndarray, tolerance: float) -> ErrorStat:
    """Error of ``a`` against the reference ``b`` (shapes must match; compared in float64)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        return ErrorStat(float("inf"), float("inf"), tolerance)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return ErrorStat(float("nan"), float("nan"), tolerance)
    max_abs = float(np.max(np.abs(a64 - b64))) if a64.size else 0.0
    scale = max(float(np.max(np.abs(b64))) if b64.size else 0.0, SCALE_FLOOR)
    return ErrorStat(max_abs, max_abs / scale, tolerance)


class NormwiseCompare:
    """Polygraphy compare function: ``NormwiseCompare(tol)(onnx_result, torch_result)``."""

    def __init__(self, tolerance: float | Mapping[str, float]) -> None:
        self.tolerance = tolerance

    def _tol(self, name: str) -> float:
        if isinstance(self.tolerance, Mapping):
            return float(self.tolerance.get(name, self.tolerance.get("", 0.0)))
        return float(self.tolerance)

    def __call__(self, iter_result0, iter_result1) -> "OrderedDict[str, ErrorStat]":
        out: OrderedDict[str, ErrorStat] = OrderedDict()
        for name, a in iter_result0.items():
            if name in iter_result1:
                out[name] = normwise(a, iter_result1[name], self._tol(name))
        return out


def summarize(accuracy_results) -> dict[str, ErrorStat]:
    """Worst ErrorStat per output over every iteration of a ``Comparator.compare_accuracy`` result."""
    worst: dict[str, ErrorStat] = {}
    for accuracy in _as_list(accuracy_results):
        for _pair, iterations in accuracy.items():
            for iteration in iterations:
                for name, stat in iteration.items():
                    worst[name] = stat if name not in worst else worst[name].worst(stat)
    return worst


def _as_list(results) -> Iterable:
    # Newer Polygraphy returns AccuracyResults (a list-like of AccuracyResult, one per compare function);
    # older releases return a single AccuracyResult (a dict keyed by runner pair).
    return [results] if hasattr(results, "items") else list(results)


def combine(stats: Iterable[ErrorStat]) -> ErrorStat | None:
    out = None
    for s in stats:
        out = s if out is None else out.worst(s)
    return out
