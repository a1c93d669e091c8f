"""Per-puzzle results and batch summaries, for people (CLI) and programs (JSON).

A :class:`SolveResult` is built from a finished loop row plus the task: the decoded answer, the
task checker's verdict, segments used, q values per segment, timings, and optionally the per-segment
trace of answers (the paper's Fig. 7 view of how the answer is refined segment by segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hrm.halting import HaltingPolicy
from hrm.runtime.loop import RowRecord


@dataclass
class SolveResult:
    """The outcome of one puzzle."""

    request_id: Any
    source: str
    puzzle_id: int
    tokens: np.ndarray  # int32 [S], the input
    answer_tokens: np.ndarray  # int32 [S]
    segments: int
    q_halt: list[float]
    q_continue: list[float]
    timings: dict[str, float]  # milliseconds: latency (load -> answer), queue (submit -> load), per_segment
    answer: Any = None  # task.decode(answer_tokens), when the deployment has a task
    verdict: Any = None  # hrm.tasks.Verdict, when the deployment has a task
    label: np.ndarray | None = None
    trace: list[np.ndarray] | None = None  # answer tokens after each segment
    puzzle: Any = field(default=None, repr=False)
    policy: HaltingPolicy | None = field(default=None, repr=False)  # how the row was stopped

    @property
    def valid(self) -> bool | None:
        return None if self.verdict is None else bool(self.verdict.valid)

    @property
    def correct(self) -> bool | None:
        """Verdict's correctness, or exact match to the label (non-PAD cells) without a task."""
        if self.verdict is not None:
            return self.verdict.correct
        if self.label is None:
            return None
        return exact_match(self.answer_tokens, self.label)

    @property
    def solved(self) -> bool:
        """correct when a label is known, else valid (what the summary line counts)."""
        c = self.correct
        return bool(c) if c is not None else bool(self.valid)

    def to_dict(self, trace: bool = True) -> dict[str, Any]:
        """JSON-able record (one line of ``hrm-run --json``)."""
        d: dict[str, Any] = {
            "id": self.request_id, "source": self.source, "puzzle_id": self.puzzle_id,
            "answer": _jsonable(self.answer) if self.answer is not None else None,
            "answer_tokens": self.answer_tokens.tolist(),
            "valid": self.valid, "correct": self.correct,
            "reason": None if self.verdict is None else self.verdict.reason,
            "segments": self.segments,
            "q_halt": [round(v, 6) for v in self.q_halt], "q_continue": [round(v, 6) for v in self.q_continue],
            "timings_ms": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if trace and self.trace is not None:
            d["trace"] = [t.tolist() for t in self.trace]
        return d


def exact_match(answer: np.ndarray, label: np.ndarray) -> bool:
    """Official exact accuracy: every non-PAD (label != 0) cell equal."""
    label = np.asarray(label)
    mask = label != 0
    return bool(np.array_equal(np.asarray(answer)[mask], label[mask]))


def build_result(rec: RowRecord, task: Any = None, policy: HaltingPolicy | None = None) -> SolveResult:
    """Turn a finished loop row into a SolveResult (decode + check through the task if any)."""
    req = rec.request
    answer_tokens = np.asarray(rec.answer, np.int32)
    answer = verdict = None
    if task is not None:
        answer = task.decode(answer_tokens)
        puzzle = req.puzzle
        if puzzle is None:  # a bare token vector: judge it as an unlabelled puzzle of the task
            from hrm.tasks.base import Puzzle

            puzzle = Puzzle(req.tokens, req.label, req.source, req.puzzle_id)
        verdict = task.check(puzzle, answer_tokens)
    latency = (rec.finished - rec.loaded) * 1e3
    timings = {"latency": latency, "queue": max(0.0, (rec.loaded - req.submitted) * 1e3),
               "per_segment": rec.segment_seconds * 1e3 / max(rec.segments, 1)}
    return SolveResult(req.request_id, req.source, req.puzzle_id, req.tokens, answer_tokens, rec.segments,
                       rec.q_halt, rec.q_continue, timings, answer, verdict, req.label, rec.trace, req.puzzle, policy)


def summarize(results: Sequence[SolveResult], rejected: int = 0) -> dict[str, Any]:
    """Counts and percentiles for the summary line / JSON summary."""
    n = len(results)
    lat = np.array([r.timings["latency"] for r in results]) if n else np.zeros(0)
    valid = [r.valid for r in results if r.valid is not None]
    return {
        "total": n, "rejected": rejected,
        "solved": sum(r.solved for r in results),
        "valid": sum(bool(v) for v in valid) if valid else None,
        "mean_segments": float(np.mean([r.segments for r in results])) if n else 0.0,
        "p50_latency_ms": float(np.percentile(lat, 50)) if n else 0.0,
        "p90_latency_ms": float(np.percentile(lat, 90)) if n else 0.0,
    }


def summary_line(s: dict[str, Any]) -> str:
    """'solved 3 / valid 4 / total 5 | mean segments 7.2 | p50 latency 12.3 ms | 1 input rejected'."""
    valid = "-" if s["valid"] is None else s["valid"]
    line = (f"solved {s['solved']} / valid {valid} / total {s['total']} | mean segments {s['mean_segments']:.2f} | "
            f"p50 latency {s['p50_latency_ms']:.1f} ms")
    if s.get("rejected"):
        line += f" | {s['rejected']} input{'s' if s['rejected'] != 1 else ''} rejected"
    return line


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    return x
