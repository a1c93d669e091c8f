"""The measurement phases: what each one times, through ``Session`` / ``SegmentLoop`` / ``Scheduler``.

A phase is a function of one :class:`Group` (the live targets of one device and precision, plus the
run's settings) that writes its numbers into each target's entry; :data:`PHASES` lists them in order.
Adding a phase (a soak, a serving phase) is writing one function and adding one row.

* **segment** — per batch size B: one ``SegmentLoop.run_segment()`` (the segment + its q read-back: what
  the solve loop pays per non-final segment including its one host synchronisation); all B rows loaded
  with puzzles; ``warmup`` segments first (arena growth, autotuning, graph capture, torch.compile happen
  there and are reported as ``setup_s`` / ``warmup_s``, never in the statistics).
* **solve** — batch 1, per halting mode: wall time of ``Session.solve([puzzle])`` (load + embed +
  segments + read-backs + decode/check) over many puzzles, after one warm-up solve; p50/p90/p99.
* **trace** — untimed: a few puzzles with fixed halting and a per-segment trace, for the agreement
  columns (at which segment a target's answers part from the reference's).
* **throughput** — per batch size B and halting mode: the runtime's continuous-batching
  :class:`~hrm.runtime.Scheduler` with B slots, N puzzles submitted at once, driven until idle;
  ``puzzles_per_s = puzzles / elapsed_s`` (median over rounds). N is a whole number of "waves" of B
  puzzles, sized from the measured segment time to fit the time cap.

Fairness on a loaded machine: targets of one precision are alive together and measured **interleaved**
(round robin: a few segments of each target in turn, repeated; each puzzle solved by every target in
turn), so a burst of load from elsewhere hits all of them rather than one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hrm.bench.options import BenchOptions, Budget, Clock
from hrm.bench.stats import median, summarize_ms
from hrm.bench.targets import Target
from hrm.halting import HaltingPolicy


@dataclass
class Live:
    """One target with its open session and its entry in the document."""

    target: Target
    session: Any
    entry: dict[str, Any]
    seg_samples: dict[int, list[float]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.entry["status"] == "running"

    def fail(self, exc: BaseException, phase: str) -> None:
        self.entry.update(status="failed", reason=f"{phase}: {describe_error(exc)}")


@dataclass
class Group:
    """What a phase works on: one (device, precision) group's live targets and the run's settings."""

    live: list[Live]
    options: BenchOptions
    budget: Budget
    batches: Sequence[int]
    pool: Sequence[Any]
    policy: HaltingPolicy  # the run's halting (cap, rule); phases set the mode
    clock: Clock
    say: Callable[[str], None]
    traces: dict[str, list[Any]]  # name -> per puzzle (per-segment answers, q_halt): for the agreement

    def running(self) -> list[Live]:
        return [lv for lv in self.live if lv.running]


# ---- puzzles ---------------------------------------------------------------------------------------

def make_puzzles(deployment: Any, n: int, seed: int = 0) -> tuple[list[Any], str]:
    """``n`` inputs from the deployment's task generator, else random tokens. Returns (items, source)."""
    c = deployment.config
    rng = np.random.default_rng(seed)
    try:
        task = deployment.task
    except Exception:  # unknown task metadata: fall back to random tokens
        task = None
    if task is not None:
        try:
            items = task.generate(n, rng)
            if items and all(np.asarray(p.tokens).shape == (c.seq_len,) for p in items):
                return items, f"{task.name}.generate"
        except Exception:
            pass
    toks = rng.integers(1, c.vocab_size, (n, c.seq_len)).astype(np.int32)
    return [t for t in toks], "random tokens"


def _cycle(items: Sequence[Any], n: int) -> list[Any]:
    return [items[i % len(items)] for i in range(n)]


# ---- opening targets ------------------------------------------------------------------------------------

def open_group(group: Sequence[Target], deployment_of: dict[str, Any], options: BenchOptions,
               policy: HaltingPolicy, doc: dict, say: Callable[[str], None]) -> list[Live]:
    """An active session per target (on the deployment of its graph ops); a target that cannot open is
    recorded as skipped or failed with the reason."""
    live = []
    for t in group:
        entry = doc["targets"][t.name]
        t0 = time.perf_counter()
        try:
            session = t.session(deployment_of[t.name], halting=policy, checkpoint=options.checkpoint).activate()
        except Exception as exc:
            entry.update(status=classify_error(exc), reason=describe_error(exc))
            say(f"  {t.name}: {entry['status']}: {entry['reason']}")
            continue
        entry.update(status="running", setup_s=round(time.perf_counter() - t0, 3))
        try:
            entry["backend"] = session.describe()
        except Exception:
            entry["backend"] = {"backend": t.backend}
        live.append(Live(t, session, entry))
    return live


def classify_error(exc: BaseException) -> str:
    """``skipped`` for "cannot run here" (missing provider, engine, checkpoint), ``failed`` otherwise."""
    from hrm.errors import HRMError

    return "skipped" if isinstance(exc, (HRMError, ImportError)) else "failed"


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


# ---- phases ---------------------------------------------------------------------------------------------

def segment_phase(g: Group) -> None:
    from hrm.runtime.loop import Request

    budget = g.budget
    for B in g.batches:
        ready: list[Live] = []
        for lv in g.running():
            if g.clock.over():
                lv.entry.setdefault("segment", {})[str(B)] = {"skipped": "time limit"}
                continue
            t0 = time.perf_counter()
            try:
                with lv.session.lock:
                    loop = lv.session.new_loop(B)
                    loop.admit([Request.of(p, index=i) for i, p in enumerate(_cycle(g.pool, B))])
                    for _ in range(budget.warmup):
                        loop.run_segment()
            except Exception as exc:
                lv.fail(exc, f"segment warm-up at batch {B}")
                continue
            lv.entry.setdefault("warmup_s", {})[str(B)] = round(time.perf_counter() - t0, 3)
            lv.seg_samples[B] = []
            ready.append(lv)
        per_round = max(1, math.ceil(budget.segment_reps / budget.rounds))
        for _ in range(budget.rounds):
            for lv in ready:
                samples = lv.seg_samples[B]
                if not lv.running or (len(samples) >= budget.min_reps
                                      and (sum(samples) > budget.segment_cap_s or g.clock.over())):
                    continue
                try:
                    with lv.session.lock:
                        loop = lv.session.new_loop(B)  # the rows loaded above stay in the batch-B buffers
                        for _ in range(per_round):
                            t0 = time.perf_counter()
                            loop.run_segment()
                            samples.append(time.perf_counter() - t0)
                            if len(samples) >= budget.min_reps and sum(samples) > budget.segment_cap_s:
                                break
                except Exception as exc:
                    lv.fail(exc, f"segment at batch {B}")
        for lv in ready:
            if lv.seg_samples.get(B):
                stats = summarize_ms(lv.seg_samples[B])
                stats["puzzle_segments_per_s"] = round(B * 1e3 / stats["p50"], 3) if stats["p50"] else None
                lv.entry.setdefault("segment", {})[str(B)] = stats
                g.say(f"  {lv.target.name}: segment B={B} p50 {stats['p50']:.3f} ms (n={stats['n']})")


def solve_phase(g: Group) -> None:
    puzzles = list(g.pool[: g.budget.solve_puzzles])
    for halting in g.options.halting:
        policy = g.policy.with_(halting)
        ready = []
        for lv in g.running():
            try:
                lv.session.solve([puzzles[0]], halting=policy)  # warm-up (batch-1 buffers, first-call costs)
            except Exception as exc:
                lv.fail(exc, f"solve warm-up ({halting})")
                continue
            ready.append(lv)
        times: dict[str, list[float]] = {lv.target.name: [] for lv in ready}
        results: dict[str, list[Any]] = {lv.target.name: [] for lv in ready}
        for i, p in enumerate(puzzles):
            for lv in ready:
                name = lv.target.name
                if not lv.running or (i >= g.budget.min_reps and (sum(times[name]) > g.budget.solve_cap_s
                                                                  or g.clock.over())):
                    continue
                try:
                    t0 = time.perf_counter()
                    res = lv.session.solve([p], halting=policy)[0]
                    times[name].append(time.perf_counter() - t0)
                except Exception as exc:
                    lv.fail(exc, f"solve ({halting})")
                    continue
                results[name].append(res)
        for lv in ready:
            name = lv.target.name
            if not times[name]:
                continue
            segs = [int(r.segments) for r in results[name]]
            stats = summarize_ms(times[name])
            stats["mean_segments"] = round(float(np.mean(segs)), 3)
            stats["per_segment_ms"] = round(stats["p50"] / max(float(np.median(segs)), 1.0), 4)
            stats["segments"] = segs
            stats["answers"] = [np.asarray(r.answer_tokens).tolist() for r in results[name]]
            lv.entry.setdefault("solve", {})[halting] = stats
            g.say(f"  {name}: solve ({halting}) p50 {stats['p50']:.2f} ms over {stats['n']} puzzles, "
                  f"{stats['mean_segments']:.2f} segments")


def trace_phase(g: Group) -> None:
    n = 1 if g.options.quick else 2
    for lv in g.running():
        if g.clock.over():
            continue
        try:
            res = lv.session.solve(list(g.pool[:n]), halting=g.policy.with_("fixed"), trace=True)
        except Exception as exc:
            lv.fail(exc, "trace solve")
            continue
        g.traces[lv.target.name] = [([np.asarray(t) for t in r.trace or []], list(r.q_halt)) for r in res]


def throughput_phase(g: Group) -> None:
    budget, cap = g.budget, g.policy.max_segments
    for B in g.batches:
        for halting in g.options.halting:
            plans: dict[str, int] = {}
            for lv in g.running():
                seg = (lv.entry.get("segment", {}).get(str(B)) or {}).get("p50")
                solve = (lv.entry.get("solve", {}).get(halting) or {})
                per_puzzle = float(solve.get("mean_segments") or cap) if halting == "act" else float(cap)
                plans[lv.target.name] = throughput_puzzles(B, seg, per_puzzle, budget)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
            for _ in range(budget.throughput_rounds):
                for lv in g.live:
                    name = lv.target.name
                    if name not in plans or not lv.running or (runs[name] and g.clock.over()):
                        continue
                    if g.clock.over():
                        skipped = {"skipped": "time limit"}
                        lv.entry.setdefault("throughput", {}).setdefault(str(B), {})[halting] = skipped
                        continue
                    try:
                        runs[name].append(scheduler_run(lv.session, B, g.policy.with_(halting),
                                                        _cycle(g.pool, plans[name])))
                    except Exception as exc:
                        lv.fail(exc, f"throughput at batch {B} ({halting})")
            for lv in g.live:
                rs = runs.get(lv.target.name)
                if not rs:
                    continue
                best = sorted(rs, key=lambda r: r["puzzles_per_s"])[len(rs) // 2]  # median run (upper for even)
                out = {**best, "rounds": len(rs), "puzzles_per_s_all": [r["puzzles_per_s"] for r in rs],
                       "puzzles_per_s_median": round(median([r["puzzles_per_s"] for r in rs]), 3)}
                lv.entry.setdefault("throughput", {}).setdefault(str(B), {})[halting] = out
                g.say(f"  {lv.target.name}: throughput B={B} ({halting}) {out['puzzles_per_s_median']:.2f} "
                      f"puzzles/s ({out['puzzles']} puzzles in {out['elapsed_s']:.3f} s)")


#: (name, phase, runs under --segments-only), in order. The document is rewritten after each.
PHASES: tuple[tuple[str, Callable[[Group], None], bool], ...] = (
    ("segment", segment_phase, True),
    ("solve", solve_phase, False),
    ("trace", trace_phase, False),
    ("throughput", throughput_phase, False),
)


def throughput_puzzles(batch: int, segment_ms: float | None, segments_per_puzzle: float, budget: Budget) -> int:
    """How many puzzles one throughput run submits: enough to fill ``throughput_cap_s`` at the measured
    segment time, at least one full wave of ``batch`` (and ``min_reps``), at most ``max_waves`` waves of
    max(batch, 16); a whole number of waves when batch > 1, so fixed halting never ends on a partial one."""
    lo = max(batch, budget.min_reps)
    hi = max(lo, budget.max_waves * max(batch, 16))
    if not segment_ms:
        n = lo
    else:
        per_puzzle_s = segment_ms / 1e3 * max(segments_per_puzzle, 1.0) / batch
        n = int(budget.throughput_cap_s / per_puzzle_s) if per_puzzle_s > 0 else hi
    n = min(max(n, lo), hi)
    if batch > 1:
        n = max(batch, (n // batch) * batch)
    return n


def scheduler_run(session: Any, slots: int, policy: HaltingPolicy, items: Sequence[Any]) -> dict[str, Any]:
    """Submit every item, drive the scheduler until idle; counts and the elapsed wall time."""
    from hrm.runtime import Scheduler

    sched = Scheduler(session, slots=slots, halting=policy)
    t0 = time.perf_counter()
    futures = [sched.submit(p) for p in items]
    steps = sched.run_until_idle()
    elapsed = time.perf_counter() - t0
    sched.stop()  # frees the session for the next Scheduler (one open Scheduler per Session)
    results = [f.result() for f in futures]
    segments = int(sum(r.segments for r in results))
    return {"puzzles": len(results), "elapsed_s": round(elapsed, 6),
            "puzzles_per_s": round(len(results) / elapsed, 3) if elapsed > 0 else None,
            "scheduler_steps": int(steps), "puzzle_segments": segments,
            "mean_segments": round(segments / max(len(results), 1), 3),
            "slot_utilisation": round(segments / max(steps * slots, 1), 4)}
