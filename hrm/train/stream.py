"""Endless puzzle supply for ACT-style data streaming.

The official loop keeps a persistent batch ("carry"): a row stays until it halts, then its slot
takes the next puzzle. This stream is where those next puzzles come from: shuffled passes over the
training arrays (a new permutation per epoch), each puzzle augmented as it is handed out, and with
``reveal_fraction`` of its unknown cells given away while a reveal curriculum runs
(:mod:`hrm.train.curriculum`; the trainer sets the fraction every step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrm.train.arrays import PuzzleArrays
from hrm.train.augment import Augmenter, no_augment
from hrm.train.curriculum import reveal


class PuzzleStream:
    """``take(k)`` returns the next ``k`` puzzles (augmented) as numpy arrays; never runs dry."""

    def __init__(self, data: PuzzleArrays, rng: np.random.Generator, augment: Augmenter | None = None) -> None:
        if len(data) == 0:
            raise ValueError("the training set is empty")
        self.data = data
        self.rng = rng
        self.augment = augment or no_augment
        self.epoch = 0
        self.served = 0
        self.reveal_fraction = 0.0
        self._order = rng.permutation(len(data))
        self._pos = 0

    def _next_indices(self, k: int) -> np.ndarray:
        out = []
        while k > 0:
            if self._pos == len(self._order):
                self.epoch += 1
                self._order = self.rng.permutation(len(self.data))
                self._pos = 0
            chunk = self._order[self._pos:self._pos + k]
            self._pos += len(chunk)
            k -= len(chunk)
            out.append(chunk)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        """Where the stream is (epoch order, position, RNG), for an exact resume."""
        return {"epoch": self.epoch, "served": self.served, "reveal_fraction": self.reveal_fraction,
                "order": self._order.copy(), "pos": self._pos, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["order"]) != len(self.data):
            raise ValueError(f"saved stream covers {len(state['order'])} training puzzles, this data set has "
                             f"{len(self.data)}")
        self.epoch, self.served = int(state["epoch"]), int(state["served"])
        self.reveal_fraction = float(state["reveal_fraction"])
        self._order, self._pos = np.asarray(state["order"]), int(state["pos"])
        self.rng.bit_generator.state = state["rng"]

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = self._next_indices(k)
        self.served += len(idx)
        inputs, labels = self.augment(self.data.inputs[idx], self.data.labels[idx], self.rng)
        if self.reveal_fraction > 0.0:
            inputs = reveal(inputs, labels, self.reveal_fraction, self.rng)
        return inputs, labels, self.data.puzzle_ids[idx]
