"""``Session``: one deployment, one backend, one batch size; ``solve(puzzles)`` in chunks.

The session owns the backend's life cycle (activated on first use, freed by ``close()`` or the
context manager) and runs :class:`hrm.runtime.loop.SegmentLoop` on chunks of ``batch`` puzzles.

Batch-independence rule (why a puzzle's answer and segment count never depend on its neighbours):

1. the backend always runs the full allocated batch B: a short chunk leaves the other rows idle
   (they keep computing on whatever they last held and are ignored), never a smaller shape;
2. no graph mixes rows (attention is within a sequence; norms are per position), and ``embed`` is
   always re-run on the whole batch buffer when rows are loaded (it rewrites untouched rows with the
   same bits);
3. halting is decided per row from that row's q values only.

So for a given (deployment, precision, backend, device, B) a row's numerics are a function of its own
tokens and puzzle id. Across different B, CPU backends are bit-identical in practice (tested); GPU
libraries may pick different GEMM kernels per shape, so compare runs at different batch sizes with a
tolerance there. The continuous-batching :class:`hrm.runtime.scheduler.Scheduler` follows the same
rule with B = its slot count.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from hrm.errors import InputError
from hrm.runtime.backends import create_backend
from hrm.runtime.deployment import Deployment, load_deployment
from hrm.runtime.loop import Request, SegmentLoop, StateHook, check_halting, merge_errors
from hrm.runtime.results import SolveResult, build_result


class Session:
    """Run a deployment's recurrence on one backend (``ort`` | ``trt`` | ``torch``)."""

    def __init__(self, deployment: str | Path | Deployment, backend: str = "ort", device: str = "cpu",
                 precision: str = "fp32", batch: int = 1, *, halting: str | None = None,
                 max_segments: int | None = None, verify: bool = True, **backend_options: Any) -> None:
        self.deployment = load_deployment(deployment, verify=verify, precision=precision)
        self.deployment.variant(precision)  # a missing variant fails here, with the re-export hint
        if int(batch) < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.batch = int(batch)
        self.halting = halting or self.deployment.manifest.default_halting
        self.max_segments = max_segments
        check_halting(self.halting, max_segments, self.deployment.config.halt_max_steps)
        self.backend = create_backend(backend, self.deployment, precision=precision, device=device, **backend_options)
        self.lock = threading.RLock()  # one driver at a time (solve or a Scheduler step)
        self._scheduler: weakref.ref | None = None  # the one open Scheduler driving this session

    # ---- life cycle --------------------------------------------------------------------------------
    def activate(self) -> "Session":
        with self.lock:
            self.backend.activate()
        return self

    def close(self) -> None:
        with self.lock:
            self.backend.deactivate()

    def __enter__(self) -> "Session":
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def task(self) -> Any:
        return self.deployment.task

    @property
    def config(self):
        return self.deployment.config

    def new_loop(self, batch: int, halting: str | None = None, max_segments: int | None = None,
                 trace: bool = False, state_hook: StateHook | None = None) -> SegmentLoop:
        """Activate, allocate ``batch`` rows and return a loop over them (caller holds ``lock``)."""
        self.backend.activate()
        self.backend.allocate(batch)
        return SegmentLoop(self.backend, halting=halting or self.halting,
                           max_segments=self.max_segments if max_segments is None else max_segments,
                           trace=trace, state_hook=state_hook)

    @property
    def scheduler(self) -> Any:
        """The open Scheduler driving this session, or None."""
        sched = self._scheduler() if self._scheduler is not None else None
        return sched if sched is not None and not sched.closed else None

    def attach_scheduler(self, scheduler: Any) -> None:
        """Called by ``Scheduler.__init__``: one open Scheduler per session (two would share buffers)."""
        with self.lock:
            current = self.scheduler
            if current is not None and current is not scheduler:
                raise RuntimeError("this Session is already driven by an open Scheduler; stop it first "
                                   "(Scheduler.stop(), or use 'with Scheduler(...)') or give each its own Session")
            self._scheduler = weakref.ref(scheduler)

    def detach_scheduler(self, scheduler: Any) -> None:
        with self.lock:
            if self._scheduler is not None and self._scheduler() is scheduler:
                self._scheduler = None

    # ---- solving ------------------------------------------------------------------------------------
    def solve(self, puzzles: Sequence[Any] | np.ndarray, *, puzzle_ids: Sequence[int] | None = None,
              halting: str | None = None, max_segments: int | None = None, trace: bool = False,
              state_hook: StateHook | None = None) -> list[SolveResult]:
        """Solve puzzles (``hrm.tasks.Puzzle`` objects or a token array [N, S]); results in input order.

        ``state_hook(segments_per_row, z_H)`` is called after every segment (parity drift uses it).
        Raises :class:`hrm.errors.NumericsError` naming the segment and rows on NaN/Inf.
        """
        return list(self.iter_solve(puzzles, puzzle_ids=puzzle_ids, halting=halting, max_segments=max_segments,
                                    trace=trace, state_hook=state_hook))

    def iter_solve(self, puzzles: Sequence[Any] | np.ndarray, *, puzzle_ids: Sequence[int] | None = None,
                   halting: str | None = None, max_segments: int | None = None, trace: bool = False,
                   state_hook: StateHook | None = None,
                   on_chunk: Callable[[int], None] | None = None) -> Iterator[SolveResult]:
        """Like :meth:`solve`, yielding results chunk by chunk (for streaming output / progress)."""
        requests = list(_requests(puzzles, puzzle_ids))
        for req in requests:  # every input is checked before any compute
            req.check(self.config)
        task = self.task
        for start in range(0, len(requests), self.batch):
            chunk = requests[start:start + self.batch]
            with self.lock:
                owner = self.scheduler
                if owner is not None and owner.slots == self.batch and owner.active:
                    raise RuntimeError(f"a Scheduler has {owner.active} requests in flight in this session's "
                                       f"batch-{self.batch} buffers; solve with another Session")
                loop = self.new_loop(self.batch, halting, max_segments, trace, state_hook)
                loop.admit(chunk)
                done: dict[int, Any] = {}
                while loop.active:
                    step = loop.step()
                    if step.failed:
                        raise merge_errors(step.failed)
                    for rec in step.finished:
                        done[rec.row] = rec
            for row in range(len(chunk)):
                yield build_result(done[row], task)
            if on_chunk is not None:
                on_chunk(len(chunk))


def _requests(puzzles: Sequence[Any] | np.ndarray, puzzle_ids: Sequence[int] | None) -> Iterable[Request]:
    """Requests in input order; ``puzzle_ids`` (when given) must have one integer per puzzle."""
    array = isinstance(puzzles, np.ndarray)
    if array:
        if puzzles.ndim not in (1, 2):
            raise InputError(f"tokens: expected an array [N, seq_len] (or one [seq_len] row), got shape "
                             f"{list(puzzles.shape)}")
        puzzles = puzzles[None] if puzzles.ndim == 1 else puzzles
    n = len(puzzles)
    ids = None
    if puzzle_ids is not None:
        ids = np.asarray(puzzle_ids)
        if ids.shape != (n,):
            raise InputError(f"puzzle_ids: expected one per puzzle ({n}), got shape {list(ids.shape)}")
        if ids.size and (ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer)):
            raise InputError(f"puzzle_ids: expected integers, got dtype {ids.dtype}")
    for i, p in enumerate(puzzles):
        req = Request.of(p, request_id=i, index=i, source=f"<array>:{i + 1}" if array else None)
        if ids is not None:
            req.puzzle_id = int(ids[i])  # range-checked with the tokens by Request.check
        yield req
