"""A bounded HTTP load generator for ``hrm-serve``: N requests from C concurrent clients, then stop.

Used by the load tests and ``benchmarks/serve_bench.py``. Bounded twice: a fixed number of requests,
and a deadline after which unsent requests are not sent and unanswered ones are cancelled, so a run
always ends by itself. Every request's outcome is kept (a :class:`hrm.serve.client.Reply`, or the
exception), so a test can prove that none went unanswered.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class LoadRun:
    """Outcome of one run: per request (in request order) its reply or exception, and its latency."""

    outcomes: list[Any]
    latency_ms: list[float | None]
    seconds: float

    @property
    def unanswered(self) -> list[int]:
        """Requests without a reply (exception, or never sent before the deadline)."""
        from hrm.serve.client import Reply

        return [i for i, o in enumerate(self.outcomes) if not isinstance(o, Reply)]

    def summary(self) -> dict[str, Any]:
        """Requests, answered puzzles/s, requests/s and latency percentiles (ms) over answered requests."""
        from hrm.serve.client import Reply

        puzzles = sum(len(o.results) for o in self.outcomes if isinstance(o, Reply))
        answered = [x for x in self.latency_ms if x is not None]  # a latency is kept for a reply only
        return load_summary(len(self.outcomes), answered, puzzles, self.seconds)


def load_summary(requests: int, latency_ms: Sequence[float], puzzles: int, seconds: float) -> dict[str, Any]:
    """One load run's numbers (the load tests' and ``benchmarks/serve_bench.py``'s, in-process phases
    included): ``latency_ms`` of the answered requests, ``puzzles`` answered in ``seconds``."""
    lat = np.asarray(latency_ms, dtype=float)
    return {"requests": requests, "answered": int(lat.size), "seconds": round(seconds, 3),
            "requests_per_s": round(lat.size / seconds, 2), "puzzles_per_s": round(puzzles / seconds, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None}


async def run_load(url: str, requests: Sequence[Sequence[str]], *, clients: int = 8, deadline_s: float = 300.0,
                   timeout_s: float = 120.0, on_reply: Callable[[int], None] | None = None) -> LoadRun:
    """Send ``requests`` (each a list of input texts) from ``clients`` concurrent connections.

    ``on_reply(k)`` is called after the k-th reply (1-based), e.g. to kill a replica mid-run.
    """
    from hrm.serve.client import AsyncClient

    outcomes: list[Any] = [None] * len(requests)
    latency: list[float | None] = [None] * len(requests)
    next_index = iter(range(len(requests)))
    done = 0

    async def worker(client: AsyncClient) -> None:
        nonlocal done
        for i in next_index:
            t0 = time.perf_counter()
            try:
                outcomes[i] = await client.solve(*requests[i])
                latency[i] = (time.perf_counter() - t0) * 1e3
            except Exception as exc:  # kept: a test decides whether it may happen
                outcomes[i] = exc
            done += 1
            if on_reply is not None:
                on_reply(done)

    t0 = time.perf_counter()
    async with AsyncClient(url, timeout=timeout_s, max_connections=clients) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    seconds = time.perf_counter() - t0
    for i, o in enumerate(outcomes):
        if o is None:
            outcomes[i] = TimeoutError(f"request {i} not answered within the {deadline_s:g} s deadline")
    return LoadRun(outcomes, latency, seconds)
