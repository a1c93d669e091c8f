"""Which task a published checkpoint was trained on, read from the data path in its ``all_config.yaml``.

The official trainers record *where* the dataset was (HRM: ``data_path: data/sudoku-extreme-1k-aug-1000``;
TRM: ``data_paths: [data/arc1concept-aug-1000]``) but not its sizes: ``seq_len``, ``vocab_size`` and
``num_puzzle_identifiers`` live in the dataset's ``test/dataset.json``, which a downloaded checkpoint does
not come with. The official builders (``dataset/build_*_dataset.py`` of sapientinc/HRM and
SamsungSAILMontreal/TinyRecursiveModels) name their output folders after the task, and each task fixes
the sizes:

| folder name (last path component) | builder | task | seq_len | vocab | puzzle ids |
|---|---|---|---|---|---|
| ``sudoku-*`` (sudoku-extreme-full, sudoku-extreme-1k-aug-1000, sudoku-hard-full) | build_sudoku_dataset | sudoku 9x9 | 81 | 11 | 1 |
| ``maze-NxN-*`` (maze-30x30-hard-1k) | build_maze_dataset | maze NxN | N*N | 6 | 1 |
| ``arc*`` (arc-aug-1000, arc-2-aug-1000, arc1concept-aug-1000, arc2concept-aug-1000) | build_arc_dataset | arc | 900 | 12 | one per augmented puzzle: the ``puzzle_emb.weights`` rows |

Only ``seq_len`` is taken from the task: vocab and puzzle ids are in the weights' shapes, and the task's
vocab is checked against them (a mismatch means the name does not fit and is an error, not a guess).
:func:`official_sizing` is the one place that orders the sources of an official checkpoint's sizes
(dataset.json, ``--seq-len``, ``--task`` or the inferred task, tensor shapes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hrm.errors import ConfigError
from hrm.tasks import Task, describe_task, get_task, task_mismatch

#: (folder-name pattern, task factory): the official builders' output folders, see the module docstring
DATASET_NAMES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Task]], ...] = (
    (re.compile(r"^sudoku-", re.I), lambda m: get_task("sudoku", size=9)),
    (re.compile(r"^maze-(\d+)x\1(-|$)", re.I), lambda m: get_task("maze", size=int(m[1]))),
    (re.compile(r"^arc", re.I), lambda m: get_task("arc")),
)


@dataclass(frozen=True)
class InferredTask:
    """A task read from a config's data path(s), with where it came from (for the user and the manifest)."""

    task: dict[str, Any]  # Task.metadata()
    field: str  # "data_path" | "data_paths"
    data_path: str

    def describe(self) -> str:
        return (f"task {describe_task(self.task)} inferred from {self.field} {self.data_path} "
                f"(seq_len {self.task['seq_len']}, vocab {self.task['vocab_size']})")


def data_paths(config: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``(field, paths)`` of an official config: HRM's ``data_path`` or TRM's ``data_paths`` list."""
    if config.get("data_paths"):
        value = config["data_paths"]
        return "data_paths", [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if config.get("data_path"):
        return "data_path", [str(config["data_path"])]
    return "data_path", []


def task_for_data_path(path: str) -> Task | None:
    """The task an official builder's output folder implies, or None for a name no builder writes."""
    name = PurePosixPath(str(path).replace("\\", "/").rstrip("/")).name
    for pattern, make in DATASET_NAMES:
        match = pattern.match(name)
        if match:
            return make(match)
    return None


def infer_task(config: Mapping[str, Any], source: str = "<config>") -> InferredTask | None:
    """The task named by ``config``'s data path(s); None when absent or unknown. Several paths naming
    different tasks raise :class:`ConfigError` (the sizes would be ambiguous)."""
    field, paths = data_paths(config)
    found = [(p, task_for_data_path(p)) for p in paths]
    known = [(p, t) for p, t in found if t is not None]
    if not known or len(known) < len(found):
        return None
    metas = {describe_task(t.metadata()): p for p, t in known}
    if len(metas) > 1:
        raise ConfigError(f"{source}: {field} name different tasks ({', '.join(f'{p}: {d}' for d, p in metas.items())}); "
                          "pass --task")
    return InferredTask(known[0][1].metadata(), field, ", ".join(p for p, _ in known))


def task_metadata(name: str, params: Sequence[str] = ()) -> dict[str, Any]:
    """``--task NAME --task-param KEY=VALUE ...`` -> the task's metadata (integers parsed)."""
    kwargs: dict[str, Any] = {}
    for kv in params:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise ConfigError(f"--task-param {kv!r}: expected KEY=VALUE (e.g. size=9)")
        kwargs[key] = int(value) if value.lstrip("-").isdigit() else value
    return get_task(name, **kwargs).metadata()


@dataclass(frozen=True)
class OfficialSizing:
    """Where an official checkpoint's dataset sizes come from, decided once, in this order:

    1. ``dataset_json`` passed by the user, else the dataset's own ``<data_path>/test/dataset.json`` when
       it sits where the config says (training machines) -- unless ``--seq-len`` is given;
    2. ``--seq-len``;
    3. the task: ``--task``, else the one the data path names (:func:`infer_task`): its seq_len;
    4. the weights' shapes (vocab, puzzle ids; seq_len only with learned positions): always, for the rest.

    The task recorded in the checkpoint is ``--task`` or the inferred one, once checked against the
    resulting config (:meth:`settle`).
    """

    source: str  # the all_config.yaml, for messages
    dataset_json: Path | None
    seq_len: int | None  # the override handed to load_official_config
    task: dict[str, Any] | None
    task_given: bool  # --task (a mismatch is an error) vs inferred
    inferred: InferredTask | None
    sized_by_task: bool  # the task set seq_len (nothing else did)

    @property
    def overrides(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len} if self.seq_len is not None else {}

    def settle(self, config: Any) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """(task to record, sentences saying what was inferred) for the config these sizes produced."""
        notes = (f"sizes from {self.dataset_json}",) if self.dataset_json is not None else ()
        if self.task is None:
            return None, notes
        bad = task_mismatch(self.task, config)
        if not bad:
            said = f"task {describe_task(self.task)} (--task)" if self.task_given else self.inferred.describe()  # type: ignore[union-attr]
            return self.task, notes + (said,)
        if self.task_given:
            raise ConfigError(f"{self.source}: --task {describe_task(self.task)} does not fit this checkpoint "
                              f"({', '.join(bad)})")
        if self.sized_by_task:
            raise ConfigError(f"{self.source}: {self.inferred.describe()}, which does not fit the weights "  # type: ignore[union-attr]
                              f"({', '.join(bad)}); pass --task, --seq-len or --dataset-json")
        return None, notes + (f"no task recorded: {self.inferred.data_path} names {describe_task(self.task)}, "  # type: ignore[union-attr]
                              f"which does not fit ({', '.join(bad)})",)


def official_sizing(config_path: Path, raw: Mapping[str, Any], *, dataset_json: str | Path | None = None,
                    seq_len: int | None = None, task: Mapping[str, Any] | None = None) -> OfficialSizing:
    """Decide :class:`OfficialSizing` for the official config at ``config_path`` (parsed: ``raw``)."""
    inferred = infer_task(raw, str(config_path)) if task is None else None
    if dataset_json is None and seq_len is None:
        for path in data_paths(raw)[1]:
            cand = Path(path) / "test" / "dataset.json"
            cand = cand if cand.is_absolute() else config_path.parent / cand
            if cand.is_file():
                dataset_json = cand
                break
    chosen = dict(task) if task is not None else (inferred.task if inferred is not None else None)
    sized_by_task = dataset_json is None and seq_len is None and chosen is not None
    if sized_by_task:
        seq_len = int(chosen["seq_len"])  # type: ignore[index]
    return OfficialSizing(str(config_path), Path(dataset_json) if dataset_json is not None else None, seq_len,
                          chosen, task is not None, inferred, sized_by_task)
