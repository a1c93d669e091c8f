"""The run: every target on the same deployment, group by group, through the phases; returns one document.

:func:`run` plans the targets (:mod:`hrm.bench.targets`), measures the device floor (:mod:`hrm.bench.floor`),
opens each (device, precision) group's targets together and runs the phases on them
(:mod:`hrm.bench.phases`), then derives agreement and ratios (:mod:`hrm.bench.analysis`). The JSON
layout is in :mod:`hrm.bench`. Threads are pinned (``torch.set_num_threads`` and ORT
``intra_op_num_threads``) and recorded. ``on_update(doc)`` is called after every phase (the CLI rewrites
``--json`` there), so even a killed run leaves its results so far.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from hrm.bench import env as benv
from hrm.bench.analysis import agreement, has_time_skips, ratios
from hrm.bench.floor import DevicePeaks, floor_report, measure_peaks
from hrm.bench.options import BenchOptions, Clock, default_precisions, default_threads
from hrm.bench.phases import PHASES, Group, describe_error, make_puzzles, open_group
from hrm.bench.targets import Target, deployment_ops, plan
from hrm.checkpoint import param_count
from hrm.manifest import STANDARD, run_refusal

SCHEMA = "hrm-bench/2"  # 2: agreement under the comparator's metric names (hrm.evaluation.compare)


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
    by_ops = {deployment_ops(dep): dep}
    for ops, path in (options.ops_deployments or {}).items():
        by_ops.setdefault(ops, load_deployment(path))
    policy = dep.manifest.halting_policy(max_segments=options.max_segments)
    n_pool = max(budget.solve_puzzles, min(64, max(batches)), 2)
    say(f"generating {n_pool} puzzles")
    pool, pool_source = make_puzzles(dep, n_pool, options.seed)
    targets = plan(dep, options.devices, options.backends, precisions, threads, ops=options.ops, ops_deployments=by_ops)
    deployment_of = {t.name: (dep if t.ops is None else by_ops.get(t.ops, dep)) for t in targets}
    if options.trt_note:
        for t in targets:
            if t.backend == "trt" and t.skip and "engines" in t.skip:
                t.skip += f" ({options.trt_note})"

    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": list(command) if command is not None else None,
        "environment": benv.environment(options.devices, threads),
        "deployment": _describe_deployment(dep, obtained, by_ops),
        "settings": {"devices": list(options.devices), "backends": list(options.backends), "precisions": precisions,
                     "ops": list(options.ops),
                     "batches": batches, "halting": list(options.halting), "max_segments": policy.max_segments,
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
        live = open_group(group, deployment_of, options, policy, doc, say)
        g = Group(live, options, budget, batches, pool, policy, clock, say, traces)
        try:
            for _, phase, always in PHASES:
                if always or not options.segments_only:
                    phase(g)
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
    agreement(doc, traces)
    ratios(doc, batches, options.halting)
    doc["complete"] = not clock.out_of_time() and not has_time_skips(doc)
    doc["environment"]["load_average_end"] = benv.load_average()
    update()
    return doc


def _describe_deployment(dep: Any, obtained: str, by_ops: dict[str, Any] | None = None) -> dict[str, Any]:
    man = dep.manifest
    c = dep.config
    return {"path": str(dep.root), "obtained": obtained,
            "ops": {p: dep.variant(p).ops for p in dep.precisions},
            "ops_deployments": {k: str(d.root) for k, d in (by_ops or {}).items()},
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
            if why := run_refusal(p, STANDARD, "torch", device):  # peaks are timed with torch
                entry["peaks"][p] = {"skipped": f"no {p} peak or floor: {why}"}
                continue
            say(f"measuring {device} peaks ({p})")
            try:
                measured[p] = measure_peaks(device, p)
            except Exception as exc:
                entry["peaks"][p] = {"error": describe_error(exc)}
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
