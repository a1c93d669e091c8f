"""Generate labelled datasets from the task generators and write them as official dataset folders.

Writing the official layout (``<root>/{train,test}/dataset.json`` + ``all__*.npy``) means our generated
data trains with the official ``pretrain.py`` and official data trains with ``hrm-train``: one format.
Sudoku rows also keep the solver's guess count (``<root>/<split>/guesses.npy``) so evaluations can be
reported per difficulty bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrm.tasks import get_task
from hrm.tasks.dataset import write_official_split


@dataclass
class GeneratedSplit:
    inputs: np.ndarray
    labels: np.ndarray
    guesses: np.ndarray | None = None


def generate_split(task_name: str, n: int, seed: int, *, size: int | None = None, difficulty: str = "any",
                   workers: int | None = None) -> GeneratedSplit:
    """``n`` labelled puzzles of ``task_name`` (sudoku | maze), deterministic in (n, seed, params)."""
    if task_name == "sudoku":
        from hrm.tasks.sudoku_gen import generate_dataset

        g = generate_dataset(n, seed, difficulty=difficulty, workers=workers, size=size or 9)
        return GeneratedSplit(g.inputs, g.labels, g.guesses)
    if task_name == "maze":
        task = get_task("maze", size=size or 30)
        puzzles = task.generate(n, np.random.default_rng(seed))
        return GeneratedSplit(np.stack([p.tokens for p in puzzles]).astype(np.uint8),
                              np.stack([p.label for p in puzzles]).astype(np.uint8))
    raise ValueError(f"cannot generate '{task_name}' puzzles; generators exist for sudoku and maze")


def generate_folder(task_name: str, out: str | Path, n_train: int, n_test: int, seed: int = 0, *,
                    size: int | None = None, difficulty: str = "any", workers: int | None = None,
                    overwrite: bool = False) -> Path:
    """Write ``out/train`` and ``out/test`` (disjoint seeds) in the official layout; returns ``out``."""
    params: dict[str, Any] = {"size": size} if size else {}
    task = get_task(task_name, **params)
    out = Path(out)
    for split, n, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1_000_003)):
        if n <= 0:
            continue
        data = generate_split(task_name, n, split_seed, size=size, difficulty=difficulty, workers=workers)
        write_official_split(out, split, data.inputs, data.labels, task=task, overwrite=overwrite)
        if data.guesses is not None:
            np.save(out / split / "guesses.npy", data.guesses)
    return out
