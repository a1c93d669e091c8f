"""The official ARC vote and pass@k (``arc_eval.ipynb``), on grids already mapped back to the task's frame.

For one test input, every augmented run's prediction is inverted (:meth:`Augmentation.invert`),
identical grids are pooled, and the pooled candidates are ranked by vote count, then by the mean
``sigmoid(q_halt)`` of their votes (the model's own confidence that the answer is right). pass@k
counts a task solved when, for *every* test input, the label is among its top-k candidates; the ARC
Prize submits the top 2 (``attempt_1``, ``attempt_2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrm.tasks.arc import ArcRecord, crop
from hrm.tasks.arc_augment import Augmentation

__all__ = ["grid_key", "Candidate", "vote", "solved_at", "pass_at_k", "ArcVoter"]


def grid_key(grid: Any) -> tuple[tuple[int, ...], bytes]:
    """Exact identity of a grid (shape + values), dtype-independent: the vote groups by it."""
    g = np.asarray(grid)
    return tuple(int(x) for x in g.shape), np.ascontiguousarray(g, dtype=np.int64).tobytes()


@dataclass(frozen=True, eq=False)
class Candidate:
    """A distinct predicted grid: how many augmented runs produced it and their mean halting probability."""

    grid: np.ndarray
    count: int
    mean_q: float


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.float64(x))))


def vote(predictions: Iterable[tuple[Any, float]], *, q_is_logit: bool = True) -> list[Candidate]:
    """Group ``(grid, q_halt)`` predictions by grid and rank them as the official evaluation: by count,
    then by mean ``sigmoid(q_halt)`` (``q_is_logit=False``: q is a probability already), both
    descending; ties keep first-seen order."""
    groups: dict[tuple, list] = {}  # key -> [grid, count, sum of p], in first-seen order
    for grid, q in predictions:
        p = _sigmoid(q) if q_is_logit else float(q)
        g = groups.setdefault(grid_key(grid), [np.asarray(grid, dtype=np.int64), 0, 0.0])
        g[1] += 1
        g[2] += p
    cands = [Candidate(grid, count, total / count) for grid, count, total in groups.values()]
    return sorted(cands, key=lambda c: (c.count, c.mean_q), reverse=True)


def solved_at(ranked: Sequence[Candidate], label: Any, k: int) -> bool:
    """Is ``label`` among the top ``k`` ranked candidates?"""
    want = grid_key(label)
    return any(grid_key(c.grid) == want for c in ranked[: int(k)])


def pass_at_k(
    tasks: Mapping[str, Sequence[tuple[Sequence[Candidate], Any]]], ks: Sequence[int] = (1, 2)
) -> dict[int, float]:
    """Fraction of tasks solved within the top-k candidates, for each k.

    ``tasks[task_id]`` lists, per test input, ``(ranked candidates, label grid)``. As in the official
    evaluation a task counts only if every one of its test inputs is solved.
    """
    if not tasks:
        return {int(k): 0.0 for k in ks}
    return {int(k): sum(all(solved_at(r, label, k) for r, label in tests) for tests in tasks.values()) / len(tasks)
            for k in ks}


class ArcVoter:
    """Collects predictions of augmented runs named as in ``identifiers.json`` and scores them like
    the official notebook: predictions are keyed by the original task id and the de-augmented test
    input, so one test input seen under 1000 augmentations lands in one vote."""

    def __init__(self, *, q_is_logit: bool = True) -> None:
        self.q_is_logit = q_is_logit
        self._preds: dict[tuple[str, tuple], list[tuple[np.ndarray, float]]] = {}

    def add(self, name: str, input_grid: Any, prediction: Any, q_halt: float) -> None:
        """One prediction for the puzzle ``name`` (possibly augmented) on ``input_grid`` (as the model
        saw it); both grids are mapped back to the original frame before voting."""
        base, aug = Augmentation.parse(name)
        inp = aug.invert(input_grid)
        self._preds.setdefault((base, grid_key(inp)), []).append((aug.invert(prediction), float(q_halt)))

    def add_tokens(self, name: str, input_tokens: Any, prediction_tokens: Any, q_halt: float) -> None:
        """:meth:`add` from canvas tokens (both are cropped as the official evaluation does)."""
        self.add(name, crop(input_tokens), crop(prediction_tokens), q_halt)

    def ranked(self, task_id: str, input_grid: Any) -> list[Candidate]:
        """Ranked candidates for one original test input (empty if none was added)."""
        return vote(self._preds.get((task_id, grid_key(input_grid)), []), q_is_logit=self.q_is_logit)

    def score(self, records: Iterable[ArcRecord], ks: Sequence[int] = (1, 2)) -> dict[int, float]:
        """pass@k over original ``records`` (their test outputs are the labels; they must be known)."""
        tasks: dict[str, list[tuple[list[Candidate], np.ndarray]]] = {}
        for rec in records:
            tests = []
            for k, (inp, out) in enumerate(rec.test):
                if out is None:
                    raise ValueError(f"task {rec.task_id}: test[{k}] has no output to score against")
                tests.append((self.ranked(rec.task_id, inp), out))
            tasks[rec.task_id] = tests
        return pass_at_k(tasks, ks)
