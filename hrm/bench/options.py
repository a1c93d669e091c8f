"""What a benchmark run is asked to do and how long it may take: :class:`BenchOptions`, :class:`Budget`, :class:`Clock`.

Budget: every loop stops at its repetition count or its time cap (after a minimum), and an optional
overall ``time_limit`` skips what is left (marked in the document) so a run in a 10-minute slot always
returns numbers; :class:`Clock` also gives each (device, precision) group its share of what is left.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from hrm.bench.targets import BACKEND_CHOICES
from hrm.halting import HALTING_MODES
from hrm.manifest import GRAPH_OPS


@dataclass
class Budget:
    """Repetitions and time caps of each phase (``quick()`` for a smoke run / a 10-minute GPU slot)."""

    warmup: int = 3  # segments per target and batch before timing
    segment_reps: int = 30  # timed segments per target and batch (split over rounds)
    rounds: int = 3  # interleaving rounds
    segment_cap_s: float = 6.0  # per target and batch, all rounds together
    solve_puzzles: int = 32  # batch-1 solves per target and halting mode
    solve_cap_s: float = 30.0  # per target and halting mode
    throughput_rounds: int = 2
    throughput_cap_s: float = 8.0  # per target, batch and halting mode, one round
    max_waves: int = 4
    min_reps: int = 3

    @classmethod
    def quick(cls) -> "Budget":
        return cls(warmup=2, segment_reps=10, rounds=2, segment_cap_s=1.5, solve_puzzles=6, solve_cap_s=5.0,
                   throughput_rounds=1, throughput_cap_s=1.5, max_waves=2, min_reps=2)


@dataclass
class BenchOptions:
    devices: Sequence[str] = ("cpu",)
    backends: Sequence[str] = BACKEND_CHOICES
    precisions: Sequence[str] | None = None  # None: fp32 on CPU; fp32, fp16, bf16 on CUDA
    batches: Sequence[int] = (1,)
    halting: Sequence[str] = HALTING_MODES
    max_segments: int | None = None
    puzzles: int | None = None  # overrides budget.solve_puzzles
    segments_only: bool = False
    quick: bool = False
    threads: int | None = None  # None: the CPUs this process may run on
    seed: int = 0
    checkpoint: str | Path | None = None  # torch targets' weights, any checkpoint source (default: the manifest's)
    trt_note: str | None = None  # appended to the trt targets' skip reason (e.g. why engines were not built)
    time_limit: float | None = None  # seconds for the whole run; what is left is skipped
    budget: Budget | None = None
    measure_floor: bool = True
    ops: Sequence[str] = GRAPH_OPS  # graph ops whose ORT targets to measure
    # deployments of the other graph ops exported from the same weights (ops -> directory)
    ops_deployments: dict[str, Path] = field(default_factory=dict)

    def resolved_budget(self) -> Budget:
        b = self.budget or (Budget.quick() if self.quick else Budget())
        if self.puzzles is not None:
            b = Budget(**{**asdict(b), "solve_puzzles": int(self.puzzles)})
        return b


def default_precisions(devices: Sequence[str]) -> list[str]:
    return ["fp32", "fp16", "bf16"] if "cuda" in devices else ["fp32"]


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Clock:
    """Elapsed time, the optional overall deadline, and the current group's share of what is left (so a
    slow first precision cannot starve the others)."""

    def __init__(self, limit: float | None) -> None:
        self.start = time.perf_counter()
        self.limit = limit
        self.group_end: float | None = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def start_group(self, groups_left: int) -> None:
        if self.limit is None:
            return
        left = max(self.limit - self.elapsed, 0.0)
        self.group_end = time.perf_counter() + left / max(groups_left, 1)

    def over(self) -> bool:
        if self.limit is None:
            return False
        return self.elapsed > self.limit or (self.group_end is not None and time.perf_counter() > self.group_end)

    def out_of_time(self) -> bool:
        """The overall limit (not just the group's share) is spent."""
        return self.limit is not None and self.elapsed > self.limit
