"""On-the-fly, batch-vectorised augmentations that keep a puzzle's answer valid.

Why on the fly: the official Sudoku-Extreme-1k recipe pre-computes 1000 augmentations per puzzle
(``shuffle_sudoku`` in dataset/build_sudoku_dataset.py). Drawing a fresh one each time a puzzle
enters the batch gives the same distribution from a modest generated set, with no disk and no
build step. Each function maps ``[k, S]`` token arrays to new ``[k, S]`` arrays, one random
transform per row, applied identically to the input and its label.

* Sudoku: digit relabelling, band and stack permutations, row/column permutations within them,
  optional transpose (exactly the symmetries upstream uses).
* Grids with a unique answer under rotation/reflection (mazes): the 8 dihedral transforms.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Augmenter = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _line_perms(k: int, box: int, rng: np.random.Generator) -> np.ndarray:
    """[k, n] permutations of rows (or columns) that keep bands: shuffle bands, then rows inside each."""
    bands = rng.permuted(np.tile(np.arange(box), (k, 1)), axis=1)  # [k, box]
    inner = rng.permuted(np.tile(np.arange(box), (k, box, 1)), axis=2)  # [k, box, box]
    return (bands[:, :, None] * box + inner).reshape(k, box * box)


def sudoku_augment(inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator, box: int,
                   digit_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random Sudoku symmetry per row. ``digit_tokens[d-1]`` is the token of digit ``d``; other
    tokens (blank, PAD) are left alone."""
    k, n = inputs.shape[0], box * box
    if inputs.shape[1] != n * n:
        raise ValueError(f"sudoku_augment: expected {n * n} cells for box {box}, got {inputs.shape[1]}")
    digit_tokens = np.asarray(digit_tokens, dtype=np.int64)
    vocab = int(max(inputs.max(initial=0), labels.max(initial=0), digit_tokens.max())) + 1
    lut = np.tile(np.arange(vocab), (k, 1))
    lut[:, digit_tokens] = digit_tokens[rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)]
    rows, cols = _line_perms(k, box, rng), _line_perms(k, box, rng)
    transpose = rng.random(k) < 0.5
    r = np.arange(k)[:, None, None]

    def apply(x: np.ndarray) -> np.ndarray:
        g = x.reshape(k, n, n)
        g = np.where(transpose[:, None, None], g.transpose(0, 2, 1), g)
        g = g[r, rows[:, :, None], cols[:, None, :]].reshape(k, n * n)
        return np.take_along_axis(lut, g.astype(np.int64), axis=1).astype(x.dtype)

    return apply(inputs), apply(labels)


def dihedral_augment(inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                     grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 rotations/reflections per row (square grids only)."""
    h, w = grid
    if h != w:
        raise ValueError(f"dihedral_augment needs a square grid, got {h}x{w}")
    k = inputs.shape[0]
    which = rng.integers(0, 8, size=k)
    out_i, out_l = inputs.copy(), labels.copy()
    for t in np.unique(which):
        idx = np.flatnonzero(which == t)
        for src, dst in ((inputs, out_i), (labels, out_l)):
            g = src[idx].reshape(-1, h, w)
            g = np.rot90(g, k=int(t) % 4, axes=(1, 2))
            if t >= 4:
                g = g[:, :, ::-1]
            dst[idx] = g.reshape(len(idx), h * w)
    return out_i, out_l


def no_augment(inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return inputs, labels
