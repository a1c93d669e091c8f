"""ARC pass@k on an official dataset folder, like the official ``arc_eval.ipynb`` (``hrm-eval`` on ARC).

The split holds every augmented copy of every task's test inputs (``identifiers.json`` at the dataset
root names them); the un-augmented copies give the labels. Every copy is solved through one
:class:`hrm.runtime.Scheduler` (:func:`hrm.tasks.arc_eval.drive`), mapped back and voted by the task's
own rule (:class:`hrm.tasks.arc_vote.ArcVoter`): pass@k counts a task when every test input's label is
among its top k. What ran is recorded under the names :func:`hrm.evaluation.accuracy.evaluate` uses
(:func:`~hrm.evaluation.accuracy.run_meta`), and ``mean_segments`` is the same quantity as there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hrm.errors import ParseError
from hrm.evaluation.accuracy import run_meta
from hrm.halting import HALTING_MODES
from hrm.identifiers import PuzzleIdentifiers, deployment_identifiers
from hrm.tasks.arc import crop
from hrm.tasks.arc_augment import Augmentation
from hrm.tasks.arc_eval import ProgressCallback, drive
from hrm.tasks.arc_vote import ArcVoter, grid_key, pass_at_k
from hrm.tasks.base import Puzzle


def evaluate_arc_dataset(session: Any, root: str | Path, split: str = "test", *,
                         haltings: Sequence[str] = HALTING_MODES, ks: Sequence[int] = (1, 2, 10),
                         max_tasks: int | None = None, max_segments: int | None = None, slots: int | None = None,
                         on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """pass@k of ``session`` on an official ARC dataset folder (the root or a split folder), per halting mode.

    With a deployment exported with ``--identifiers`` (possibly pruned), each copy's id is looked up by
    name and copies the deployment does not have are skipped (counted); without, the dataset's ids are used
    as they are. ``max_tasks``: only the first N tasks of the split. Returns ``{"meta": ..., "scores":
    {halting: {"pass@k": ..., "mean_segments": ..., "seconds": ...}}}``.
    """
    from hrm.tasks.dataset import read_official_split

    root = Path(root)
    if (root / "dataset.json").is_file():
        root, split = root.parent, root.name
    ds = read_official_split(root, split)
    if ds.identifiers is None:
        raise ParseError(str(root / "identifiers.json"), None, "missing: ARC pass@k needs the puzzle names of the "
                                                                "dataset build (identifiers.json beside the splits)")
    names = PuzzleIdentifiers(tuple(ds.identifiers), str(root / "identifiers.json"))
    dep_ids = deployment_identifiers(session.deployment.manifest)
    n_ids = session.config.num_puzzle_identifiers
    selected: list[tuple[str, Puzzle]] = []
    labels: dict[str, dict[tuple, tuple[np.ndarray, np.ndarray]]] = {}  # task -> input key -> (input, label)
    skipped = 0
    for p in ds.puzzles():
        name = names.names[p.puzzle_id]
        base, aug = Augmentation.parse(name)
        if base not in labels:
            if max_tasks is not None and len(labels) >= max_tasks:
                continue
            labels[base] = {}
        if aug.is_identity:
            inp = crop(p.tokens)
            labels[base][grid_key(inp)] = (inp, crop(p.label))
        pid = p.puzzle_id if dep_ids is None else dep_ids.id_of(name)
        if pid is None or pid >= n_ids:
            skipped += 1
            continue
        selected.append((name, Puzzle(p.tokens, None, p.source, pid)))
    scored = {t: v for t, v in labels.items() if v}
    policy = session.policy.with_(max_segments=max_segments)
    meta = {"dataset": str(root), "split": split, "tasks": len(scored),
            "tasks_without_label": len(labels) - len(scored), "n": len(selected), "skipped_puzzles": skipped,
            "ks": list(ks), **run_meta(session, policy, haltings)}
    report: dict[str, Any] = {"meta": meta, "scores": {}}
    for halting in haltings:
        voter = ArcVoter()
        segments: list[int] = []

        def collect(i: int, result: Any) -> None:
            if not isinstance(result, BaseException):
                voter.add_tokens(selected[i][0], selected[i][1].tokens, result.answer_tokens, result.q_halt[-1])
                segments.append(int(result.segments))

        stats = drive(session, ((i, p) for i, (_, p) in enumerate(selected)), collect,
                      slots=max(1, min(slots or session.batch, len(selected))), halting=policy.with_(halting),
                      on_progress=on_progress)
        per_task = {t: [(voter.ranked(t, inp), label) for inp, label in tests.values()] for t, tests in scored.items()}
        report["scores"][halting] = {**{f"pass@{k}": v for k, v in pass_at_k(per_task, ks).items()},
                                     "mean_segments": float(np.mean(segments)) if segments else 0.0,
                                     "seconds": round(stats["seconds"], 3)}
    return report
