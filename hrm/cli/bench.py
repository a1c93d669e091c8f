"""``hrm-bench``: latency, per-segment time and throughput of every backend side by side, plus the floor.

Thin: resolve what to measure (:mod:`hrm.bench.models`), run :func:`hrm.bench.runner.run`, print the
tables (:mod:`hrm.bench.report`) and write ``--json``. Progress goes to stderr; the tables to stdout
(or nothing but the JSON document when ``--json -``). Examples::

    hrm-bench deploy/sudoku --batch 1 --batch 64
    hrm-bench model.safetensors --device cuda --precisions fp16,bf16 --json out.json
    hrm-bench --random-full sudoku --device cuda --batch 1 --batch 64 --batch 256 --quick --json h100.json
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import click

from hrm.cli.common import handle_errors
from hrm.cli.options import RuntimeArgs, parse_list, runtime_options
from hrm.errors import EXIT_REJECTED


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--random-full", "random_full", type=click.Choice(["sudoku", "maze"]), default=None,
              help="benchmark the full-size (27M) HRM with random weights, Sudoku-shaped (seq 81+1) or "
                   "Maze/ARC-shaped (seq 900+1), exported once to the cache; no PATH")
@click.option("--random-tiny", is_flag=True, help="benchmark the tests' tiny random HRM (4x4 Sudoku); no PATH")
@runtime_options(devices=True, omit=("backend",), precisions=True, haltings=True, default_precisions=None,
                 flags=("threads", "checkpoint"))
@click.option("--backends", default="ort,trt,torch,torch-compile", show_default=True,
              help="comma-separated: ort, trt, torch (eager reference), torch-compile  (--precision default: fp32 on "
                   "CPU; fp32,fp16,bf16 with --device cuda; int8 runs on ort cpu)")
@click.option("--ops", "graph_ops", default="standard,ort-contrib", show_default=True,
              help="graph ops for the ort configurations: standard (opset-17 primitives) and/or ort-contrib "
                   "(ONNX Runtime's fused ops, rows ort-<device>-contrib*); a checkpoint or --random-* is exported "
                   "once per op set from the same weights, a deployment PATH has the one it was exported with")
@click.option("--batch", "batches", type=click.IntRange(min=1), multiple=True,
              help="batch size for per-segment latency and throughput (repeat)  [default: 1]")
@click.option("--puzzles", type=click.IntRange(min=1), default=None,
              help="batch-1 solves per configuration and halting mode  [default: 32; 6 with --quick]")
@click.option("--segments-only", is_flag=True, help="only per-segment latency (and the floor)")
@click.option("--json", "json_out", default=None,
              help="write the JSON document here ('-' = stdout, tables then go to stderr); rewritten after "
                   "every phase, so a killed run keeps what it measured")
@click.option("--quick", is_flag=True, help="few repetitions and puzzles, short time caps (smoke runs, GPU slots)")
@click.option("--time-limit", type=click.FloatRange(min=0), default=None,
              help="seconds for the measurements (not the export before them); what is left is skipped and "
                   "marked; 0 = no limit  [default: 420 with --quick or --device cuda (fits a 10-minute GPU "
                   "slot), else none]")
@click.option("--build-engines", is_flag=True,
              help="when exporting (checkpoint, --random-*), also build TensorRT engines for the trt targets")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="where exports are cached  [default: $HRM_BENCH_CACHE or ~/.cache/hrm-deploy/bench]")
@click.option("--seed", type=int, default=0, show_default=True, help="puzzle (and random-model) seed")
@click.option("--soak", type=click.IntRange(min=1), default=None,
              help="instead of the benchmark: N puzzles from --soak-threads threads through one Scheduler (ort "
                   "on the first --device and --precision, --threads, --max-segments, one --halting [default: "
                   "act]; slots: the first --batch, default 64), every answer checked against solving it alone; "
                   "throughput and resident memory at start/middle/end (hrm.bench.soak); exit 1 on any mismatch")
@click.option("--soak-threads", type=click.IntRange(min=1), default=4, show_default=True,
              help="--soak: submitting threads")
@handle_errors
def main(path: Path | None, random_full: str | None, random_tiny: bool, runtime: RuntimeArgs, backends: str,
         graph_ops: str, batches: tuple[int, ...], puzzles: int | None, segments_only: bool, json_out: str | None,
         quick: bool, time_limit: float | None, build_engines: bool, cache_dir: Path | None, seed: int,
         soak: int | None, soak_threads: int) -> None:
    """Benchmark PATH (a deployment directory or a checkpoint) on every available backend and precision.

    Measures, side by side on the same weights: per-segment latency at each --batch, batch-1 solve
    latency (p50/p90/p99, fixed and ACT halting), throughput through the continuous-batching
    scheduler with B slots, and the device floor (counted FLOPs and weight bytes per segment against
    peaks measured in this run). Unavailable configurations are listed as skipped with the reason.
    """
    from hrm.bench.models import BenchError, export_ops_deployments, random_checkpoint, resolve_ops_deployments
    from hrm.bench.options import BenchOptions, default_precisions
    from hrm.bench.runner import run
    from hrm.bench.targets import BACKEND_CHOICES
    from hrm.manifest import GRAPH_OPS, STANDARD

    chosen = [x for x in (path is not None, random_full is not None, random_tiny) if x]
    if len(chosen) != 1:
        raise BenchError("give exactly one of PATH, --random-full SHAPE or --random-tiny")
    devices = runtime.devices
    backend_list = parse_list(backends, BACKEND_CHOICES, "--backends")
    precision_list = list(runtime.precisions) or default_precisions(devices)
    ops_list = parse_list(graph_ops, GRAPH_OPS, "--ops")
    if build_engines and STANDARD not in ops_list:
        raise BenchError(f"--build-engines needs the standard graphs (TensorRT engines are built from --ops standard "
                         f"exports only); add standard to --ops {graph_ops}")
    if time_limit is None and (quick or "cuda" in devices):
        time_limit = 420.0
    time_limit = time_limit or None  # 0: no limit
    to_stdout = json_out == "-"
    err = _console(stderr=True)
    started = time.perf_counter()

    def log(msg: str) -> None:
        err.print(f"[dim]{time.perf_counter() - started:7.1f}s[/] {msg}", highlight=False, soft_wrap=True)

    if soak is not None:  # a sibling measurement (hrm.bench.soak), not a row of hrm.bench.phases.PHASES
        _soak(path, runtime, precision_list[0], soak, soak_threads, (batches or (64,))[0], seed, cache_dir, json_out,
              log)
        return

    engine = None
    if build_engines:
        from hrm.export import EngineOptions

        top = max(batches or (1,))
        engine = EngineOptions(min_batch=1, opt_batch=min(top, 64), max_batch=top,
                               graphs=("embed", "l_step", "h_step", "heads"))
    trt_note = None

    def prepare(engine_options):
        if path is not None:
            d, how, others = resolve_ops_deployments(path, precision_list, ops_list, cache_dir, engine=engine_options, log=log)
            return d, (how if how == "deployment" else f"checkpoint {path} exported"), others
        shape = random_full or "tiny"
        try:
            ckpt = random_checkpoint(shape, cache_dir, seed=seed, log=log)
            d, others = export_ops_deployments(ckpt, precision_list, ops_list, ckpt.parent, engine=engine_options, log=log)
        except ImportError as exc:
            raise BenchError(f"building a random model needs torch and onnx ({exc}): "
                             "pip install 'hrm-deploy[export]'") from None
        return d, (f"random-full {shape}" if random_full else "random-tiny"), others

    try:
        deploy_dir, obtained, ops_deployments = prepare(engine)
    except BenchError:
        raise
    except Exception as exc:
        if engine is None:
            raise
        # No usable TensorRT for this GPU (e.g. only TensorRT-RTX, which has no SM90): measure the rest.
        trt_note = f"--build-engines failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        log(f"[yellow]{trt_note}; continuing without engines[/]")
        deploy_dir, obtained, ops_deployments = prepare(None)

    options = BenchOptions(devices=devices, backends=backend_list, precisions=precision_list,
                           batches=tuple(batches) or (1,), halting=runtime.haltings, max_segments=runtime.max_segments,
                           puzzles=puzzles, segments_only=segments_only, quick=quick,
                           threads=runtime.option_values.get("threads"), seed=seed,
                           checkpoint=runtime.option_values.get("checkpoint"), time_limit=time_limit, trt_note=trt_note,
                           ops=tuple(ops_list), ops_deployments=ops_deployments)

    def write(doc: dict) -> None:
        if json_out and not to_stdout:
            from hrm.io import write_text_atomic

            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(json_out, json.dumps(doc, indent=1) + "\n")

    command = [_canonical_command(click.get_current_context().params), shlex.join(sys.argv)]
    doc = run(deploy_dir, options, command=command, obtained=obtained, log=log, on_update=write)
    from hrm.bench.report import render

    render(doc, _console(stderr=to_stdout))
    if to_stdout:
        click.echo(json.dumps(doc, indent=1))
    elif json_out:
        log(f"wrote {json_out}")


def _soak(path: Path | None, runtime: RuntimeArgs, precision: str, n: int, threads: int, slots: int, seed: int,
          cache_dir: Path | None, json_out: str | None, log) -> None:
    """``--soak N``: N puzzles through one Scheduler of the ort backend on the first --device / --precision,
    with --threads, --max-segments and --halting (one mode; default act) of the shared group; exit 1 on any
    mismatch."""
    from hrm.bench.models import BenchError, resolve_path
    from hrm.bench.soak import SoakOptions, run_soak, summary

    if path is None:
        raise BenchError("--soak needs PATH (a deployment directory or a checkpoint)")
    deploy_dir, _ = resolve_path(path, [precision], cache_dir, log=log)
    halting = runtime.haltings[0] if len(runtime.haltings) == 1 else "act"
    options = SoakOptions(n, threads, slots, seed=seed, device=runtime.device, precision=precision, halting=halting,
                          max_segments=runtime.max_segments, options=runtime.options("ort", skip=("checkpoint",)))
    doc = run_soak(deploy_dir, options, log=log)
    doc["command"] = shlex.join(["hrm-bench", *sys.argv[1:]])
    if json_out:
        from hrm.io import write_text_atomic

        write_text_atomic(json_out, json.dumps(doc, indent=1) + "\n")
    click.echo(summary(doc))
    if doc["mismatches"] or doc["errors"]:
        sys.exit(EXIT_REJECTED)


def _canonical_command(params: dict) -> str:
    """The command line that reproduces this run, rebuilt from the parsed options (defaults omitted)."""
    words = ["hrm-bench"]
    if params.get("path") is not None:
        words.append(str(params["path"]))
    for name, value in params.items():
        if name == "path" or value is None or value is False or value == ():
            continue
        flag = "--" + {"devices": "device", "batches": "batch", "json_out": "json", "graph_ops": "ops"}.get(
            name, name).replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, tuple):
            for v in value:
                words += [flag, str(v)]
        elif (name, value) not in (("backends", "ort,trt,torch,torch-compile"), ("halting", "fixed,act"), ("seed", 0),
                                   ("graph_ops", "standard,ort-contrib")):
            words += [flag, str(value)]
    return shlex.join(words)


def _console(stderr: bool):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 180)


if __name__ == "__main__":
    main()
