"""Continuous batching: a fixed number of slots, each halted slot refilled from a queue.

Like the in-flight batching of TensorRT-LLM's runtime, this is a scheduler *over* a session, not a
change to a backend: between two segments, halted rows leave (their future is resolved) and queued
requests take the free slots (state reset to H_init / L_init, x recomputed by embed for the batch),
while the other rows carry on where they were. Under ``act`` halting this keeps every slot busy
instead of waiting for the slowest row of a chunk.

Thread safety: :meth:`Scheduler.submit` may be called from any number of threads (a
``queue.Queue`` hands requests to the driver). One driver runs segments: either the caller, with
:meth:`step` / :meth:`run_until_idle`, or a background thread started by :meth:`start`. The driver
holds ``session.lock`` while stepping, so a ``Session.solve`` elsewhere waits rather than corrupting
the slots.

Life cycle (every future a Scheduler returns is resolved; nothing can hang on it):

* a session is driven by one Scheduler at a time: constructing a second one while the first is
  open raises, because two sets of slots over the same buffers would corrupt each other's rows;
* :meth:`stop` closes it: with ``drain`` (the default) queued and in-flight requests are answered
  first; without, they fail with :class:`SchedulerClosed`, as they do when the body of
  ``with Scheduler(...)`` raises; then the session is free for another Scheduler;
* :meth:`submit` (and :meth:`step`) after :meth:`stop` raise :class:`SchedulerClosed`.

Answers do not depend on arrival order or on who shares the batch: see the batch-independence rule
in :mod:`hrm.runtime.session` (the scheduler runs the session's backend at B = ``slots``).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from hrm.errors import InputError
from hrm.halting import HaltingPolicy
from hrm.runtime.loop import Request, SegmentLoop
from hrm.runtime.results import SolveResult, build_result


class SchedulerClosed(RuntimeError):
    """The Scheduler was stopped: it takes no new request, and one it had not answered fails with this."""


class Scheduler:
    """Slots over one session; ``submit`` returns a Future of :class:`SolveResult`."""

    def __init__(self, session: Any, slots: int | None = None, *, halting: str | HaltingPolicy | None = None,
                 max_segments: int | None = None, trace: bool = False) -> None:
        self.session = session
        self.slots = int(slots or session.batch)
        if self.slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.policy = session.policy.with_(halting, max_segments)  # validated here, not at the first step
        self.trace = trace
        self._queue: queue.Queue[tuple[Request, Future]] = queue.Queue()
        self._futures: dict[int, Future] = {}  # slot row -> future
        self._ids = itertools.count()
        self._loop: SegmentLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._closing = threading.Lock()  # makes "closed?" + "enqueue" one step against stop()
        self.closed = False
        self.segments_run = 0
        session.attach_scheduler(self)  # raises if another open Scheduler drives this session

    # ---- submission (any thread) ------------------------------------------------------------------
    def submit(self, puzzle: Any, request_id: Any = None) -> Future:
        """Queue a puzzle (a ``Puzzle`` or a token vector); the Future yields its SolveResult.

        A puzzle the model cannot read fails its own Future (never the batch it would have joined);
        after :meth:`stop` this raises :class:`SchedulerClosed`."""
        rid = next(self._ids) if request_id is None else request_id
        fut: Future = Future()
        try:
            req = Request.of(puzzle, request_id=rid)
            req.check(self.session.config)
        except InputError as exc:  # refused here, so a bad input can never fail the batch it would have joined
            fut.set_exception(exc)
            return fut
        fut.set_running_or_notify_cancel()
        with self._closing:
            if self.closed:
                raise SchedulerClosed("this Scheduler was stopped; it takes no new requests (start another one)")
            self._queue.put((req, fut))
        self._wake.set()
        return fut

    @property
    def pending(self) -> int:
        """Requests waiting for a slot."""
        return self._queue.qsize()

    @property
    def active(self) -> int:
        """Slots currently holding a request."""
        return 0 if self._loop is None else self._loop.active

    # ---- driving (one thread) ------------------------------------------------------------------------
    def step(self) -> list[SolveResult]:
        """Fill free slots from the queue, run one segment, resolve finished futures."""
        if self.closed and self._thread is None:
            raise SchedulerClosed("this Scheduler was stopped")
        with self.session.lock:
            loop = self._ensure_loop()
            admitted: list[tuple[Request, Future]] = []
            for _ in range(len(loop.free_rows())):
                try:
                    admitted.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if admitted:
                try:
                    rows = loop.admit([r for r, _ in admitted])
                except BaseException as exc:
                    for _, fut in admitted:
                        fut.set_exception(exc)
                    raise
                for row, (_, fut) in zip(rows, admitted):
                    self._futures[row] = fut
            if not loop.active:
                return []
            result = loop.step()
            self.segments_run += 1
        task = self.session.task
        out: list[SolveResult] = []
        for rec in result.finished:
            res = build_result(rec, task, self.policy)
            self._futures.pop(rec.row).set_result(res)
            out.append(res)
        for rec, err in result.failed:
            self._futures.pop(rec.row).set_exception(err)
        return out

    def run_until_idle(self) -> int:
        """Step until the queue is empty and every slot is free; returns segments run."""
        n = 0
        while self.pending or self.active:
            self.step()
            n += 1
        return n

    def _ensure_loop(self) -> SegmentLoop:
        # Re-allocate each time: a Session.solve in between may have made another batch size current.
        self.session.backend.activate()
        self.session.backend.allocate(self.slots)
        if self._loop is None:
            self._loop = self.session.new_loop(self.slots, self.policy, trace=self.trace)
        return self._loop

    # ---- background driver -----------------------------------------------------------------------------
    def start(self) -> "Scheduler":
        """Drive the slots from a daemon thread until :meth:`stop`."""
        if self.closed:
            raise SchedulerClosed("this Scheduler was stopped; start another one")
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._serve, name="hrm-scheduler", daemon=True)
            self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not (self.pending or self.active):
                self._wake.wait(timeout=0.05)
                self._wake.clear()
                continue
            try:
                self.step()
            except BaseException as exc:  # fail everything in flight rather than hang callers
                self._fail_in_flight(exc)
                time.sleep(0)

    def _fail_in_flight(self, exc: BaseException) -> None:
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(exc)
        self._futures.clear()
        if self._loop is not None:
            self._loop.rows = [None] * self._loop.slots

    def stop(self, drain: bool = True, reason: str = "the Scheduler was stopped") -> None:
        """Close the Scheduler; with ``drain``, answer what was submitted first (in the background
        thread if one runs, else here). Whatever is left unanswered fails with
        :class:`SchedulerClosed`; the session is then free for another Scheduler. Idempotent."""
        thread = self._thread
        if drain and not self.closed:
            if thread is not None:
                while (self.pending or self.active) and thread.is_alive():
                    time.sleep(0.001)
            else:
                self.run_until_idle()
        with self._closing:
            self.closed = True
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join()
            self._thread = None
        closed = SchedulerClosed(f"{reason} before this request was answered")
        with self.session.lock:
            self._fail_in_flight(closed)
            while True:
                try:
                    _, fut = self._queue.get_nowait()
                except queue.Empty:
                    break
                fut.set_exception(closed)
        self.session.detach_scheduler(self)

    def __enter__(self) -> "Scheduler":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.stop(drain=True)
        else:
            self.stop(drain=False, reason=f"the with-block raised {exc_type.__name__}")


