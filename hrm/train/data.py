"""Where training data comes from: task generators (cached as .npz) or official dataset folders.

Generated sets are deterministic in (task, size, n, seed, difficulty) and cached under
``data_cache`` keyed by those, so a re-run (or a run on another machine, given the cache folder)
starts instantly. The eval set is drawn from its own seed and rows whose input also occurs in the
training set are dropped, so "held out" means held out (it matters for 4x4 Sudoku, whose space is
small).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hrm.train.arrays import PuzzleArrays
from hrm.train.augment import Augmenter, dihedral_augment, sudoku_augment
from hrm.train.config import TrainConfig

DATA_VERSION = 1  # bump when generation changes, so stale caches are not reused
SUDOKU_MIX = ("easy", "medium", "hard")


@dataclass
class DataBundle:
    """Train and eval arrays plus what the model and the checkpoint need to know about them."""

    train: PuzzleArrays
    eval: PuzzleArrays
    task_meta: dict[str, Any]
    vocab_size: int
    num_puzzle_identifiers: int
    augmenter: Augmenter | None
    info: dict[str, Any] = field(default_factory=dict)  # provenance, recorded in run.json / checkpoint

    @property
    def seq_len(self) -> int:
        return self.train.seq_len


def default_cache_dir() -> Path:
    root = os.environ.get("HRM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hrm-deploy")
    return Path(root) / "data"


def split_seed(seed: int, split: str) -> int:
    """Independent 32-bit seeds for the train and eval sets of one run seed."""
    code = {"train": 0, "eval": 1}[split]
    return int(np.random.SeedSequence([int(seed), code, 0x48524D]).generate_state(1)[0])


def get_task(cfg: TrainConfig):
    """The ``hrm.tasks`` task object for the config."""
    from hrm.tasks import get_task as _get_task

    return _get_task(cfg.task, size=cfg.size)


# ---- generators ----------------------------------------------------------------------------------

def _workers(cfg: TrainConfig) -> int:
    return cfg.gen_workers or min(16, os.cpu_count() or 1)


def generate(cfg: TrainConfig, n: int, seed: int) -> PuzzleArrays:
    """``n`` labelled puzzles from ``hrm.tasks.datagen`` (parallel for Sudoku, deterministic in
    ``(n, seed, params)``). Sudoku ``difficulty="mix"`` = equal thirds easy / medium / hard, shuffled."""
    from hrm.tasks.datagen import generate_split

    def one(count: int, s: int, difficulty: str) -> tuple[np.ndarray, np.ndarray]:
        g = generate_split(cfg.task, count, s, size=cfg.size, difficulty=difficulty, workers=_workers(cfg))
        return g.inputs, g.labels

    if cfg.task == "sudoku" and cfg.difficulty == "mix":
        counts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
        parts = [one(c, seed + i, d) for i, (c, d) in enumerate(zip(counts, SUDOKU_MIX))]
        order = np.random.default_rng(seed).permutation(n)
        inputs = np.concatenate([p[0] for p in parts])[order]
        labels = np.concatenate([p[1] for p in parts])[order]
    else:
        inputs, labels = one(n, seed, cfg.difficulty or "any")
    return PuzzleArrays(inputs, labels, np.zeros(len(inputs), dtype=np.int32))


def cache_path(cfg: TrainConfig, split: str, n: int, seed: int, cache_dir: str | Path | None = None) -> Path:
    key = dict(task=cfg.task, size=cfg.size, n=n, seed=seed, difficulty=cfg.difficulty, split=split,
               version=DATA_VERSION)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{cfg.task}{cfg.size}-{cfg.difficulty or 'any'}-{split}-{n}-{digest}.npz"
    return Path(cache_dir or cfg.data_cache or default_cache_dir()) / name


def cached_generate(cfg: TrainConfig, split: str, n: int,
                    generator: Callable[[TrainConfig, int, int], PuzzleArrays] = generate) -> tuple[PuzzleArrays, dict[str, Any]]:
    """Load the split from the cache, or generate and cache it. Returns arrays and provenance."""
    seed = split_seed(cfg.seed, split)
    path = cache_path(cfg, split, n, seed)
    info = dict(source="generated", task=cfg.task, size=cfg.size, n=n, seed=seed, difficulty=cfg.difficulty,
                data_version=DATA_VERSION, cache=str(path))
    if path.is_file():
        arrays, _ = PuzzleArrays.load_npz(path)
        return arrays, {**info, "cached": True}
    arrays = generator(cfg, n, seed)
    arrays.save_npz(path, meta=info)
    return arrays, {**info, "cached": False}


# ---- official dataset folders -------------------------------------------------------------------------

def load_official(root: str | Path, split: str) -> tuple[PuzzleArrays, dict[str, Any], Any]:
    """One split of an official dataset folder (``<root>/<split>/dataset.json`` + ``all__*.npy``):
    every example with its puzzle identifier, the split's ``dataset.json`` fields, and its task
    (recorded by our writer or recognised from the shapes; None when unknown)."""
    from hrm.tasks.dataset import read_official_split

    s = read_official_split(root, split)
    arrays = PuzzleArrays(np.asarray(s.inputs), np.asarray(s.labels), s.example_identifiers())
    ignore = s.metadata.get("ignore_label_id")
    if ignore not in (None, 0):  # our convention: label 0 = ignore; remap the dataset's own id
        arrays.labels[arrays.labels == int(ignore)] = 0
    return arrays, dict(s.metadata), s.task


# ---- everything together ------------------------------------------------------------------------------

def make_augmenter(cfg: TrainConfig, task_meta: dict[str, Any]) -> Augmenter | None:
    """Sudoku symmetries, the dihedral group for mazes; None when off or for other tasks (ARC data
    comes augmented by its builder)."""
    name = task_meta.get("name", cfg.task)
    if not cfg.augment or name not in ("sudoku", "maze"):
        return None
    grid = tuple(task_meta.get("grid") or (cfg.size, cfg.size))
    if name == "sudoku":
        box = math.isqrt(int(grid[0]))
        token_map = task_meta.get("token_map") or {}
        digits = [token_map.get(str(d), d + 1) for d in range(1, box * box + 1)]
        digit_tokens = np.asarray(digits, dtype=np.int64)
        return lambda i, l, rng: sudoku_augment(i, l, rng, box, digit_tokens)
    return lambda i, l, rng: dihedral_augment(i, l, rng, (int(grid[0]), int(grid[1])))


def task_metadata(cfg: TrainConfig) -> dict[str, Any]:
    return dict(get_task(cfg).metadata())


def load_data(cfg: TrainConfig) -> DataBundle:
    """Train + eval arrays for ``cfg`` (generated and cached, or an official folder)."""
    if cfg.data == "generated":
        train, info_t = cached_generate(cfg, "train", cfg.n_train)
        evals, info_e = cached_generate(cfg, "eval", cfg.n_eval)
        evals, dropped = evals.without_inputs_of(train)
        meta = task_metadata(cfg)
        vocab = int(meta.get("vocab_size") or max(train.inputs.max(), train.labels.max()) + 1)
        info = {"train": info_t, "eval": {**info_e, "dropped_overlap": dropped}}
        num_ids = int(max(train.puzzle_ids.max(initial=0), evals.puzzle_ids.max(initial=0)) + 1)
    else:
        train, ds_meta, task = load_official(cfg.data, "train")
        evals, _, _ = load_official(cfg.data, "test")
        if cfg.n_eval and len(evals) > cfg.n_eval:
            evals = evals.take(np.random.default_rng(split_seed(cfg.seed, "eval")).choice(len(evals), cfg.n_eval, replace=False))
        meta = dict(task.metadata()) if task is not None else task_metadata(cfg)
        vocab = int(ds_meta.get("vocab_size") or meta.get("vocab_size"))
        num_ids = int(ds_meta.get("num_puzzle_identifiers") or 1)
        info = {"train": {"source": "official", "path": str(cfg.data), "n": len(train)},
                "eval": {"source": "official", "path": str(cfg.data), "n": len(evals)}}
    if train.seq_len != int(meta.get("seq_len", train.seq_len)):
        raise ValueError(f"data has seq_len {train.seq_len}, but task {meta.get('name')} {meta.get('params')} "
                         f"expects {meta.get('seq_len')}")
    return DataBundle(train, evals, meta, vocab, num_ids, make_augmenter(cfg, meta), info)
