"""The official ARC evaluation procedure over any runtime session: augment, solve, invert, vote, pass@k.

How HRM and TRM are evaluated on ARC (official ``build_arc_dataset.py``, ``arc_eval.ipynb``): a task
was trained under ~1000 augmentations, each its own puzzle identifier. At evaluation every test input
is solved once per augmented identifier - the input transformed the same way - and every prediction
is mapped back (:meth:`~hrm.tasks.arc_augment.Augmentation.invert`); identical answers pool their
votes and are ranked by count, then mean ``sigmoid(q_halt)`` (:mod:`hrm.tasks.arc_vote`). The top 2
are the ARC Prize's ``attempt_1`` / ``attempt_2``; pass@k counts a task when every test input's label
is among its top k.

:func:`solve_arc` does that for task records (``hrm-run`` on an ARC deployment); the evaluation layer's
:func:`hrm.evaluation.arc.evaluate_arc_dataset` for an official dataset folder, whose test split already
holds every augmented copy (``hrm-eval``). Both push every puzzle of every task through one
:class:`hrm.runtime.Scheduler` (:func:`drive`; continuous batching: a halted row takes the next puzzle,
whatever its task). The identifiers come from the deployment (``hrm-export --identifiers``); without them
a task can only be solved once, un-augmented, with the blank identifier 0, and the report says so.

Works for any model family: only tokens (``seq_len`` 900) and puzzle ids reach the session, so a TRM's
16-position puzzle prefix (``config.puzzle_len``) is the exported graphs' business.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm.errors import ParseError
from hrm.halting import HaltingPolicy
from hrm.identifiers import PuzzleIdentifiers, deployment_identifiers
from hrm.tasks.arc import ArcRecord, crop, encode_grid
from hrm.tasks.arc_augment import IDENTITY, Augmentation
from hrm.tasks.arc_vote import Candidate, grid_key, pass_at_k, solved_at, vote
from hrm.tasks.base import Puzzle

__all__ = ["Run", "plan_runs", "TestResult", "TaskResult", "ArcReport", "solve_arc", "drive", "write_submission",
           "save_task_png", "FROM_DEPLOYMENT", "NO_IDENTIFIERS_NOTE", "ATTEMPTS"]

#: ``identifiers=FROM_DEPLOYMENT``: use the names recorded by ``hrm-export --identifiers``
FROM_DEPLOYMENT = "deployment"
#: the ARC Prize scores two attempts per test input
ATTEMPTS = 2
NO_IDENTIFIERS_NOTE = ("the deployment has no puzzle identifiers (hrm-export --identifiers identifiers.json): each test "
                       "input runs once, un-augmented, with the blank identifier 0")
_UNKNOWN_TASK_NOTE = "no puzzle identifier for this task: solved once, un-augmented, with the blank identifier 0"

ResultCallback = Callable[[Any, Any], None]
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class Run:
    """One augmented copy of one test input: task (index into the records), test index, id, augmentation."""

    task: int
    test: int
    puzzle_id: int
    aug: Augmentation


def plan_runs(records: Sequence[ArcRecord], identifiers: PuzzleIdentifiers | None,
              max_augmentations: int | None = None) -> tuple[list[list[tuple[int, Augmentation]]], list[str | None]]:
    """Per task, the ``(puzzle id, augmentation)`` copies to solve (the un-augmented one first, then in
    identifier order, at most ``max_augmentations``) and a note when the task cannot be augmented."""
    if max_augmentations is not None and max_augmentations < 1:
        raise ValueError(f"max_augmentations must be >= 1, got {max_augmentations}")
    plans, notes = [], []
    for rec in records:
        runs = identifiers.for_task(rec.task_id) if identifiers is not None else []
        note = None
        if not runs:
            runs, note = [(0, IDENTITY)], (NO_IDENTIFIERS_NOTE if identifiers is None else _UNKNOWN_TASK_NOTE)
        plans.append(list(runs[:max_augmentations]))
        notes.append(note)
    return plans, notes


@dataclass
class TestResult:
    """The vote on one test input of one task."""

    index: int
    input: np.ndarray
    label: np.ndarray | None
    candidates: list[Candidate]
    runs: int  # augmented copies solved
    failed: int = 0  # copies whose run failed (non-finite numbers): no vote
    segments: int = 0  # segments over all copies

    @property
    def attempts(self) -> tuple[np.ndarray, ...]:
        """The ARC Prize's two attempts: the two best-ranked non-empty grids (an empty crop is no ARC
        grid), the first repeated when there is only one, ``[[0]]`` when the model produced none."""
        grids = [c.grid for c in self.candidates if c.grid.size]
        grids = grids or [np.zeros((1, 1), np.int64)]
        return tuple((grids + [grids[0]] * ATTEMPTS)[:ATTEMPTS])

    def solved(self, k: int) -> bool | None:
        """Label among the top ``k`` candidates (official ranking), or None without a label."""
        return None if self.label is None else solved_at(self.candidates, self.label, k)

    def to_dict(self, max_candidates: int = 10) -> dict[str, Any]:
        return {"test_index": self.index, "attempts": [a.tolist() for a in self.attempts],
                "label": None if self.label is None else self.label.tolist(), "runs": self.runs,
                "failed": self.failed, "mean_segments": self.segments / max(self.runs - self.failed, 1),
                "pass@1": self.solved(1), "pass@2": self.solved(2),
                "candidates": [{"grid": c.grid.tolist(), "count": c.count, "mean_q": round(c.mean_q, 6)}
                               for c in self.candidates[:max_candidates]]}


@dataclass
class TaskResult:
    """One task: its test inputs' votes, how many augmented copies each got, and why if only one."""

    task_id: str
    source: str
    tests: list[TestResult]
    note: str | None = None

    @property
    def labelled(self) -> bool:
        return all(t.label is not None for t in self.tests)

    def passed(self, k: int) -> bool | None:
        """Every test input solved within the top k (the official task criterion); None if unlabelled."""
        return all(t.solved(k) for t in self.tests) if self.labelled else None

    def submission(self) -> list[dict[str, list[list[int]]]]:
        """The task's ARC Prize entry: ``[{"attempt_1": grid, "attempt_2": grid}, ...]`` in test order."""
        return [{f"attempt_{i + 1}": a.tolist() for i, a in enumerate(t.attempts)} for t in self.tests]

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "source": self.source, "note": self.note,
                "pass@1": self.passed(1), "pass@2": self.passed(2), "tests": [t.to_dict() for t in self.tests]}


@dataclass
class ArcReport:
    """Every task's result plus what ran (``meta``: halting, copies, puzzles/s ...)."""

    tasks: list[TaskResult]
    meta: dict[str, Any] = field(default_factory=dict)

    def pass_at_k(self, ks: Sequence[int] = (1, 2)) -> dict[int, float] | None:
        """Over the labelled tasks (official criterion); None when no task is labelled."""
        labelled = [t for t in self.tasks if t.labelled]
        if not labelled:
            return None
        return pass_at_k({t.task_id: [(x.candidates, x.label) for x in t.tests] for t in labelled}, ks)

    def submission(self) -> dict[str, list[dict[str, list[list[int]]]]]:
        """The ARC Prize submission: ``{task_id: [{"attempt_1": grid, "attempt_2": grid}, ...]}``."""
        return {t.task_id: t.submission() for t in self.tasks}

    def summary(self) -> dict[str, Any]:
        scores = self.pass_at_k((1, 2))
        return {**self.meta, "tasks": len(self.tasks), "test_inputs": sum(len(t.tests) for t in self.tasks),
                "labelled_tasks": sum(t.labelled for t in self.tasks),
                "pass@1": None if scores is None else scores[1], "pass@2": None if scores is None else scores[2]}


# ---- the driver: continuous batching over one scheduler ----------------------------------------

def drive(session: Any, requests: Iterable[tuple[Any, Puzzle]], on_result: ResultCallback, *,
          slots: int | None = None, halting: str | HaltingPolicy | None = None, max_segments: int | None = None,
          on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Solve ``(request_id, puzzle)`` pairs through one :class:`hrm.runtime.Scheduler` on ``session``.

    Requests are pulled lazily (at most ``2 x slots`` queued: a million augmented copies never sit in
    memory at once); every finished one calls ``on_result(request_id, SolveResult)``, a failed one
    ``on_result(request_id, exception)``. ``halting`` / ``max_segments``: override the session's
    :class:`~hrm.halting.HaltingPolicy`. Returns ``puzzles``, ``segments`` (batch steps), ``seconds``.
    """
    from hrm.runtime import Scheduler

    sched = Scheduler(session, slots or session.batch, halting=halting, max_segments=max_segments)
    pending: dict[Any, Any] = {}
    source: Iterator[tuple[Any, Puzzle]] = iter(requests)
    exhausted, count = False, 0
    t0 = time.perf_counter()
    try:
        while True:
            while not exhausted and sched.pending < 2 * sched.slots:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                    break
                rid, puzzle = nxt
                pending[rid] = sched.submit(puzzle, request_id=rid)
                count += 1
            if not pending:
                break
            if sched.pending or sched.active:
                sched.step()
            done = [rid for rid, fut in pending.items() if fut.done()]
            for rid in done:
                fut = pending.pop(rid)
                exc = fut.exception()
                on_result(rid, exc if exc is not None else fut.result())
            if done and on_progress is not None:
                on_progress(len(done))
    finally:  # one open Scheduler per Session: free it for the next one, also when a callback raised
        sched.stop(drain=False, reason="drive() ended")
    return {"puzzles": count, "segments": sched.segments_run, "seconds": time.perf_counter() - t0}


def solve_arc(session: Any, records: Sequence[ArcRecord], *, identifiers: Any = FROM_DEPLOYMENT,
              max_augmentations: int | None = None, halting: str | None = None, max_segments: int | None = None,
              slots: int | None = None, sources: dict[str, str] | None = None,
              on_progress: ProgressCallback | None = None) -> ArcReport:
    """The official procedure on ``records`` with ``session`` (any backend); see the module docstring.

    ``identifiers``: the deployment's (default), a :class:`PuzzleIdentifiers`, or None (un-augmented,
    blank id). ``max_augmentations``: at most this many copies per test input (the un-augmented one
    first): the speed / accuracy trade-off of a small device. ``halting`` / ``max_segments``: override
    the session's halting policy. ``on_progress(n)``: n more puzzles done.
    """
    policy = session.policy.with_(halting, max_segments)
    if identifiers == FROM_DEPLOYMENT:
        identifiers = deployment_identifiers(session.deployment.manifest)
    plans, notes = plan_runs(records, identifiers, max_augmentations)
    runs: list[Run] = [Run(t, k, pid, aug) for t, rec in enumerate(records) for k in range(len(rec.test))
                       for pid, aug in plans[t]]
    votes: dict[tuple[int, int], list[tuple[np.ndarray, float]]] = {}
    failed: dict[tuple[int, int], int] = {}
    segments: dict[tuple[int, int], int] = {}

    def requests() -> Iterator[tuple[int, Puzzle]]:
        for i, run in enumerate(runs):
            rec = records[run.task]
            tokens = encode_grid(run.aug.apply(rec.test[run.test][0]))
            where = f"{rec.task_id}/test[{run.test}]" + ("" if run.aug.is_identity else f"/{run.aug.suffix}")
            yield i, Puzzle(tokens, None, where, run.puzzle_id)

    def collect(i: int, result: Any) -> None:
        run = runs[i]
        key = (run.task, run.test)
        if isinstance(result, BaseException):
            failed[key] = failed.get(key, 0) + 1
            return
        grid = run.aug.invert(crop(result.answer_tokens))
        votes.setdefault(key, []).append((grid, float(result.q_halt[-1])))
        segments[key] = segments.get(key, 0) + int(result.segments)

    stats = drive(session, requests(), collect, slots=slots, halting=policy, on_progress=on_progress)
    tasks = []
    for t, rec in enumerate(records):
        tests = [TestResult(k, inp, out, vote(votes.get((t, k), [])), len(plans[t]), failed.get((t, k), 0),
                            segments.get((t, k), 0)) for k, (inp, out) in enumerate(rec.test)]
        tasks.append(TaskResult(rec.task_id, (sources or {}).get(rec.task_id, ""), tests, notes[t]))
    backend = session.backend
    meta = {"identifiers": "none" if identifiers is None else len(identifiers),
            "max_augmentations": max_augmentations, **policy.describe(), "slots": slots or session.batch,
            "backend": backend.name, "device": backend.device, "precision": backend.precision,
            "puzzles": stats["puzzles"], "batch_segments": stats["segments"],
            "failed": sum(failed.values()), "seconds": round(stats["seconds"], 3),
            "puzzles_per_s": stats["puzzles"] / stats["seconds"] if stats["seconds"] > 0 else None}
    return ArcReport(tasks, meta)


def write_submission(path: str | Path, report: ArcReport) -> Path:
    """Write the ARC Prize submission JSON atomically."""
    import json

    from hrm.io import write_text_atomic

    write_text_atomic(path, json.dumps(report.submission()) + "\n")
    return Path(path)


def save_task_png(task: TaskResult, path: str | Path) -> Path:
    """One picture per task: a row per test input (input | attempt 1 | attempt 2 | expected), drawn with
    the ARC palette like the official notebook. Needs matplotlib (``pip install 'hrm-deploy[arc]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError:
        raise ParseError(str(path), None, "--png needs matplotlib: pip install 'hrm-deploy[arc]'") from None
    from hrm.io import atomic_path
    from hrm.tasks.arc import PALETTE

    cmap = ListedColormap([tuple(c / 255 for c in rgb) for rgb in PALETTE])
    rows = len(task.tests)
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.7 * rows), squeeze=False)
    for r, t in enumerate(task.tests):
        panels = [("input", t.input)] + [(f"attempt {i + 1}" + (" ✓" if t.label is not None
                                                                 and grid_key(a) == grid_key(t.label) else ""), a)
                                          for i, a in enumerate(t.attempts)] + [("expected", t.label)]
        for c, (title, grid) in enumerate(panels):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{task.task_id} test[{t.index}]\n{title}" if c == 0 else title, fontsize=9)
            if grid is None:
                ax.text(0.5, 0.5, "unknown", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.imshow(np.asarray(grid), cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return Path(path)
