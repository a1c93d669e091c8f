"""Wall-clock budget for a run (``--time-budget``): stop early enough to finish cleanly.

On a lent GPU the run must end with an evaluation and a checkpoint, not be killed mid-step. The
budget therefore keeps a *reserve*: the measured duration of the last evaluation + checkpoint
(x1.25), or, before the first one, an estimate from the step time (an eval segment over a batch
costs about half a training step: no backward, no extra Q-target forward). The first
``warmup_steps`` step times are ignored: they include torch.compile and allocator warm-up.
"""

from __future__ import annotations

import time

import numpy as np


class TimeBudget:
    def __init__(self, seconds: float | None, eval_segment_batches: float, save_seconds: float = 2.0,
                 warmup_steps: int = 3, window: int = 50) -> None:
        """``eval_segment_batches``: segments x batches a full evaluation runs, in units of the
        training batch (``halt_max_steps * n_eval / batch_size``)."""
        self.seconds = seconds
        self.eval_segment_batches = eval_segment_batches
        self.save_seconds = save_seconds
        self.warmup_steps = warmup_steps
        self.window = window
        self.t0 = time.perf_counter()
        self.steps_seen = 0
        self.step_times: list[float] = []
        self.last_eval_seconds: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def record_step(self, seconds: float) -> None:
        self.steps_seen += 1
        if self.steps_seen > self.warmup_steps:
            self.step_times = (self.step_times + [seconds])[-self.window:]

    def record_eval(self, seconds: float) -> None:
        self.last_eval_seconds = seconds

    def reserve(self) -> float:
        """Seconds the final evaluation + checkpoint are expected to need (with margin)."""
        if self.last_eval_seconds is not None:
            return 1.25 * self.last_eval_seconds + 1.0
        step = float(np.median(self.step_times)) if self.step_times else 0.0
        return 1.25 * 0.5 * step * self.eval_segment_batches + self.save_seconds

    def exhausted(self) -> bool:
        """True when starting another step would eat into the reserve."""
        return self.seconds is not None and self.elapsed() + self.reserve() >= self.seconds

    def fraction(self) -> float | None:
        """Elapsed share of the usable budget (None without a budget), for the LR schedule."""
        if self.seconds is None:
            return None
        return self.elapsed() / max(self.seconds - self.reserve(), 1.0)
