"""Time budget for a run (``--time-budget`` wall clock, ``--cpu-budget`` process CPU time): stop early
enough to finish cleanly.

On a lent GPU the run must end with an evaluation and a checkpoint, not be killed mid-step. The
budget therefore keeps a *reserve*: the measured duration of the last evaluation + checkpoint
(x1.25), or, before the first one, an estimate from the step time (an eval segment over a batch
costs about half a training step: no backward, no extra Q-target forward). The first
``warmup_steps`` step times are ignored: they include torch.compile and allocator warm-up.

The CPU clock (``time.process_time``: CPU seconds of every thread of this process) is what makes runs
on a shared machine comparable: two models given the same CPU budget did the same amount of work,
however many other processes wanted the cores. A resumed run starts from the seconds its earlier
pieces spent (``spent``), so a run done in pieces has the budget of one run.
"""

from __future__ import annotations

import time

import numpy as np


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class TimeBudget:
    def __init__(self, seconds: float | None, eval_segment_batches: float, save_seconds: float = 2.0,
                 warmup_steps: int = 3, window: int = 50, clock: str = "wall", spent: float = 0.0) -> None:
        """``eval_segment_batches``: segments x batches a full evaluation runs, in units of the
        training batch (``halt_max_steps * n_eval / batch_size``). ``clock``: "wall" or "cpu";
        ``spent``: seconds of this clock already used by earlier pieces of the run (resume)."""
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
        self.seconds = seconds
        self.eval_segment_batches = eval_segment_batches
        self.save_seconds = save_seconds
        self.warmup_steps = warmup_steps
        self.window = window
        self.clock = clock
        self._now = CLOCKS[clock]
        self.spent = float(spent)
        self.t0 = self._now()
        self.steps_seen = 0
        self.step_times: list[float] = []
        self.last_eval_seconds: float | None = None

    def now(self) -> float:
        """The budget's clock (perf_counter or process_time), for timing steps and evaluations."""
        return self._now()

    def elapsed(self) -> float:
        """Seconds of the budget's clock used by the run so far, earlier pieces included."""
        return self.spent + self._now() - self.t0

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
