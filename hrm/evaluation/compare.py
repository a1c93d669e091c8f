"""The one comparator: how far one run's answers are from another's, under one set of metric names.

``hrm-parity`` (backend vs the PyTorch reference) and ``hrm-bench`` (every target vs the eager
references) both judge runs with these functions, so a number means the same in both reports:

* ``answer_agreement``: fraction of puzzles whose answer tokens are all equal;
* ``token_agreement``: fraction of answer tokens equal;
* ``halting_agreement``: fraction of puzzles that stopped after the same number of segments;
* ``accuracy``: exact-match task accuracy against labels (PAD = 0 cells ignored, as the official
  evaluation does); None when a label is missing;
* ``relative_drift``: per puzzle ``|z_H - z_H_ref|_F / |z_H_ref|_F`` (parity's per-segment state drift);
* :func:`trace_agreement`: token agreement after each segment of a fixed-halting trace, where it first
  drops below 99% (``diverges_at``), and the q_halt difference after segment 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hrm.runtime.results import exact_match

#: token agreement below this after a segment counts as the answers having diverged there
DIVERGED = 0.99


@dataclass
class Agreement:
    """One run against a reference run on the same puzzles (the metric names of the module docstring)."""

    n: int
    answer_agreement: float
    token_agreement: float
    halting_agreement: float


def agreement(answers: Any, segments: Any, ref_answers: Any, ref_segments: Any) -> Agreement:
    """Compare answers [N, S] and segments used [N] with a reference's (the first N of each when lengths differ)."""
    n = min(len(answers), len(ref_answers))
    if n == 0:
        return Agreement(0, 1.0, 1.0, 1.0)
    a, b = np.asarray(answers)[:n], np.asarray(ref_answers)[:n]
    same = a == b
    return Agreement(n, float(same.all(axis=1).mean()), float(same.mean()),
                     float((np.asarray(segments)[:n] == np.asarray(ref_segments)[:n]).mean()))


def accuracy(answers: np.ndarray, labels: Sequence[np.ndarray | None]) -> float | None:
    """Exact-match accuracy against labels (PAD cells ignored); None if any label is missing."""
    if not len(labels) or any(lb is None for lb in labels):
        return None
    return float(np.mean([exact_match(a, lb) for a, lb in zip(answers, labels)]))


def relative_drift(z: np.ndarray, z_ref: np.ndarray) -> np.ndarray:
    """Per row ``|z - z_ref|_F / |z_ref|_F`` (fp32 [B, ...] inputs)."""
    a = z.reshape(len(z), -1).astype(np.float64)
    b = z_ref.reshape(len(z_ref), -1).astype(np.float64)
    return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)


def trace_agreement(mine: Sequence[tuple[Sequence[np.ndarray], Sequence[float]]],
                    ref: Sequence[tuple[Sequence[np.ndarray], Sequence[float]]]) -> dict[str, Any]:
    """Per puzzle (answers after each segment, q_halt per segment), mine vs the reference's."""
    per_segment: list[float] = []
    q1: list[float] = []
    for (steps, qh), (rsteps, rqh) in zip(mine, ref):
        for i, (a, b) in enumerate(zip(steps, rsteps)):
            if i == len(per_segment):
                per_segment.append(0.0)
            per_segment[i] += float((np.asarray(a) == np.asarray(b)).mean()) / len(mine)
        if len(qh) and len(rqh):
            q1.append(abs(float(qh[0]) - float(rqh[0])))
    diverges = next((i + 1 for i, v in enumerate(per_segment) if v < DIVERGED), None)
    return {"n": len(mine), "token_agreement_per_segment": [round(v, 4) for v in per_segment],
            "diverges_at": diverges, "q_halt_seg1_abs_diff": round(max(q1), 6) if q1 else None}
