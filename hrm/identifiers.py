"""Puzzle identifiers: which row of the puzzle embedding belongs to which (augmented) puzzle.

An official dataset build writes ``identifiers.json``: a JSON list whose entry ``i`` names identifier
``i`` (``"<blank>"`` at 0, then e.g. ``"0a1b2c3d"``, ``"0a1b2c3d_t5_0312456789"``: see
:mod:`hrm.tasks.arc_augment`). The checkpoint's ``puzzle_emb.weights`` has one row per entry. The
checkpoint alone does not say which row is which task, so a deployment that should run the official
ARC procedure must carry the names: ``hrm-export --identifiers`` stores them beside the graphs.

Edge-sized embeddings: the official ARC-2 checkpoint's table is 1,045,829 x 512 fp32 (2.1 GB), almost
all of it for tasks a device will never see. :func:`select_tasks` keeps the rows of chosen tasks (and
the blank row 0) and renumbers them 0..n-1; the deployment records the kept names in the new order
plus ``rows`` (new id -> original row), so a reference model built from the full checkpoint (the
``torch`` backend, parity) can make the same selection (:func:`select_rows`).

numpy + stdlib only (the runtime reads this on a Jetson).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from hrm.errors import ManifestError, ParseError
from hrm.io import atomic_path, sha256_file, write_text_atomic

__all__ = ["BLANK", "PuzzleIdentifiers", "Selection", "select_tasks", "select_rows", "write_deployment_identifiers",
           "deployment_identifiers", "deployment_rows", "IDENTIFIERS_FILE", "ROWS_FILE"]

BLANK = "<blank>"
IDENTIFIERS_FILE = "identifiers.json"
ROWS_FILE = "identifier_rows.npy"


@dataclass(frozen=True, eq=False)
class PuzzleIdentifiers:
    """The id -> name table of one dataset build (or of a pruned deployment); id 0 is the blank one."""

    names: tuple[str, ...]
    source: str = "<identifiers>"

    def __post_init__(self) -> None:
        if not self.names:
            raise ParseError(self.source, None, "no identifiers (expected at least the blank identifier 0)")
        seen: dict[str, int] = {}
        for i, n in enumerate(self.names):
            if not isinstance(n, str):
                raise ParseError(self.source, None, f"entry {i} is {n!r}, expected a puzzle name (string)")
            if n in seen:
                raise ParseError(self.source, None, f"entry {i} repeats the name {n!r} of entry {seen[n]}")
            seen[n] = i
        object.__setattr__(self, "_index", seen)

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "PuzzleIdentifiers":
        """Read an ``identifiers.json`` (official format: a JSON list of names, index = identifier)."""
        from hrm.tasks.base import read_text

        text = read_text(path)
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ParseError(str(path), e.lineno, f"invalid JSON: {e.msg} at column {e.colno}") from None
        if not isinstance(names, list):
            raise ParseError(str(path), None, f"expected a JSON list of puzzle names, got {type(names).__name__}")
        return cls(tuple(names), str(path))

    def to_json(self) -> str:
        return json.dumps(list(self.names))

    def id_of(self, name: str) -> int | None:
        """The identifier of ``name``, or None when this table has no such puzzle."""
        return self._index.get(name)  # type: ignore[attr-defined]

    @cached_property
    def by_task(self) -> dict[str, list[tuple[int, Any]]]:
        """Base task id -> ``[(identifier, Augmentation), ...]``, the un-augmented one first, then by id."""
        from hrm.tasks.arc_augment import Augmentation

        out: dict[str, list[tuple[int, Any]]] = {}
        for i, name in enumerate(self.names):
            if i == 0:
                continue
            base, aug = Augmentation.parse(name)
            out.setdefault(base, []).append((i, aug))
        for runs in out.values():
            runs.sort(key=lambda r: (not r[1].is_identity, r[0]))
        return out

    def for_task(self, task_id: str) -> list[tuple[int, Any]]:
        """``[(identifier, Augmentation), ...]`` of one task (empty when the model never saw it)."""
        return self.by_task.get(task_id, [])


@dataclass(frozen=True, eq=False)
class Selection:
    """The rows kept for a set of tasks: ``rows[new id] = original id`` (0 first), their names."""

    rows: np.ndarray
    identifiers: PuzzleIdentifiers
    tasks: tuple[str, ...]
    missing: tuple[str, ...] = field(default=())

    @property
    def count(self) -> int:
        return int(self.rows.size)


def select_tasks(identifiers: PuzzleIdentifiers, task_ids: Iterable[str]) -> Selection:
    """Keep identifier 0 and every identifier (augmented or not) of ``task_ids``, in original id order.

    Tasks with no identifier are listed in ``missing`` (the caller decides whether that is an error).
    """
    wanted = list(dict.fromkeys(str(t) for t in task_ids))
    index = identifiers.by_task
    missing = tuple(t for t in wanted if t not in index)
    rows = sorted({0, *(i for t in wanted for i, _ in index.get(t, []))})
    rows_a = np.asarray(rows, dtype=np.int64)
    names = tuple(identifiers.names[i] for i in rows)
    return Selection(rows_a, PuzzleIdentifiers(names, f"{identifiers.source} [{len(wanted)} tasks]"),
                     tuple(wanted), missing)


def select_rows(checkpoint: Any, rows: np.ndarray) -> Any:
    """A copy of ``checkpoint`` (:class:`hrm.checkpoint.Checkpoint`) whose puzzle embedding keeps only
    ``rows`` (in that order) and whose config counts them; every other tensor is shared."""
    table = checkpoint.tensors.get("puzzle_emb.weights")
    n = checkpoint.config.num_puzzle_identifiers
    if table is None:
        raise ManifestError(f"{checkpoint.source}: the model has no puzzle embedding to select rows from")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ManifestError(f"{checkpoint.source}: identifier rows {int(rows.min())}..{int(rows.max())} outside "
                            f"the table's 0..{n - 1}")
    tensors = dict(checkpoint.tensors)
    tensors["puzzle_emb.weights"] = np.ascontiguousarray(table[rows])
    config = checkpoint.config.replace(num_puzzle_identifiers=int(rows.size))
    return replace(checkpoint, config=config, tensors=tensors)


# ---- the deployment's copy -----------------------------------------------------------------------

def write_deployment_identifiers(root: Path, identifiers: PuzzleIdentifiers, rows: np.ndarray | None,
                                 source: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Write ``<prefix>identifiers.json`` (+ ``identifier_rows.npy`` when pruned) under ``root`` (the
    export's version folder, like the graphs); returns the manifest's ``puzzle_identifiers`` block (files
    with sha256, counts, where the names came from)."""
    rel = prefix + IDENTIFIERS_FILE
    path = root / rel
    write_text_atomic(path, identifiers.to_json())
    entry: dict[str, Any] = {"file": rel, "sha256": sha256_file(path), "count": len(identifiers),
                             "tasks": len(identifiers.by_task), "rows": None, "source": dict(source)}
    if rows is not None:
        rrel = prefix + ROWS_FILE
        rpath = root / rrel
        with atomic_path(rpath) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(rows, dtype=np.int64))
        entry["rows"] = {"file": rrel, "sha256": sha256_file(rpath)}
    return entry


def deployment_identifiers(manifest: Any) -> PuzzleIdentifiers | None:
    """The names a deployment was exported with (``hrm-export --identifiers``), or None.

    The file's hash is checked when the manifest is verified; its length must match the embedding.
    """
    entry = getattr(manifest, "identifiers", None)
    if not entry:
        return None
    ids = PuzzleIdentifiers.read(manifest.path(entry["file"]))
    if len(ids) != manifest.config.num_puzzle_identifiers:
        raise ManifestError(f"{manifest.path(entry['file'])}: {len(ids)} names for a puzzle embedding of "
                            f"{manifest.config.num_puzzle_identifiers} rows (re-export)")
    return ids


def deployment_rows(manifest: Any) -> np.ndarray | None:
    """``rows[new id] = original id`` of a pruned deployment, or None when its table is the full one."""
    entry = (getattr(manifest, "identifiers", None) or {}).get("rows")
    if not entry:
        return None
    rows = np.load(manifest.path(entry["file"]), allow_pickle=False)
    if rows.ndim != 1 or rows.size != manifest.config.num_puzzle_identifiers:
        raise ManifestError(f"{manifest.path(entry['file'])}: expected {manifest.config.num_puzzle_identifiers} "
                            f"row numbers, found shape {list(rows.shape)} (re-export)")
    return rows.astype(np.int64)
