"""Reveal curriculum: early in training, part of what the model must fill in is given away.

Why: from scratch, a 9x9 Sudoku (or maze) HRM sits for a long time on the "copy the input" plateau
(measured on the CPU: 39.9% of cells = the givens plus chance, flat from step 300 to 1,200), because
with ~50 unknown cells per puzzle no single cell's answer follows from the givens in one hop. With
most unknowns revealed the remaining ones are forced by their row / column / box (or by the path's
neighbours), a signal the model picks up at once; the revealed fraction then anneals to zero so the
model ends on the real task.

``reveal(inputs, labels, fraction, rng)`` replaces each cell the model has to produce (``input !=
label``, label not PAD) by its label with probability ``fraction``. It is task-agnostic: Sudoku blanks
become digits, maze free cells on the path become path cells. Evaluation never reveals anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def reveal(inputs: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator,
           ignore_label_id: int = 0) -> np.ndarray:
    """``inputs`` with each to-be-filled cell set to its label with probability ``fraction`` (a copy)."""
    if fraction <= 0.0:
        return inputs
    todo = (inputs != labels) & (labels != ignore_label_id)
    hit = todo & (rng.random(inputs.shape) < fraction)
    return np.where(hit, labels, inputs).astype(inputs.dtype, copy=False)


@dataclass(frozen=True)
class RevealSchedule:
    """Fraction revealed: ``start`` at progress 0, falling linearly to 0 at progress ``until``."""

    start: float = 0.0
    until: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"reveal start must be in [0, 1), got {self.start}")
        if not 0.0 < self.until <= 1.0:
            raise ValueError(f"reveal until must be in (0, 1], got {self.until}")

    def fraction(self, progress: float) -> float:
        return max(0.0, self.start * (1.0 - min(max(progress, 0.0), 1.0) / self.until))
