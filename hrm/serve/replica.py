"""One serving replica: a Session, a continuous-batching Scheduler, and answers as JSON-able dicts.

Every caller's puzzles go into the same Scheduler, so concurrent requests share the replica's slots
(a halted row is refilled at the next segment from whichever request is waiting). The class is plain
Python, usable and testable without Ray; :mod:`hrm.serve.app` wraps it as a Ray Serve deployment and
gives it Ray's metric types.

Every puzzle handed to :meth:`SolverReplica.solve` comes back as exactly one item: the
``SolveResult.to_dict`` object ``hrm-run --json`` prints, or an error item (:func:`error_item`) whose
``status`` says whose fault it was: 422 the input, 500 the model or backend (NaN, a backend
failure), 503 the replica went away before answering (safe to retry elsewhere). Closing stops the
Scheduler without draining once ``drain_s`` has passed: the Scheduler itself fails every request it
still holds with :class:`~hrm.runtime.SchedulerClosed` (answered here with 503), so nothing is left
waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any, Sequence

from hrm.errors import InputError, NumericsError
from hrm.runtime.scheduler import SchedulerClosed
from hrm.serve.spec import SessionSpec

#: status of an item the replica could not answer because it was going away: retry it elsewhere.
RETRY = 503


def error_item(source: str, line: int | None, message: str, status: int) -> dict[str, Any]:
    """The error object of a record (``hrm-run --json``'s error line plus an HTTP-style status)."""
    return {"source": source, "line": line, "error": message, "status": int(status)}


async def all_done(futures: Sequence[Future]) -> None:
    """Wait until every future is resolved, waking the event loop once (not once per puzzle: the wake-ups
    from the scheduler's thread cost more than the rest of the bookkeeping)."""
    if not futures:
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            loop.call_soon_threadsafe(lambda: waiter.done() or waiter.set_result(None))

    for fut in futures:
        fut.add_done_callback(one_done)
    await waiter


class _NoMetrics:
    def answered(self, segments: int, queue_ms: float) -> None:
        pass

    def occupancy(self, active: int, pending: int, slot_use: float | None) -> None:
        pass


class SolverReplica:
    """Session + Scheduler of one replica (see the module docstring)."""

    def __init__(self, spec: SessionSpec, metrics: Any = None) -> None:
        from hrm.runtime import Scheduler

        self.spec = spec
        self.session = spec.open()
        self.slots = spec.batch
        self.scheduler = Scheduler(self.session, self.slots).start()
        self.metrics = metrics or _NoMetrics()
        self.closed = False
        self._outstanding: set[Future] = set()
        self._lock = threading.Lock()
        self.answers = 0
        self.row_segments = 0  # sum of segments over answers: slot-segments that held a request
        self.queue_ms = 0.0
        self._window = (time.perf_counter(), 0, 0)  # (time, scheduler segments, row segments)
        self._progress = (0, time.monotonic())  # (scheduler segments, when last seen changing)

    # ---- solving ------------------------------------------------------------------------------------
    async def solve(self, puzzles: Sequence[Any], ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Answer every puzzle (answer ``id``s from ``ids``, default 0, 1, ...); one item each, in order."""
        ids = range(len(puzzles)) if ids is None else ids
        futures = [self._submit(p, i) for p, i in zip(puzzles, ids)]
        await all_done(futures)
        out = [self._outcome(p, f) for p, f in zip(puzzles, futures)]
        self._gauges()
        return out

    def _submit(self, puzzle: Any, request_id: int) -> Future:
        with self._lock:
            if self.closed:  # draining: the Scheduler still runs for what it holds, but takes nothing new
                fut: Future = Future()
                fut.set_exception(SchedulerClosed("replica is shutting down"))
                return fut
            fut = self.scheduler.submit(puzzle, request_id=request_id)
            self._outstanding.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future) -> None:
        with self._lock:
            self._outstanding.discard(fut)

    def _outcome(self, puzzle: Any, fut: Future) -> dict[str, Any]:
        source = str(getattr(puzzle, "source", "<input>"))
        try:
            result = fut.result(timeout=0)
        except SchedulerClosed as exc:
            return error_item(source, None, f"not answered: {exc}", RETRY)
        except NumericsError as exc:
            return error_item(source, None, str(exc), 500)
        except InputError as exc:  # the scheduler refused the tokens (wrong length, vocabulary, id)
            return error_item(source, None, str(exc), 422)
        except Exception as exc:  # a backend failure fails its batch, not the replica
            return error_item(source, None, f"{type(exc).__name__}: {exc}", 500)
        self._observe(result)
        return result.to_dict(trace=False)

    def _observe(self, result: Any) -> None:
        self.answers += 1
        self.row_segments += result.segments
        self.queue_ms += result.timings["queue"]
        self.metrics.answered(result.segments, result.timings["queue"])

    def _gauges(self) -> None:
        """Slot occupancy now, and slot use since the last update (at most once a second)."""
        t0, seg0, rows0 = self._window
        now, seg = time.perf_counter(), self.scheduler.segments_run
        slot_use = None
        if now - t0 >= 1.0 and seg > seg0:
            slot_use = (self.row_segments - rows0) / ((seg - seg0) * self.slots)
            self._window = (now, seg, self.row_segments)
        self.metrics.occupancy(self.scheduler.active, self.scheduler.pending, slot_use)

    # ---- state -----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters since start: answers, segments, mean queue time, slot use (rows that held a puzzle
        over rows computed)."""
        seg = self.scheduler.segments_run
        return {"slots": self.slots, "answers": self.answers, "segments_run": seg,
                "mean_segments": self.row_segments / self.answers if self.answers else 0.0,
                "mean_queue_ms": self.queue_ms / self.answers if self.answers else 0.0,
                "slot_use": self.row_segments / (seg * self.slots) if seg else 0.0,
                "active": self.scheduler.active, "pending": self.scheduler.pending}

    def healthy(self, stall_s: float = 60.0) -> str | None:
        """None, or why this replica cannot answer (Serve replaces a replica whose check fails): closed,
        or puzzles waiting while no segment ran for ``stall_s`` seconds (a hung backend)."""
        if self.closed:
            return "replica is closed"
        now, seg = time.monotonic(), self.scheduler.segments_run
        busy = self.scheduler.pending + self.scheduler.active
        last_seg, since = self._progress
        if not busy or seg != last_seg:
            self._progress = (seg, now)
        elif now - since > stall_s:
            return f"no segment ran for {now - since:.0f} s with {busy} puzzles in the replica"
        return None

    def close(self, drain_s: float = 10.0) -> int:
        """Stop taking puzzles, finish what is in flight for up to ``drain_s`` seconds, then stop the
        Scheduler, which fails the rest (answered with 503). Returns how many puzzles were failed."""
        with self._lock:
            self.closed = True
        deadline = time.monotonic() + drain_s
        while (self.scheduler.pending or self.scheduler.active) and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._lock:
            holding = list(self._outstanding)
        self.scheduler.stop(drain=False, reason=f"replica shut down (drained for {drain_s:g} s)")
        self.session.close()
        return sum(f.done() and isinstance(f.exception(), SchedulerClosed) for f in holding)
