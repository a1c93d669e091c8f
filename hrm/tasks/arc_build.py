"""Build an ARC dataset in the official layout (``build_arc_dataset.py``'s output), with a seed.

What the official builder does, and so what this does (own code, same format and rules):

* every task becomes a *group*: the task itself plus up to ``num_aug`` distinct augmentations
  (:func:`~hrm.tasks.arc_augment.random_augmentations`), each a *puzzle* with its own identifier named
  ``{task}`` / ``{task}_t{t}_{perm}``; identifier 0 is ``<blank>``;
* ``train`` split: the demonstration pairs of every task, plus the test pairs of *training* tasks,
  each pair at a random canvas offset (translation augmentation) except one pair per puzzle left at
  (0, 0);
* ``test`` split: the test pairs of *evaluation* tasks, at (0, 0): what ``hrm-eval`` scores;
* ``identifiers.json`` at the root: id -> name, what ``hrm-export --identifiers`` records.

The draws come from ``numpy.random.default_rng(seed)``, so the same inputs and seed give the same
dataset (not the official files byte for byte: their order depends on the file system).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hrm.identifiers import BLANK
from hrm.tasks.arc import ArcRecord, ArcTask, encode_pair
from hrm.tasks.arc_augment import IDENTITY, Augmentation, random_augmentations
from hrm.tasks.dataset import SetArrays, write_official_sets

__all__ = ["ArcBuild", "build_arc_dataset"]


@dataclass
class ArcBuild:
    """What :func:`build_arc_dataset` wrote."""

    root: Path
    identifiers: list[str]
    train_examples: int
    test_examples: int
    augmentations: dict[str, int]  # task id -> distinct augmentations found (without the task itself)


def _group(record: ArcRecord, num_aug: int, rng: np.random.Generator) -> list[Augmentation]:
    pairs = [*record.train, *record.test]
    return [IDENTITY, *random_augmentations(pairs, num_aug, rng)]


def build_arc_dataset(out: str | Path, train_tasks: Sequence[ArcRecord], eval_tasks: Sequence[ArcRecord] = (), *,
                      num_aug: int = 1000, seed: int = 42, overwrite: bool = False) -> ArcBuild:
    """Write ``out/train``, ``out/test`` (when ``eval_tasks``) and ``out/identifiers.json``.

    ``train_tasks``: tasks learned completely (demonstrations and test pairs go to ``train``);
    ``eval_tasks``: tasks whose demonstrations are learned and whose test pairs are held out in
    ``test`` (their test outputs must be known). Raises ValueError naming a task without outputs or
    a task id given twice.
    """
    if num_aug < 0:
        raise ValueError(f"num_aug must be >= 0, got {num_aug}")
    seen: set[str] = set()
    for rec in (*train_tasks, *eval_tasks):
        if rec.task_id in seen:
            raise ValueError(f"task {rec.task_id} is given twice")
        seen.add(rec.task_id)
    for rec in eval_tasks:
        missing = [k for k, (_, o) in enumerate(rec.test) if o is None]
        if missing:
            raise ValueError(f"task {rec.task_id}: test[{missing[0]}] has no output; an evaluation split needs labels "
                             "(pass the solutions file)")
    for rec in train_tasks:
        if any(o is None for _, o in rec.test):
            raise ValueError(f"task {rec.task_id}: a training task needs its test outputs")
    rng = np.random.default_rng(seed)
    names = [BLANK]
    groups: list[tuple[ArcRecord, bool, list[tuple[int, ArcRecord]]]] = []
    for rec, is_eval in [*((r, False) for r in train_tasks), *((r, True) for r in eval_tasks)]:
        members = []
        for aug in _group(rec, num_aug, rng):
            members.append((len(names), rec.augmented(aug)))
            names.append(aug.name(rec.task_id))
        groups.append((rec, is_eval, members))

    def pack(puzzles: list[list[tuple[int, list[tuple[np.ndarray, np.ndarray]]]]]) -> SetArrays:
        """Groups of puzzles of encoded (input, label) examples -> the five official arrays."""
        inputs, labels, ids, pidx, gidx = [], [], [], [0], [0]
        for group in puzzles:
            for pid, examples in group:
                for i, o in examples:
                    inputs.append(i)
                    labels.append(o)
                ids.append(pid)
                pidx.append(len(inputs))
            gidx.append(len(ids))
        return SetArrays(np.stack(inputs), np.stack(labels), np.asarray(ids), np.asarray(pidx), np.asarray(gidx))

    train, test = [], []
    for rec, is_eval, members in groups:
        tr, te = [], []
        for pid, aug_rec in members:
            pairs = list(aug_rec.train) if is_eval else [*aug_rec.train, *aug_rec.test]
            at_origin = int(rng.integers(len(pairs)))
            tr.append((pid, [encode_pair(i, o, None if k == at_origin else rng) for k, (i, o) in enumerate(pairs)]))
            if is_eval:
                te.append((pid, [encode_pair(i, o) for i, o in aug_rec.test]))
        train.append(tr)
        if is_eval:
            test.append(te)
    task = ArcTask()
    root = Path(out)
    common = dict(vocab_size=task.vocab_size, num_puzzle_identifiers=len(names), task=task, overwrite=overwrite)
    tr_set = pack(train)
    te_set = pack(test) if test else None
    write_official_sets(root, "train", {"all": tr_set}, **common, identifiers=None if te_set else names)
    if te_set is not None:
        write_official_sets(root, "test", {"all": te_set}, **common, identifiers=names)
    augs = {rec.task_id: len(members) - 1 for rec, _, members in groups}
    return ArcBuild(root, names, len(tr_set), 0 if te_set is None else len(te_set), augs)
