"""A test-only backend that answers from a lookup table instead of a model.

It sits behind the real :class:`hrm.runtime.backends.base.Backend` interface, so the ARC procedure
(augment -> Scheduler -> invert -> vote) runs unchanged; only the "model" is replaced by
``answer(tokens, puzzle_id) -> (answer tokens, q_halt)``. A test hands an instance to ``Session``
(``Session(dep, backend=OracleBackend(dep, answer))``), the door for a backend the registry does not name.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from hrm.runtime.backends.base import Backend, Heads

Answer = Callable[[np.ndarray, int], tuple[np.ndarray, float]]


class OracleBackend(Backend):
    name = "oracle"

    def __init__(self, deployment: Any, answer: Answer, variant: Any = "fp32", device: str = "cpu") -> None:
        super().__init__(deployment, variant, device)
        self.answer = answer
        self.calls: list[tuple[int, bytes]] = []  # (puzzle id, tokens) of every loaded row

    def activate_impl(self) -> None:
        pass

    def deactivate_impl(self) -> None:
        pass

    def allocate(self, batch: int) -> None:
        if getattr(self, "_rows", None) is None or self._rows[0].shape[0] != batch:
            S = self.deployment.config.seq_len
            self._rows = (np.zeros((batch, S), np.int32), np.zeros(batch, np.int32))
        self.batch = batch

    def load_rows(self, rows: Sequence[int], tokens: np.ndarray, puzzle_ids: np.ndarray) -> None:
        rows_a, tok, ids = self._check_rows(rows, tokens, puzzle_ids)
        self._rows[0][rows_a] = tok
        self._rows[1][rows_a] = ids
        self.calls.extend((int(i), t.tobytes()) for i, t in zip(ids, tok))

    def l_step(self) -> None:
        pass

    def h_step(self) -> None:
        pass

    def heads(self) -> None:
        tokens, ids = self._rows
        out = np.zeros_like(tokens)
        q = np.zeros(len(ids), np.float32)
        for r in range(len(ids)):
            out[r], q[r] = self.answer(tokens[r], int(ids[r]))
        self._out = (out, q)

    def read_heads(self, logits: bool = True) -> Heads:
        out, q = self._out
        lg = None
        if logits:
            V = self.deployment.config.vocab_size
            lg = np.eye(V, dtype=np.float32)[out]
        return Heads(q, np.full_like(q, -1e3), lg)

    def read_state(self) -> np.ndarray:
        c = self.deployment.config
        return np.zeros((self.batch, c.total_seq_len, c.hidden_size), np.float32)
