"""Official HRM dataset folders: read them as Puzzles, write our generated data in the same layout.

Layout (``dataset/build_*_dataset.py`` in the official repo, read by its ``puzzle_dataset.py``)::

    <root>/identifiers.json                  optional: puzzle identifier -> name (ARC), shared by splits
    <root>/<split>/dataset.json              PuzzleDatasetMetadata (fields below)
    <root>/<split>/<set>__inputs.npy         [N, seq_len] tokens (uint8 in official data)
    <root>/<split>/<set>__labels.npy         [N, seq_len] tokens; ``ignore_label_id`` (0) = ignored
    <root>/<split>/<set>__puzzle_identifiers.npy  [P] int32, one per puzzle
    <root>/<split>/<set>__puzzle_indices.npy      [P+1] int32, examples of puzzle p: [pi[p], pi[p+1])
    <root>/<split>/<set>__group_indices.npy       [G+1] int32, puzzles of group g: [gi[g], gi[g+1])

A *puzzle* may hold several examples (ARC: all test inputs of one augmented task); a *group* holds
the augmented versions of one original puzzle (the trainer samples one puzzle per group).

Labels keep raw tokens in :class:`~hrm.tasks.base.Puzzle` (the official loader maps
``ignore_label_id`` to -100 only when batching): consumers mask ``label == ignore_label_id``.

We write one extra key, ``"task"`` (our task metadata), into ``dataset.json``; the official pydantic
model ignores unknown keys, and it lets us tell 4x4 Sudoku from 4x4 Maze (same seq_len and vocab).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hrm.errors import ParseError
from hrm.io import publish_dir, staging_dir, write_text_atomic
from hrm.tasks.base import Puzzle, Task

__all__ = [
    "FIELDS",
    "METADATA_FIELDS",
    "SetArrays",
    "OfficialSplit",
    "read_official_split",
    "write_official_split",
    "write_official_sets",
    "read_identifiers",
    "assign_puzzle_ids",
]

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
#: dataset.json fields and their JSON types (None allowed only for ignore_label_id)
METADATA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "pad_id": int,
    "ignore_label_id": (int, type(None)),
    "blank_identifier_id": int,
    "vocab_size": int,
    "seq_len": int,
    "num_puzzle_identifiers": int,
    "total_groups": int,
    "mean_puzzle_examples": (int, float),
    "sets": list,
}


@dataclass(frozen=True, eq=False)
class SetArrays:
    """The five arrays of one set (``inputs``/``labels`` may be read-only memory maps)."""

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def example_puzzles(self) -> np.ndarray:
        """Puzzle index of every example ([N] int64)."""
        counts = np.asarray(np.diff(np.asarray(self.puzzle_indices, dtype=np.int64)), dtype=np.int64)
        return np.repeat(np.arange(counts.size), counts)


@dataclass(frozen=True, eq=False)
class OfficialSplit:
    """One split of a dataset folder: metadata, per-set arrays, identifier names if present."""

    root: Path
    split: str
    metadata: dict[str, Any]
    sets: dict[str, SetArrays]
    identifiers: list[str] | None = None
    _task: Task | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets.values())

    # -- the split as one set of arrays (what most consumers want: there is one set, "all") -----
    @property
    def merged(self) -> SetArrays:
        """All sets as one :class:`SetArrays`, in ``metadata["sets"]`` order, indices re-based.

        With a single set (every official builder writes only ``"all"``) its arrays are returned
        as they are (memory maps stay memory maps); several sets are concatenated into memory.
        """
        sets = list(self.sets.values())
        if len(sets) == 1:
            return sets[0]
        n_off = p_off = 0
        pidx, gidx = [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
        for s in sets:
            pidx.append(s.puzzle_indices[1:].astype(np.int64) + n_off)
            gidx.append(s.group_indices[1:].astype(np.int64) + p_off)
            n_off += len(s)
            p_off += s.puzzle_identifiers.size
        return SetArrays(
            np.concatenate([s.inputs for s in sets]),
            np.concatenate([s.labels for s in sets]),
            np.concatenate([s.puzzle_identifiers for s in sets]),
            np.concatenate(pidx),
            np.concatenate(gidx),
        )

    @property
    def inputs(self) -> np.ndarray:
        """[N, seq_len] input tokens of every example (see :attr:`merged`)."""
        return self.merged.inputs

    @property
    def labels(self) -> np.ndarray:
        """[N, seq_len] label tokens, raw: ``ignore_label_id`` marks ignored positions."""
        return self.merged.labels

    @property
    def puzzle_identifiers(self) -> np.ndarray:
        """[P] identifier of each puzzle (one puzzle may hold several examples)."""
        return self.merged.puzzle_identifiers

    @property
    def puzzle_indices(self) -> np.ndarray:
        """[P+1] example offsets of the puzzles."""
        return self.merged.puzzle_indices

    @property
    def group_indices(self) -> np.ndarray:
        """[G+1] puzzle offsets of the groups."""
        return self.merged.group_indices

    def example_identifiers(self) -> np.ndarray:
        """[N] int32 puzzle identifier of every example (what the model is fed with each row)."""
        m = self.merged
        return np.asarray(m.puzzle_identifiers, dtype=np.int32)[m.example_puzzles()]

    @property
    def task(self) -> Task | None:
        """The task these tokens belong to: from our ``"task"`` key, else guessed from seq_len and
        vocab (Sudoku 9x9, Maze 30x30, ARC); None when ambiguous or unknown."""
        return self._task

    def puzzles(self, set_name: str | None = None) -> Iterator[Puzzle]:
        """Every example as a Puzzle (lazily; memory maps stay on disk until read).

        ``source`` is ``"<set file>:<row>"`` (0-based row of the ``inputs`` array); ``puzzle_id`` is
        the official identifier; ``meta`` has ``set``, ``index``, ``puzzle_index``, ``group_index``
        and ``name`` (from identifiers.json, when present).
        """
        names = [set_name] if set_name is not None else list(self.sets)
        for name in names:
            if name not in self.sets:
                raise KeyError(f"no set {name!r} in {self.root / self.split} (sets: {list(self.sets)})")
            s = self.sets[name]
            ex_puzzle = s.example_puzzles()
            group_sizes = np.asarray(np.diff(np.asarray(s.group_indices, dtype=np.int64)), dtype=np.int64)
            puzzle_group = np.repeat(np.arange(group_sizes.size), group_sizes)
            path = self.root / self.split / f"{name}__inputs.npy"
            for i in range(len(s)):
                p = int(ex_puzzle[i])
                pid = int(s.puzzle_identifiers[p])
                meta: dict[str, Any] = {"set": name, "index": i, "puzzle_index": p, "group_index": int(puzzle_group[p])}
                if self.identifiers is not None and pid < len(self.identifiers):
                    meta["name"] = self.identifiers[pid]
                yield Puzzle(np.asarray(s.inputs[i]), np.asarray(s.labels[i]), f"{path}:{i}", pid, meta)


def _guess_task(meta: Mapping[str, Any]) -> Task | None:
    from hrm.tasks import get_task, task_from_metadata

    if isinstance(meta.get("task"), dict):
        return task_from_metadata(meta["task"])
    key = (meta.get("seq_len"), meta.get("vocab_size"))
    guesses = {(81, 11): ("sudoku", {"size": 9}), (900, 12): ("arc", {}), (900, 6): ("maze", {"size": 30})}
    if key in guesses:
        name, params = guesses[key]
        return get_task(name, **params)
    return None


def _validate_metadata(meta: Any, path: str) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise ParseError(path, None, f"expected a JSON object, got {type(meta).__name__}")
    for name, typ in METADATA_FIELDS.items():
        if name not in meta:
            raise ParseError(path, None, f"missing field {name!r}")
        v = meta[name]
        if isinstance(v, bool) or not isinstance(v, typ):
            raise ParseError(path, None, f"field {name!r} has the wrong type: {v!r}")
    for name in ("vocab_size", "seq_len", "num_puzzle_identifiers"):
        if meta[name] < 1:
            raise ParseError(path, None, f"field {name!r} must be >= 1, got {meta[name]}")
    if not meta["sets"] or not all(isinstance(s, str) and s and "/" not in s for s in meta["sets"]):
        raise ParseError(path, None, f"field 'sets' must be a non-empty list of names, got {meta['sets']!r}")
    return meta


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise ParseError(str(path), None, "missing array file")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ParseError(str(path), None, f"not a readable .npy array: {e}") from None


def _validate_set(arrs: dict[str, np.ndarray], meta: dict[str, Any], split_dir: Path, name: str,
                  check_values: bool) -> SetArrays:
    def where(f: str) -> str:
        return str(split_dir / f"{name}__{f}.npy")

    for f in FIELDS:
        if not np.issubdtype(arrs[f].dtype, np.integer):
            raise ParseError(where(f), None, f"expected integers, found dtype {arrs[f].dtype}")
    inputs, labels = arrs["inputs"], arrs["labels"]
    seq_len = meta["seq_len"]
    for f, a in (("inputs", inputs), ("labels", labels)):
        if a.ndim != 2 or a.shape[1] != seq_len:
            raise ParseError(where(f), None, f"expected shape [N, {seq_len}] (seq_len), found {list(a.shape)}")
    if labels.shape[0] != inputs.shape[0]:
        raise ParseError(where("labels"), None, f"{labels.shape[0]} rows, inputs has {inputs.shape[0]}")
    ids, pidx, gidx = arrs["puzzle_identifiers"], arrs["puzzle_indices"], arrs["group_indices"]
    for f, a in (("puzzle_identifiers", ids), ("puzzle_indices", pidx), ("group_indices", gidx)):
        if a.ndim != 1:
            raise ParseError(where(f), None, f"expected a 1-D array, found shape {list(a.shape)}")
    n, p = inputs.shape[0], ids.shape[0]
    if pidx.size != p + 1 or (p + 1 and (pidx[0] != 0 or pidx[-1] != n)) or np.any(np.diff(pidx) < 0):
        raise ParseError(
            where("puzzle_indices"), None,
            f"expected {p + 1} non-decreasing offsets from 0 to {n} (one per puzzle + 1), "
            f"found {pidx.size} values" + (f" from {pidx[0]} to {pidx[-1]}" if pidx.size else ""),
        )
    if gidx.size < 1 or gidx[0] != 0 or gidx[-1] != p or np.any(np.diff(gidx) < 0):
        raise ParseError(
            where("group_indices"), None,
            f"expected non-decreasing offsets from 0 to {p} (the number of puzzles)"
            + (f", found {gidx.size} values from {gidx[0]} to {gidx[-1]}" if gidx.size else ", found none"),
        )
    if p and (ids.min() < 0 or ids.max() >= meta["num_puzzle_identifiers"]):
        raise ParseError(
            where("puzzle_identifiers"), None,
            f"identifiers must be in 0..{meta['num_puzzle_identifiers'] - 1} (num_puzzle_identifiers), "
            f"found {int(ids.min())}..{int(ids.max())}",
        )
    if check_values and n:
        for f, a in (("inputs", inputs), ("labels", labels)):
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or hi >= meta["vocab_size"]:
                raise ParseError(
                    where(f), None, f"tokens must be in 0..{meta['vocab_size'] - 1} (vocab_size), found {lo}..{hi}"
                )
    return SetArrays(inputs, labels, ids, pidx, gidx)


def read_identifiers(root: str | os.PathLike) -> list[str] | None:
    """``<root>/identifiers.json`` (identifier -> puzzle name), or None when the file is absent."""
    path = Path(root) / "identifiers.json"
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ParseError(str(path), e.lineno, f"invalid JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ParseError(str(path), None, "expected a JSON list of names")
    return names


def read_official_split(
    root: str | os.PathLike, split: str = "test", *, mmap: bool = True, check_values: bool = True
) -> OfficialSplit:
    """Load and validate ``<root>/<split>``; every inconsistency is a ParseError naming the file.

    ``mmap``: memory-map inputs/labels (ARC test splits are hundreds of MB). ``check_values``: also
    verify every token is below ``vocab_size`` (reads the arrays once).
    """
    root = Path(root)
    split_dir = root / split
    meta_path = split_dir / "dataset.json"
    if not meta_path.is_file():
        raise ParseError(str(meta_path), None, f"missing: {split_dir} is not an official dataset split")
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ParseError(str(meta_path), e.lineno, f"invalid JSON: {e.msg} at column {e.colno}") from None
    meta = _validate_metadata(raw, str(meta_path))
    sets = {}
    for name in meta["sets"]:
        arrs = {f: _load_array(split_dir / f"{name}__{f}.npy", mmap and f in ("inputs", "labels")) for f in FIELDS}
        sets[name] = _validate_set(arrs, meta, split_dir, name, check_values)
    total_groups = sum(s.group_indices.size - 1 for s in sets.values())
    if total_groups != meta["total_groups"]:
        msg = f"total_groups is {meta['total_groups']}, the arrays have {total_groups}"
        raise ParseError(str(meta_path), None, msg)
    try:
        task = _guess_task(meta)
    except Exception as e:  # a malformed "task" key is our own extension: name it
        raise ParseError(str(meta_path), None, f"field 'task': {e}") from None
    if task is not None and (task.seq_len != meta["seq_len"] or task.vocab_size != meta["vocab_size"]):
        raise ParseError(
            str(meta_path), None,
            f"field 'task' ({task.name}) has seq_len {task.seq_len} / vocab {task.vocab_size}, "
            f"the split has {meta['seq_len']} / {meta['vocab_size']}",
        )
    return OfficialSplit(root, split, meta, sets, read_identifiers(root), task)


def _token_dtype(vocab_size: int) -> type:
    return np.uint8 if vocab_size <= 256 else np.int32


def write_official_sets(
    root: str | os.PathLike,
    split: str,
    sets: Mapping[str, SetArrays],
    *,
    vocab_size: int,
    num_puzzle_identifiers: int | None = None,
    pad_id: int = 0,
    ignore_label_id: int | None = 0,
    blank_identifier_id: int = 0,
    task: Task | None = None,
    identifiers: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``<root>/<split>`` from complete per-set arrays, atomically; returns the split dir.

    Everything is written into a temporary directory beside the target, validated by reading it
    back, then renamed into place: a crash never leaves a half-written split under its real name.
    With ``overwrite=True`` an existing split is replaced (moved aside, then deleted). Inputs and
    labels are stored as uint8 like the official builders (int32 if vocab_size > 256).
    """
    root = Path(root)
    target = root / split
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    if not sets:
        raise ValueError("no sets to write")
    seq_len = None
    n_examples = n_puzzles = n_groups = 0
    max_id = 0
    for name, s in sets.items():
        if s.inputs.ndim != 2:
            raise ValueError(f"set {name!r}: inputs must be [N, seq_len], got shape {s.inputs.shape}")
        seq_len = s.inputs.shape[1] if seq_len is None else seq_len
        if s.inputs.shape[1] != seq_len:
            raise ValueError(f"set {name!r}: seq_len {s.inputs.shape[1]} differs from {seq_len}")
        n_examples += len(s)
        n_puzzles += s.puzzle_identifiers.size
        n_groups += s.group_indices.size - 1
        if s.puzzle_identifiers.size:
            max_id = max(max_id, int(s.puzzle_identifiers.max()))
    assert seq_len is not None
    if task is not None and (task.seq_len != seq_len or task.vocab_size != vocab_size):
        raise ValueError(
            f"task {task.name} has seq_len {task.seq_len}/vocab {task.vocab_size}, data {seq_len}/{vocab_size}"
        )
    if num_puzzle_identifiers is None:
        num_puzzle_identifiers = max(max_id + 1, blank_identifier_id + 1, len(identifiers or ()))
    meta: dict[str, Any] = {
        "pad_id": int(pad_id),
        "ignore_label_id": None if ignore_label_id is None else int(ignore_label_id),
        "blank_identifier_id": int(blank_identifier_id),
        "vocab_size": int(vocab_size),
        "seq_len": int(seq_len),
        "num_puzzle_identifiers": int(num_puzzle_identifiers),
        "total_groups": int(n_groups),
        "mean_puzzle_examples": float(n_examples / n_puzzles) if n_puzzles else 0.0,
        "sets": list(sets),
    }
    if task is not None:
        meta["task"] = task.metadata()
    root.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(root, f".{split}.partial-")
    try:
        tmp = staging / split
        tmp.mkdir()
        tdt = _token_dtype(vocab_size)
        for name, s in sets.items():
            arrays = {
                "inputs": np.asarray(s.inputs).astype(tdt),
                "labels": np.asarray(s.labels).astype(tdt),
                "puzzle_identifiers": np.asarray(s.puzzle_identifiers).astype(np.int32),
                "puzzle_indices": np.asarray(s.puzzle_indices).astype(np.int32),
                "group_indices": np.asarray(s.group_indices).astype(np.int32),
            }
            for f, a in arrays.items():
                np.save(tmp / f"{name}__{f}.npy", a, allow_pickle=False)
        (tmp / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
        try:  # validate with our reader before publishing
            read_official_split(staging, split, mmap=False)
        except ParseError as e:
            raise ValueError(f"refusing to write an inconsistent split: {e}") from None
        publish_dir(tmp, target, replace=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if identifiers is not None:
        write_text_atomic(root / "identifiers.json", json.dumps(list(identifiers)))
    return target


def write_official_split(
    root: str | os.PathLike,
    split: str,
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_identifiers: np.ndarray | None = None,
    *,
    puzzle_indices: np.ndarray | None = None,
    group_indices: np.ndarray | None = None,
    set_name: str = "all",
    vocab_size: int | None = None,
    task: Task | None = None,
    num_puzzle_identifiers: int | None = None,
    pad_id: int = 0,
    ignore_label_id: int | None = 0,
    blank_identifier_id: int = 0,
    identifiers: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one set (default ``"all"``, as the official builders) of ``<root>/<split>``.

    Defaults match the Sudoku/Maze builders: each example is its own puzzle
    (``puzzle_indices = 0..N``), each puzzle its own group, identifier 0 for all
    (``puzzle_identifiers=None``). ``vocab_size`` defaults to the task's (``task`` is recorded in
    dataset.json), else to ``max token + 1``. See :func:`write_official_sets` for atomicity.
    """
    inputs = np.asarray(inputs)
    labels = np.asarray(labels)
    if inputs.ndim != 2 or labels.shape != inputs.shape:
        raise ValueError(f"inputs and labels must both be [N, seq_len], got {inputs.shape} and {labels.shape}")
    n = inputs.shape[0]
    if puzzle_indices is None:
        puzzle_indices = np.arange(n + 1)
    puzzle_indices = np.asarray(puzzle_indices)
    p = puzzle_indices.size - 1
    if puzzle_identifiers is None:
        puzzle_identifiers = np.full(p, blank_identifier_id)
    puzzle_identifiers = np.asarray(puzzle_identifiers)
    if puzzle_identifiers.shape != (p,):
        raise ValueError(
            f"puzzle_identifiers must have one entry per puzzle ({p}), got shape {puzzle_identifiers.shape}"
        )
    if group_indices is None:
        group_indices = np.arange(p + 1)
    if vocab_size is None:
        if task is not None:
            vocab_size = task.vocab_size
        else:
            vocab_size = int(max(inputs.max(initial=0), labels.max(initial=0))) + 1
    s = SetArrays(inputs, labels, puzzle_identifiers, puzzle_indices, np.asarray(group_indices))
    return write_official_sets(
        root, split, {set_name: s}, vocab_size=vocab_size, num_puzzle_identifiers=num_puzzle_identifiers,
        pad_id=pad_id, ignore_label_id=ignore_label_id, blank_identifier_id=blank_identifier_id,
        task=task, identifiers=identifiers, overwrite=overwrite,
    )


def assign_puzzle_ids(puzzles: Sequence[Puzzle], identifiers: Sequence[str] | Mapping[str, int]) -> list[Puzzle]:
    """Set ``puzzle_id`` from ``meta["task_id"]`` (ARC) using identifiers.json names (or a name ->
    id mapping). Raises KeyError naming a task the model was not trained with."""
    table = identifiers if isinstance(identifiers, Mapping) else {n: i for i, n in enumerate(identifiers)}
    out = []
    for p in puzzles:
        name = str(p.meta.get("task_id"))
        if name not in table:
            raise KeyError(f"{p.source}: task {name!r} has no puzzle identifier in this model")
        out.append(replace(p, puzzle_id=int(table[name])))
    return out
