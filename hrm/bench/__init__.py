"""hrm-bench: side-by-side latency/throughput of every backend on the same weights, plus the device floor.

Library API (the ``hrm-bench`` command is a thin shell over it)::

    from hrm.bench import BenchOptions, run, render, random_deployment

    deploy = random_deployment("sudoku", ["fp32"])             # full-size random model, exported once (cached)
    doc = run(deploy, BenchOptions(devices=["cpu"], batches=[1, 8], threads=1, quick=True))
    render(doc)                                               # rich tables, ratios vs the PyTorch references
    doc["targets"]["ort-cpu/fp32"]["segment"]["1"]["p50"]      # ms

Modules: :mod:`.floor` (FLOPs / bytes per segment, measured device peaks, the floor), :mod:`.stats`
(percentiles, summaries), :mod:`.targets` (the configurations and why one is skipped), :mod:`.torch_fast`
(``torch.compile`` / CUDA-graph PyTorch references), :mod:`.options` (what to run, budgets, the clock),
:mod:`.phases` (the interleaved measurements, through Session / SegmentLoop / Scheduler; one row of
``PHASES`` each), :mod:`.analysis` (agreement and ratios across targets), :mod:`.runner` (the run),
:mod:`.report` (tables), :mod:`.models` (random full-size models, checkpoint export cache), :mod:`.env`
(machine, versions, threads), :mod:`.soak` (``--soak N``: a bounded soak of the Scheduler, every answer
checked against solving it alone; its own JSON document, not ``hrm-bench/2``).

The JSON document (``schema: hrm-bench/2``; 2 renamed the agreement metrics to the comparator's)::

    {schema, created, command, elapsed_s, complete,
     environment: {hostname, platform, python, cpu, gpu, device_names, versions, threads, load_average_*, git},
     deployment: {path, obtained, config, parameters, seq_len, total_seq_len, task, precisions, graphs, engines,
                  ops: {<prec>: standard|ort-contrib}, ops_deployments: {<ops>: path}},
     settings: {devices, backends, precisions, ops, batches, halting, max_segments, threads, quick, budget, puzzles},
     floor: {<device>: {peaks: {<prec>: DevicePeaks}, peaks_used: {...},
                        segment: {<prec>: {<batch>: SegmentCost + floor_seconds}}}},
     targets: {"<label>/<precision>": {status: ok|skipped|failed, reason?, config (+ ops for ort/trt), backend,
               setup_s, warmup_s,
               segment: {<batch>: {n, p50, p90, p99, mean, min, max, puzzle_segments_per_s}},     # ms
               solve: {<halting>: {n, p50, p90, p99, ..., mean_segments, per_segment_ms, segments, answers}},
               throughput: {<batch>: {<halting>: {puzzles, elapsed_s, puzzles_per_s, puzzles_per_s_median,
                                                  scheduler_steps, slot_utilisation, ...}}},
               ratios: {torch-eager-fp32|torch-eager|torch-compile|ort-standard (contrib targets: the same
                        configuration on the standard graphs):
                        {reference, segment_b<B>, solve_<h>, throughput_b<B>_<h>}},
               agreement: {torch-eager-fp32|torch-eager: {reference, <halting>: {n, answer_agreement,
                           token_agreement, halting_agreement}, trace: {n, token_agreement_per_segment,
                           diverges_at, q_halt_seg1_abs_diff}}},
               floor_fraction: {b<B>: floor time / segment time}}}}
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BenchOptions": "hrm.bench.options", "Budget": "hrm.bench.options", "run": "hrm.bench.runner",
    "PHASES": "hrm.bench.phases", "KINDS": "hrm.bench.targets",
    "render": "hrm.bench.report", "summary_lines": "hrm.bench.report",
    "Target": "hrm.bench.targets", "plan": "hrm.bench.targets",
    "random_deployment": "hrm.bench.models", "resolve_path": "hrm.bench.models", "BenchError": "hrm.bench.models",
    "random_checkpoint": "hrm.bench.models", "export_ops_deployments": "hrm.bench.models",
    "resolve_ops_deployments": "hrm.bench.models",
    "segment_cost": "hrm.bench.floor", "measure_peaks": "hrm.bench.floor", "floor_seconds": "hrm.bench.floor",
    "floor_report": "hrm.bench.floor",
    "percentile": "hrm.bench.stats", "median": "hrm.bench.stats", "summarize_ms": "hrm.bench.stats",
    "TorchFastBackend": "hrm.bench.torch_fast",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Lazy imports: ``import hrm.bench`` stays instant and torch-free."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hrm.bench' has no attribute {name!r}")
