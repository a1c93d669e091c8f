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
from hrm.halting import HaltingPolicy
from hrm.runtime.backends import create_backend
from hrm.runtime.backends.base import Backend
from hrm.runtime.backends.options import BackendOptions
from hrm.runtime.deployment import Deployment, load_deployment
from hrm.runtime.loop import Request, SegmentLoop, StateHook, merge_errors
from hrm.runtime.results import SolveResult, build_result


class Session:
    """Run a deployment's recurrence on one backend.

    ``backend``: a registry name (``ort`` | ``trt`` | ``torch``), built here for ``device`` / ``precision``
    / ``options`` (the backend's options object: :class:`~hrm.runtime.backends.options.OrtOptions`,
    ``TrtOptions``, ``TorchOptions``; None = its defaults); or, as Polygraphy's runners take a session or
    a callable returning one, a ready :class:`~hrm.runtime.backends.base.Backend` of this deployment, or
    a loader (a callable returning one) called on first use. An instance or loader brings its own
    device, variant and options. ``halting`` / ``max_segments``: the default
    :class:`~hrm.halting.HaltingPolicy` of every solve (the manifest's otherwise).
    """

    def __init__(self, deployment: str | Path | Deployment, backend: str | Backend | Callable[[], Backend] = "ort",
                 device: str = "cpu", precision: str = "fp32", batch: int = 1, *,
                 halting: str | HaltingPolicy | None = None, max_segments: int | None = None,
                 options: BackendOptions | None = None, verify: bool = True) -> None:
        named = isinstance(backend, str)
        self.deployment = load_deployment(deployment, verify=verify, precision=precision if named else None)
        if int(batch) < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.batch = int(batch)
        #: the default halting of every solve / Scheduler (a call's halting / max_segments override it)
        self.policy = self.deployment.manifest.halting_policy().with_(halting, max_segments)
        self.lock = threading.RLock()  # one driver at a time (solve or a Scheduler step)
        self._scheduler: weakref.ref | None = None  # the one open Scheduler driving this session
        self._backend: Backend | None = None
        self._loader: Callable[[], Backend] | None = None
        if named:
            # Resolved once, here: a missing variant or one this backend / device may not run fails now, saying why.
            variant = self.deployment.manifest.resolve(precision, backend, device, fused=getattr(options, "fused", False))
            self._backend = create_backend(backend, self.deployment, variant, device, options)
        elif options is not None:
            raise ValueError("options configure a backend Session builds by name; a backend instance or loader "
                             "brings its own")
        elif callable(backend):
            self._loader = backend
        else:
            self._backend = self._adopt(backend)

    @property
    def backend(self) -> Backend:
        """The backend (a loader is called here, the first time)."""
        if self._backend is None:
            with self.lock:
                if self._backend is None:
                    self._backend = self._adopt(self._loader())
        return self._backend

    def _adopt(self, backend: Any) -> Backend:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend: expected a name, a Backend or a callable returning one; got {type(backend).__name__}")
        if Path(backend.deployment.root) != Path(self.deployment.root):
            raise ValueError(f"the backend runs {backend.deployment.root}, this session {self.deployment.root}")
        return backend

    # ---- life cycle --------------------------------------------------------------------------------
    def activate(self) -> "Session":
        with self.lock:
            self.backend.activate()
        return self

    def close(self) -> None:
        with self.lock:
            if self._backend is not None:  # a loader never called has nothing to free
                self._backend.deactivate()

    def __enter__(self) -> "Session":
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """For reports: the backend's facts (name, device, precision, resolved options, versions), the
        default halting policy and the batch size."""
        return {**self.backend.describe(), **self.policy.describe(), "batch": self.batch}

    @property
    def task(self) -> Any:
        return self.deployment.task

    @property
    def config(self):
        return self.deployment.config

    def new_loop(self, batch: int, halting: str | HaltingPolicy | None = None, max_segments: int | None = None,
                 trace: bool = False, state_hook: StateHook | None = None) -> SegmentLoop:
        """Activate, allocate ``batch`` rows and return a loop over them (caller holds ``lock``)."""
        policy = self.policy.with_(halting, max_segments)
        self.backend.activate()
        self.backend.allocate(batch)
        return SegmentLoop(self.backend, policy, trace=trace, state_hook=state_hook)

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
              halting: str | HaltingPolicy | None = None, max_segments: int | None = None, trace: bool = False,
              state_hook: StateHook | None = None) -> list[SolveResult]:
        """Solve puzzles (``hrm.tasks.Puzzle`` objects or a token array [N, S]); results in input order.

        ``state_hook(segments_per_row, z_H)`` is called after every segment (parity drift uses it).
        Raises :class:`hrm.errors.NumericsError` naming the segment and rows on NaN/Inf.
        """
        return list(self.iter_solve(puzzles, puzzle_ids=puzzle_ids, halting=halting, max_segments=max_segments,
                                    trace=trace, state_hook=state_hook))

    def iter_solve(self, puzzles: Sequence[Any] | np.ndarray, *, puzzle_ids: Sequence[int] | None = None,
                   halting: str | HaltingPolicy | None = None, max_segments: int | None = None,
                   trace: bool = False, state_hook: StateHook | None = None,
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
                yield build_result(done[row], task, loop.policy)
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
