"""Task accuracy of a deployed model, overall and per group, under fixed and ACT halting.

``hrm-parity`` asks "does the backend answer like PyTorch?"; this asks "how good is the model?" —
the numbers a model card reports (issue: Sudoku by difficulty bucket, maze exact-optimal):

* ``exact``: the answer equals the label on every non-PAD cell (official exact accuracy);
* ``valid``: the task's checker accepts the answer on its own (a complete legal Sudoku keeping the
  givens; a connected S->G path of shortest length). For a maze with two shortest paths a valid
  answer can differ from the label, so ``valid`` is the *exact-optimal* accuracy; for a
  unique-solution Sudoku the two are equal;
* ``mean_segments`` (and p50/max): segments used. Under ``fixed`` every puzzle runs the cap; under
  ``act`` the saving is ``1 - mean_segments / cap``.

Groups come from each puzzle's ``meta`` (``group_key``, default ``"bucket"``: the Sudoku difficulty
bucket "0" / "1-5" / "6+" set by the generator and by :func:`hrm.evaluation.datasets.load_puzzles` when
the dataset stores the solver's guess counts). Every halting mode is really run (no ACT answer is
derived from a fixed trace), on the same session, so the numbers are the runtime's own.
numpy only: any backend (``ort``, ``trt``, ``torch``) behind a :class:`hrm.runtime.Session`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hrm.evaluation.compare import accuracy
from hrm.halting import HALTING_MODES
from hrm.runtime.results import SolveResult

ALL = "all"


@dataclass
class Score:
    """One (group, halting) cell of the report."""

    n: int
    exact: float | None  # None when the puzzles carry no labels
    valid: float | None  # None when the deployment has no task checker
    mean_segments: float
    p50_segments: float
    max_segments: int


@dataclass
class EvalReport:
    """Scores per group (``"all"`` first, then groups in sorted order) and halting mode."""

    meta: dict[str, Any]
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)  # group -> halting -> Score

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta,
                "scores": {g: {h: asdict(s) for h, s in by_h.items()} for g, by_h in self.scores.items()}}

    def score(self, group: str = ALL, halting: str = "act") -> Score:
        try:
            return self.scores[group][halting]
        except KeyError:
            raise KeyError(f"no score for group {group!r} / halting {halting!r}; have "
                           f"{[(g, h) for g, by_h in self.scores.items() for h in by_h]}") from None


def score(results: Sequence[SolveResult]) -> Score:
    """Aggregate solve results (exact vs label, task validity, segments) into a :class:`Score`."""
    n = len(results)
    if n == 0:
        raise ValueError("no results to score")
    segs = np.array([r.segments for r in results])
    exact = accuracy([r.answer_tokens for r in results], [r.label for r in results])
    valid = None if any(r.valid is None for r in results) else float(np.mean([bool(r.valid) for r in results]))
    return Score(n=n, exact=exact, valid=valid, mean_segments=float(segs.mean()),
                 p50_segments=float(np.median(segs)), max_segments=int(segs.max()))


def group_of(puzzle: Any, group_key: str | None) -> str | None:
    """The puzzle's group label (``meta[group_key]`` as a string), or None."""
    if group_key is None:
        return None
    meta = getattr(puzzle, "meta", None) or {}
    value = meta.get(group_key)
    return None if value is None else str(value)


def evaluate(session: Any, puzzles: Sequence[Any], *, haltings: Sequence[str] = HALTING_MODES,
             group_key: str | None = "bucket", max_segments: int | None = None,
             on_chunk: Callable[[int], None] | None = None) -> EvalReport:
    """Solve ``puzzles`` once per halting mode on ``session`` and score them overall and per group.

    Puzzles without a group label only count in ``"all"``. ``on_chunk(n)`` reports progress.
    """
    if not puzzles:
        raise ValueError("no puzzles to evaluate")
    policy = session.policy.with_(max_segments=max_segments)
    results = {h: list(session.iter_solve(puzzles, halting=policy.with_(h), on_chunk=on_chunk)) for h in haltings}
    return build_report(run_meta(session, policy, haltings), puzzles, results, group_key)


def build_report(meta: dict[str, Any], puzzles: Sequence[Any], results: dict[str, Sequence[SolveResult]],
                 group_key: str | None) -> EvalReport:
    """Score per-puzzle ``results`` (halting -> one result per puzzle, in puzzle order) under ``meta``
    (:func:`run_meta`) into a report.

    Separate from solving so that results gathered elsewhere (``hrm-eval --ray``: chunks solved by
    actors, merged back in puzzle order) give exactly the report of a local run.
    """
    groups = [group_of(p, group_key) for p in puzzles]
    labels = sorted({g for g in groups if g is not None}, key=_group_order)
    report = EvalReport(meta={"n": len(puzzles), "group_key": group_key, "groups": labels, **meta})
    for halting, solved in results.items():
        if len(solved) != len(puzzles):
            raise ValueError(f"{halting}: {len(solved)} results for {len(puzzles)} puzzles")
        report.scores.setdefault(ALL, {})[halting] = score(solved)
        for label in labels:
            members = [r for r, g in zip(solved, groups) if g == label]
            report.scores.setdefault(label, {})[halting] = score(members)
    return report


def run_meta(session: Any, policy: Any, haltings: Sequence[str]) -> dict[str, Any]:
    """What ran, under the names every evaluation report uses (``hrm-eval``'s accuracy and ARC pass@k)."""
    ran = session.describe()
    return {"haltings": list(haltings), "max_segments": policy.max_segments, "batch": session.batch,
            "backend": ran["backend"], "device": ran["device"], "precision": ran["precision"],
            "fused": bool(ran.get("fused", False))}


def _group_order(label: str) -> tuple[int, float, str]:
    """Numeric-looking labels ("0", "1-5", "6+") sort by their leading number, others by name."""
    head = label.split("-")[0].rstrip("+")
    try:
        return (0, float(head), label)
    except ValueError:
        return (1, 0.0, label)
