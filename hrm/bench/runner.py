"""The measurement: every target on the same deployment, interleaved, warm-up excluded, medians reported.

:func:`run` returns one JSON-able document (see :mod:`hrm.bench` for its layout). What it measures, for
each runnable :class:`~hrm.bench.targets.Target`:

* **segment** — per batch size B: ``backend.segment()`` + ``read_heads(q only)``, exactly what the
  solve loop pays per non-final segment including its one host synchronisation; all B rows loaded with
  puzzles; ``warmup`` segments first (arena growth, autotuning, graph capture, torch.compile happen
  there and are reported as ``setup_s`` / ``warmup_s``, never in the statistics).
* **solve** — batch 1, per halting mode: wall time of ``Session.solve([puzzle])`` (load + embed +
  segments + read-backs + decode/check) over many puzzles, after one warm-up solve; p50/p90/p99.
* **throughput** — per batch size B and halting mode: the runtime's continuous-batching
  :class:`~hrm.runtime.Scheduler` with B slots, N puzzles submitted at once, driven until idle;
  ``puzzles_per_s = puzzles / elapsed_s`` (median over rounds). N is a whole number of "waves" of B
  puzzles, sized from the measured segment time to fit the time cap.

Fairness on a loaded machine: targets of one precision are alive together and measured **interleaved**
(round robin: a few segments of each target in turn, repeated; each puzzle solved by every target in
turn), so a burst of load from elsewhere hits all of them rather than one. Threads are pinned
(``torch.set_num_threads`` and ORT ``intra_op_num_threads``) and recorded.

Budget: every loop stops at its repetition count or its time cap (after a minimum), and an optional
overall ``time_limit`` skips what is left (marked in the document) so a run in a 10-minute slot
always returns numbers. ``on_update(doc)`` is called after every phase (the CLI rewrites ``--json``
there), so even a killed run leaves its results so far.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hrm.bench import env as benv
from hrm.bench.floor import DevicePeaks, floor_report, measure_peaks, param_count
from hrm.bench.stats import median, ratio, summarize_ms
from hrm.bench.stats import dig as _get
from hrm.bench.targets import BACKEND_CHOICES, Target, deployment_ops, plan
from hrm.manifest import GRAPH_OPS, QUANTIZED

SCHEMA = "hrm-bench/1"


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
    halting: Sequence[str] = ("fixed", "act")
    max_segments: int | None = None
    puzzles: int | None = None  # overrides budget.solve_puzzles
    segments_only: bool = False
    quick: bool = False
    threads: int | None = None  # None: the CPUs this process may run on
    seed: int = 0
    checkpoint: Path | None = None  # torch targets: weights (default: the manifest's source checkpoint)
    trt_note: str | None = None  # appended to the trt targets' skip reason (e.g. why engines were not built)
    time_limit: float | None = None  # seconds for the whole run; what is left is skipped
    budget: Budget | None = None
    measure_floor: bool = True
    ops: Sequence[str] = GRAPH_OPS  # graph flavours whose ORT targets to measure
    # deployments of other graph flavours exported from the same weights (flavour -> directory)
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


# ---- puzzles ---------------------------------------------------------------------------------------

def make_puzzles(deployment: Any, n: int, seed: int = 0) -> tuple[list[Any], str]:
    """``n`` inputs from the deployment's task generator, else random tokens. Returns (items, source)."""
    c = deployment.config
    rng = np.random.default_rng(seed)
    task = None
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


def _tokens(items: Sequence[Any]) -> np.ndarray:
    return np.stack([np.asarray(getattr(p, "tokens", p), np.int32) for p in items])


def _ids(items: Sequence[Any]) -> np.ndarray:
    return np.array([int(getattr(p, "puzzle_id", 0)) for p in items], np.int32)


def _cycle(items: Sequence[Any], n: int) -> list[Any]:
    return [items[i % len(items)] for i in range(n)]


# ---- one target, alive ---------------------------------------------------------------------------------

@dataclass
class Live:
    target: Target
    session: Any
    entry: dict[str, Any]
    seg_samples: dict[int, list[float]] = field(default_factory=dict)


def open_target(t: Target, deployment: Any, options: BenchOptions) -> Any:
    """A Session for ``t`` (activated) on ``deployment`` (the one of ``t``'s graph flavour). Raises on any
    problem; the caller records it."""
    from hrm.runtime import Session

    opts = dict(t.options)
    if t.backend == "torch" and options.checkpoint is not None:
        opts["checkpoint"] = options.checkpoint
    session = Session(deployment, backend=t.backend, device=t.device, precision=t.precision, batch=1,
                      halting=options.halting[0] if options.halting else None,
                      max_segments=options.max_segments, **opts)
    if t.fast is not None:
        from hrm.bench.torch_fast import TorchFastBackend

        session.backend = TorchFastBackend(deployment, precision=t.precision, device=t.device,
                                           checkpoint=opts.get("checkpoint"), **t.fast)
    session.activate()
    return session


def classify_error(exc: BaseException) -> str:
    """``skipped`` for "cannot run here" (missing provider, engine, checkpoint), ``failed`` otherwise."""
    from hrm.errors import HRMError
    from hrm.runtime.backends.base import BackendError

    if isinstance(exc, (BackendError, HRMError, ImportError)):
        return "skipped"
    return "failed"


def _err(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


# ---- the run -----------------------------------------------------------------------------------------

def run(deployment_dir: str | Path, options: BenchOptions | None = None, *, command: Sequence[str] | None = None,
        obtained: str = "deployment", log: Callable[[str], None] | None = None,
        on_update: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Benchmark every target of ``options`` on the deployment in ``deployment_dir``; returns the document."""
    from hrm.runtime import load_deployment

    options = options or BenchOptions()
    say = log or (lambda msg: None)
    clock = Clock(options.time_limit)
    budget = options.resolved_budget()
    threads = options.threads or default_threads()
    benv.pin_threads(threads)
    precisions = list(options.precisions or default_precisions(options.devices))
    batches = sorted({int(b) for b in options.batches})
    if not batches or min(batches) < 1:
        raise ValueError(f"batch sizes must be >= 1, got {list(options.batches)}")

    dep = load_deployment(deployment_dir)
    flavours = {deployment_ops(dep): dep}
    for ops, path in (options.ops_deployments or {}).items():
        flavours.setdefault(ops, load_deployment(path))
    c = dep.config
    cap = options.max_segments or c.halt_max_steps
    n_pool = max(budget.solve_puzzles, min(64, max(batches)), 2)
    say(f"generating {n_pool} puzzles")
    pool, pool_source = make_puzzles(dep, n_pool, options.seed)
    targets = plan(dep, options.devices, options.backends, precisions, threads, ops=options.ops, flavours=flavours)
    deployment_of = {t.name: (dep if t.ops is None else flavours.get(t.ops, dep)) for t in targets}
    if options.trt_note:
        for t in targets:
            if t.backend == "trt" and t.skip and "engines" in t.skip:
                t.skip += f" ({options.trt_note})"

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": list(command) if command is not None else None,
        "environment": benv.environment(options.devices, threads),
        "deployment": _describe_deployment(dep, obtained, flavours),
        "settings": {"devices": list(options.devices), "backends": list(options.backends), "precisions": precisions,
                     "ops": list(options.ops),
                     "batches": batches, "halting": list(options.halting), "max_segments": cap,
                     "segments_only": options.segments_only, "quick": options.quick, "threads": threads,
                     "seed": options.seed, "time_limit_s": options.time_limit, "budget": asdict(budget),
                     "puzzles": {"source": pool_source, "pool": len(pool)}},
        "floor": {},
        "targets": {t.name: {"label": t.label, "precision": t.precision, "device": t.device,
                             **({"status": "skipped", "reason": t.skip} if t.skip else {"status": "pending"}),
                             "config": t.describe()} for t in targets},
        "complete": False,
    }

    def update() -> None:
        doc["elapsed_s"] = round(clock.elapsed, 2)
        if on_update is not None:
            on_update(doc)

    if options.measure_floor:
        _floor(doc, dep, options.devices, precisions, batches, say)
    update()

    # Groups: one precision at a time on each device (targets of a group are alive together, interleaved).
    traces: dict[str, list[Any]] = {}  # name -> per puzzle (per-segment answers, q_halt): parity, not saved
    runnable = [t for t in targets if not t.skip]
    groups: dict[tuple[str, str], list[Target]] = {}
    for t in runnable:
        groups.setdefault((t.device, t.precision), []).append(t)
    for i, ((device, precision), group) in enumerate(groups.items()):
        clock.start_group(len(groups) - i)
        if clock.out_of_time():
            for t in group:
                doc["targets"][t.name].update(status="skipped", reason="time limit reached before this target ran")
            continue
        say(f"{device}/{precision}: opening {', '.join(t.label for t in group)}")
        live = _open_group(group, deployment_of, options, doc, say)
        try:
            _segment_phase(live, batches, budget, pool, clock, say)
            update()
            if not options.segments_only:
                _solve_phase(live, options.halting, budget, pool, clock, say)
                _trace_phase(live, pool, 1 if options.quick else 2, cap, traces, clock)
                update()
                _throughput_phase(live, batches, options.halting, budget, pool, cap, clock, say)
                update()
        finally:
            for lv in live:
                try:
                    lv.session.close()
                except Exception:
                    pass
                if lv.entry.get("status") == "running":
                    lv.entry["status"] = "ok"
            _free_device_memory(device)
    _agreement(doc, traces)
    _ratios(doc, batches, options.halting)
    doc["complete"] = not clock.out_of_time() and not _has_time_skips(doc)
    doc["environment"]["load_average_end"] = benv.load_average()
    update()
    return doc


def _has_time_skips(doc: dict) -> bool:
    return "time limit" in json.dumps(doc["targets"])


def _describe_deployment(dep: Any, obtained: str, flavours: dict[str, Any] | None = None) -> dict[str, Any]:
    man = dep.manifest
    c = dep.config
    return {"path": str(dep.root), "obtained": obtained,
            "ops": {p: dep.variant(p).ops for p in dep.precisions},
            "ops_deployments": {k: str(d.root) for k, d in (flavours or {}).items()},
            "config": {k: v for k, v in c.to_dict().items()},
            "parameters": param_count(c), "seq_len": c.seq_len, "total_seq_len": c.total_seq_len,
            "task": (man.task or {}).get("name"), "precisions": dep.precisions,
            "graphs": {p: sorted(dep.variant(p).graphs) for p in dep.precisions},
            "engines": {p: sorted(dep.variant(p).engines) for p in dep.precisions},
            "source": man.source}


def _floor(doc: dict, dep: Any, devices: Sequence[str], precisions: Sequence[str], batches: Sequence[int],
           say: Callable[[str], None]) -> None:
    from hrm.bench.targets import cuda_problem

    for device in devices:
        if device == "cuda" and cuda_problem():
            doc["floor"][device] = {"skipped": cuda_problem()}
            continue
        if device == "cuda" and importlib.util.find_spec("torch") is None:
            doc["floor"][device] = {"skipped": "measuring GPU peaks needs torch"}
            continue
        entry: dict[str, Any] = {"peaks": {}, "segment": {}}
        measured: dict[str, Any] = {}
        for p in ["fp32", *[q for q in precisions if q != "fp32"]]:
            if device == "cpu" and p == "fp16":
                continue  # no fp16 arithmetic on CPUs worth measuring
            if p in QUANTIZED:
                entry["peaks"][p] = {"skipped": f"no {p} peak or floor: its MatMuls are ONNX Runtime's "
                                                "MatMulInteger, which has no PyTorch twin to time"}
                continue
            say(f"measuring {device} peaks ({p})")
            try:
                measured[p] = measure_peaks(device, p)
            except Exception as exc:
                entry["peaks"][p] = {"error": _err(exc)}
                continue
            entry["peaks"][p] = measured[p].to_dict()
        for p in precisions:
            if p not in measured:
                continue
            peaks = measured[p]
            # A floor is a best case: a narrow type may always be computed at the fp32 rate (CPUs without
            # native bf16 units measure bf16 matmuls far below fp32).
            base = measured.get("fp32")
            if base is not None and base.matmul_tflops > peaks.matmul_tflops:
                peaks = DevicePeaks(peaks.device, base.matmul_tflops, "fp32", peaks.copy_gbps, peaks.threads)
            entry["segment"][p] = floor_report(dep.config, batches, p, peaks)
            entry.setdefault("peaks_used", {})[p] = peaks.to_dict()
        doc["floor"][device] = entry


def _free_device_memory(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass


def _open_group(group: Sequence[Target], deployment_of: dict[str, Any], options: BenchOptions, doc: dict,
                say: Callable[[str], None]) -> list[Live]:
    live = []
    for t in group:
        entry = doc["targets"][t.name]
        t0 = time.perf_counter()
        try:
            session = open_target(t, deployment_of[t.name], options)
        except Exception as exc:
            entry.update(status=classify_error(exc), reason=_err(exc))
            say(f"  {t.name}: {entry['status']}: {entry['reason']}")
            continue
        entry.update(status="running", setup_s=round(time.perf_counter() - t0, 3))
        try:
            entry["backend"] = session.backend.describe()
        except Exception:
            entry["backend"] = {"backend": t.backend}
        live.append(Live(t, session, entry))
    return live


def _fail(lv: Live, exc: BaseException, phase: str) -> None:
    lv.entry.update(status="failed", reason=f"{phase}: {_err(exc)}")


# ---- phases ---------------------------------------------------------------------------------------------

def _segment_phase(live: list[Live], batches: Sequence[int], budget: Budget, pool: Sequence[Any], clock: Clock,
                   say: Callable[[str], None]) -> None:
    for B in batches:
        ready: list[Live] = []
        for lv in live:
            if lv.entry["status"] != "running":
                continue
            if clock.over():
                lv.entry.setdefault("segment", {})[str(B)] = {"skipped": "time limit"}
                continue
            be = lv.session.backend
            rows = _cycle(pool, B)
            t0 = time.perf_counter()
            try:
                with lv.session.lock:
                    be.allocate(B)
                    be.load_rows(range(B), _tokens(rows), _ids(rows))
                    for _ in range(budget.warmup):
                        be.segment()
                        be.read_heads(logits=False)
            except Exception as exc:
                _fail(lv, exc, f"segment warm-up at batch {B}")
                continue
            lv.entry.setdefault("warmup_s", {})[str(B)] = round(time.perf_counter() - t0, 3)
            lv.seg_samples[B] = []
            ready.append(lv)
        per_round = max(1, math.ceil(budget.segment_reps / budget.rounds))
        for _ in range(budget.rounds):
            for lv in ready:
                if lv.entry["status"] != "running":
                    continue
                samples = lv.seg_samples[B]
                if len(samples) >= budget.min_reps and (sum(samples) > budget.segment_cap_s or clock.over()):
                    continue
                be = lv.session.backend
                try:
                    with lv.session.lock:
                        be.allocate(B)
                        for _ in range(per_round):
                            t0 = time.perf_counter()
                            be.segment()
                            be.read_heads(logits=False)
                            samples.append(time.perf_counter() - t0)
                            if len(samples) >= budget.min_reps and sum(samples) > budget.segment_cap_s:
                                break
                except Exception as exc:
                    _fail(lv, exc, f"segment at batch {B}")
        for lv in ready:
            if lv.seg_samples.get(B):
                stats = summarize_ms(lv.seg_samples[B])
                stats["puzzle_segments_per_s"] = round(B * 1e3 / stats["p50"], 3) if stats["p50"] else None
                lv.entry.setdefault("segment", {})[str(B)] = stats
                say(f"  {lv.target.name}: segment B={B} p50 {stats['p50']:.3f} ms (n={stats['n']})")


def _solve_phase(live: list[Live], haltings: Sequence[str], budget: Budget, pool: Sequence[Any], clock: Clock,
                 say: Callable[[str], None]) -> None:
    puzzles = list(pool[: budget.solve_puzzles])
    for halting in haltings:
        ready = []
        for lv in live:
            if lv.entry["status"] != "running":
                continue
            try:
                lv.session.solve([puzzles[0]], halting=halting)  # warm-up (batch-1 buffers, first-call costs)
            except Exception as exc:
                _fail(lv, exc, f"solve warm-up ({halting})")
                continue
            ready.append(lv)
        times: dict[str, list[float]] = {lv.target.name: [] for lv in ready}
        segs: dict[str, list[int]] = {lv.target.name: [] for lv in ready}
        answers: dict[str, list[list[int]]] = {lv.target.name: [] for lv in ready}
        for i, p in enumerate(puzzles):
            for lv in ready:
                name = lv.target.name
                if lv.entry["status"] != "running":
                    continue
                if i >= budget.min_reps and (sum(times[name]) > budget.solve_cap_s or clock.over()):
                    continue
                try:
                    t0 = time.perf_counter()
                    res = lv.session.solve([p], halting=halting)[0]
                    times[name].append(time.perf_counter() - t0)
                except Exception as exc:
                    _fail(lv, exc, f"solve ({halting})")
                    continue
                segs[name].append(int(res.segments))
                answers[name].append(np.asarray(res.answer_tokens).tolist())
        for lv in ready:
            name = lv.target.name
            if not times[name]:
                continue
            stats = summarize_ms(times[name])
            stats["mean_segments"] = round(float(np.mean(segs[name])), 3)
            stats["per_segment_ms"] = round(stats["p50"] / max(float(np.median(segs[name])), 1.0), 4)
            stats["segments"] = segs[name]
            stats["answers"] = answers[name]
            lv.entry.setdefault("solve", {})[halting] = stats
            say(f"  {name}: solve ({halting}) p50 {stats['p50']:.2f} ms over {stats['n']} puzzles, "
                f"{stats['mean_segments']:.2f} segments")


def _trace_phase(live: list[Live], pool: Sequence[Any], n: int, cap: int, traces: dict[str, list[Any]],
                 clock: Clock) -> None:
    """Untimed: ``n`` puzzles solved with fixed halting and a per-segment trace, for the parity columns
    (at which segment a target's answers start to differ from the reference's)."""
    for lv in live:
        if lv.entry["status"] != "running" or clock.over():
            continue
        try:
            res = lv.session.solve(list(pool[:n]), halting="fixed", max_segments=cap, trace=True)
        except Exception as exc:
            _fail(lv, exc, "trace solve")
            continue
        traces[lv.target.name] = [([np.asarray(t) for t in r.trace or []], list(r.q_halt)) for r in res]


def _throughput_phase(live: list[Live], batches: Sequence[int], haltings: Sequence[str], budget: Budget,
                      pool: Sequence[Any], cap: int, clock: Clock, say: Callable[[str], None]) -> None:
    from hrm.runtime import Scheduler

    for B in batches:
        for halting in haltings:
            plans: dict[str, int] = {}
            for lv in live:
                if lv.entry["status"] != "running":
                    continue
                seg = (lv.entry.get("segment", {}).get(str(B)) or {}).get("p50")
                solve = (lv.entry.get("solve", {}).get(halting) or {})
                per_puzzle = float(solve.get("mean_segments") or cap) if halting == "act" else float(cap)
                plans[lv.target.name] = throughput_puzzles(B, seg, per_puzzle, budget)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
            for _ in range(budget.throughput_rounds):
                for lv in live:
                    name = lv.target.name
                    if name not in plans or lv.entry["status"] != "running":
                        continue
                    if runs[name] and clock.over():
                        continue
                    if clock.over():
                        lv.entry.setdefault("throughput", {}).setdefault(str(B), {})[halting] = {"skipped": "time limit"}
                        continue
                    try:
                        runs[name].append(_scheduler_run(Scheduler, lv.session, B, halting, _cycle(pool, plans[name])))
                    except Exception as exc:
                        _fail(lv, exc, f"throughput at batch {B} ({halting})")
            for lv in live:
                name = lv.target.name
                if not runs.get(name):
                    continue
                rs = runs[name]
                best = sorted(rs, key=lambda r: r["puzzles_per_s"])[len(rs) // 2]  # median run (upper for even)
                out = {**best, "rounds": len(rs), "puzzles_per_s_all": [r["puzzles_per_s"] for r in rs],
                       "puzzles_per_s_median": round(median([r["puzzles_per_s"] for r in rs]), 3)}
                lv.entry.setdefault("throughput", {}).setdefault(str(B), {})[halting] = out
                say(f"  {name}: throughput B={B} ({halting}) {out['puzzles_per_s_median']:.2f} puzzles/s "
                    f"({out['puzzles']} puzzles in {out['elapsed_s']:.3f} s)")


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


def _scheduler_run(Scheduler: Any, session: Any, slots: int, halting: str, items: Sequence[Any]) -> dict[str, Any]:
    """Submit every item, drive the scheduler until idle; counts and the elapsed wall time."""
    sched = Scheduler(session, slots=slots, halting=halting, max_segments=session.max_segments)
    t0 = time.perf_counter()
    futures = [sched.submit(p) for p in items]
    steps = sched.run_until_idle()
    elapsed = time.perf_counter() - t0
    sched.stop()  # frees the session for the next Scheduler
    results = [f.result() for f in futures]
    segments = int(sum(r.segments for r in results))
    return {"puzzles": len(results), "elapsed_s": round(elapsed, 6),
            "puzzles_per_s": round(len(results) / elapsed, 3) if elapsed > 0 else None,
            "scheduler_steps": int(steps), "puzzle_segments": segments,
            "mean_segments": round(segments / max(len(results), 1), 3),
            "slot_utilisation": round(segments / max(steps * slots, 1), 4)}


# ---- cross-target results ------------------------------------------------------------------------------

def reference_names(name: str, precision: str, device: str) -> dict[str, str]:
    """The references a target is compared with: eager fp32, eager same precision, compiled same precision;
    an ``ort-*-contrib*`` target also with the same configuration on the standard graphs (``ort-standard``)."""
    compiled = f"torch-compile-{device}" + ("-graph" if device == "cuda" else "")
    refs = {"torch-eager-fp32": f"torch-eager-{device}/fp32",
            "torch-eager": f"torch-eager-{device}/{precision}",
            "torch-compile": f"{compiled}/{precision}"}
    if name.startswith("ort-") and "-contrib" in name:
        refs["ort-standard"] = name.replace("-contrib", "", 1)
    if precision == "fp32":
        del refs["torch-eager"]  # the same target as torch-eager-fp32
    return {k: v for k, v in refs.items() if v != name}


def _agreement(doc: dict, traces: dict[str, list[Any]] | None = None) -> None:
    """Answers vs the eager references (same-precision eager, and fp32 eager), on the same puzzles:

    * per halting mode: fraction of answer cells equal, fraction of puzzles halting at the same segment;
    * ``trace`` (fixed halting): cell agreement after each segment, the first segment where it drops
      below 99% (``diverges_at``; None = never) and |q_halt - reference| after segment 1.

    A broken target (stale state, a wrong graph) differs from segment 1 on. A correct one matches the
    first segments and may drift later: a random-weight HRM's recurrence is chaotic (fp32 rounding
    differences grow ~3x per segment, so different-but-correct kernels part ways after ~10-13 of 16
    segments; trained models converge instead)."""
    traces = traces or {}
    targets = doc["targets"]
    for name, e in targets.items():
        solve = e.get("solve") or {}
        if not solve and name not in traces:
            continue
        out: dict[str, Any] = {}
        pairs = {"torch-eager-fp32": f"torch-eager-{e['device']}/fp32",
                 "torch-eager": f"torch-eager-{e['device']}/{e['precision']}"}
        if e["precision"] == "fp32":
            del pairs["torch-eager"]
        for key, ref_name in pairs.items():
            if ref_name == name or ref_name not in targets:
                continue
            ref = targets[ref_name].get("solve") or {}
            row: dict[str, Any] = {"reference": ref_name}
            for halting, s in solve.items():
                r = ref.get(halting)
                if not r or "answers" not in s or "answers" not in r:
                    continue
                n = min(len(s["answers"]), len(r["answers"]))
                if n == 0:
                    continue
                a, b = np.asarray(s["answers"][:n]), np.asarray(r["answers"][:n])
                row[halting] = {"cells": round(float((a == b).mean()), 4), "puzzles": n,
                                "same_segments": round(float(np.mean(np.asarray(s["segments"][:n]) ==
                                                                     np.asarray(r["segments"][:n]))), 4)}
            if name in traces and ref_name in traces:
                row["trace"] = _trace_agreement(traces[name], traces[ref_name])
            if len(row) > 1:
                out[key] = row
        if out:
            e["agreement"] = out


def _trace_agreement(mine: list[Any], ref: list[Any]) -> dict[str, Any]:
    per_segment: list[float] = []
    q1: list[float] = []
    for (steps, qh), (rsteps, rqh) in zip(mine, ref):
        for i, (a, b) in enumerate(zip(steps, rsteps)):
            if i == len(per_segment):
                per_segment.append(0.0)
            per_segment[i] += float((a == b).mean()) / len(mine)
        if qh and rqh:
            q1.append(abs(float(qh[0]) - float(rqh[0])))
    diverges = next((i + 1 for i, v in enumerate(per_segment) if v < 0.99), None)
    return {"puzzles": len(mine), "per_segment_cells": [round(v, 4) for v in per_segment],
            "diverges_at": diverges, "q_halt_seg1_abs_diff": round(max(q1), 6) if q1 else None}


def _ratios(doc: dict, batches: Sequence[int], haltings: Sequence[str]) -> None:
    """Per target and reference: time ratios (target / reference; < 1 = faster) for segment p50 per batch
    and solve p50 per halting, and throughput ratios (target / reference; > 1 = faster)."""
    targets = doc["targets"]
    for name, e in targets.items():
        if e.get("status") not in ("ok", "running"):
            continue
        out: dict[str, Any] = {}
        for key, ref_name in reference_names(name, e["precision"], e["device"]).items():
            ref = targets.get(ref_name)
            if not ref or ref.get("status") != "ok":
                continue
            row: dict[str, Any] = {"reference": ref_name}
            for B in batches:
                v = _get(e, "segment", str(B), "p50")
                r = _get(ref, "segment", str(B), "p50")
                if ratio(v, r) is not None:
                    row[f"segment_b{B}"] = ratio(v, r)
            for h in haltings:
                if ratio(_get(e, "solve", h, "p50"), _get(ref, "solve", h, "p50")) is not None:
                    row[f"solve_{h}"] = ratio(_get(e, "solve", h, "p50"), _get(ref, "solve", h, "p50"))
                for B in batches:
                    v = _get(e, "throughput", str(B), h, "puzzles_per_s_median")
                    r = _get(ref, "throughput", str(B), h, "puzzles_per_s_median")
                    if ratio(v, r) is not None:
                        row[f"throughput_b{B}_{h}"] = ratio(v, r)
            if len(row) > 1:
                out[key] = row
        if out:
            e["ratios"] = out
        floor = _get(doc, "floor", e["device"], "segment", e["precision"])
        if floor:
            eff = {}
            for B in batches:
                seg, fl = _get(e, "segment", str(B), "p50"), _get(floor, str(B), "floor_s")
                if seg and fl:
                    eff[f"b{B}"] = round(fl * 1e3 / seg, 4)
            if eff:
                e["floor_fraction"] = eff  # floor time / measured segment time (1.0 = at the floor)


