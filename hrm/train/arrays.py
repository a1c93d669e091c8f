"""The in-memory data set the trainer works on: three aligned numpy arrays.

Why arrays and not ``list[Puzzle]``: a training stream hands out thousands of rows a second and
augments them in bulk; one ``[N, S]`` array does that with fancy indexing, a list of objects would
not. Everything that produces data (task generators, official dataset folders, the .npz cache)
converts to :class:`PuzzleArrays` once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hrm.io import atomic_path


@dataclass
class PuzzleArrays:
    """``inputs`` int32 [N, S], ``labels`` int32 [N, S] (0 = ignore), ``puzzle_ids`` int32 [N]."""

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_ids: np.ndarray

    def __post_init__(self) -> None:
        self.inputs = np.ascontiguousarray(self.inputs, dtype=np.int32)
        self.labels = np.ascontiguousarray(self.labels, dtype=np.int32)
        self.puzzle_ids = np.ascontiguousarray(self.puzzle_ids, dtype=np.int32).reshape(-1)
        if self.inputs.ndim != 2 or self.labels.shape != self.inputs.shape:
            raise ValueError(f"inputs and labels must be [N, S] of one shape, got {self.inputs.shape} and {self.labels.shape}")
        if self.puzzle_ids.shape[0] != self.inputs.shape[0]:
            raise ValueError(f"puzzle_ids has {self.puzzle_ids.shape[0]} rows, inputs {self.inputs.shape[0]}")

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.inputs.shape[1])

    def take(self, index: np.ndarray) -> "PuzzleArrays":
        """Rows ``index`` (a copy)."""
        return PuzzleArrays(self.inputs[index], self.labels[index], self.puzzle_ids[index])

    @classmethod
    def from_puzzles(cls, puzzles: Iterable[Any]) -> "PuzzleArrays":
        """Stack ``hrm.tasks`` Puzzles (each with a label) into arrays."""
        puzzles = list(puzzles)
        if not puzzles:
            raise ValueError("no puzzles to stack")
        missing = [p.source for p in puzzles if p.label is None]
        if missing:
            raise ValueError(f"{len(missing)} puzzles have no label (first: {missing[0]}); training needs labels")
        return cls(np.stack([p.tokens for p in puzzles]), np.stack([p.label for p in puzzles]),
                   np.array([p.puzzle_id for p in puzzles], dtype=np.int32))

    def without_inputs_of(self, other: "PuzzleArrays") -> tuple["PuzzleArrays", int]:
        """Drop rows whose input also occurs in ``other`` (keeps a held-out set held out)."""
        seen = {row.tobytes() for row in other.inputs}
        keep = np.array([row.tobytes() not in seen for row in self.inputs], dtype=bool)
        return self.take(np.flatnonzero(keep)), int((~keep).sum())

    # ---- cache -------------------------------------------------------------------------------
    def save_npz(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write atomically (uint8 when the tokens fit: official datasets use uint8 too)."""
        import json

        small = max(int(self.inputs.max(initial=0)), int(self.labels.max(initial=0))) < 256
        dtype = np.uint8 if small else np.int32
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, inputs=self.inputs.astype(dtype), labels=self.labels.astype(dtype),
                         puzzle_ids=self.puzzle_ids, meta=np.array(json.dumps(meta or {})))
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> tuple["PuzzleArrays", dict[str, Any]]:
        import json

        with np.load(path, allow_pickle=False) as z:
            arrays = cls(z["inputs"], z["labels"], z["puzzle_ids"])
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return arrays, meta
