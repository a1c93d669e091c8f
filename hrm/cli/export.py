"""``hrm-export``: checkpoint -> deployment directory (ONNX graphs, manifest, optional TensorRT engines).

A thin layer over :func:`hrm.export.export_deployment`: options map onto its arguments, progress goes
to stderr through rich, and the closing table (or ``--json`` summary on stdout) is printed from the
returned :class:`hrm.export.ExportReport`. Errors print one line (:func:`hrm.cli.common.handle_errors`):
exit 1 when validation refused the graphs, 2 for usage and checkpoint errors; nothing is computed here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from hrm.cli.checkpoint_options import CHECKPOINT_HELP, load_kwargs, sizing_options
from hrm.cli.common import handle_errors
from hrm.errors import HRMError


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--checkpoint", "checkpoint", required=True, help=CHECKPOINT_HELP)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Deployment directory to create.")
@click.option("--precision", default="fp32,fp16,bf16", show_default=True,
              help="Comma-separated precision variants to export: fp32, fp16, bf16, int8 (fp32 state, "
                   "int8 weight MatMuls; ONNX Runtime CPU only; gate it with hrm-parity).")
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset (17..22; 17 parses on TensorRT 10.3+).")
@click.option("--ops", type=click.Choice(["standard", "ort-contrib"]), default="standard", show_default=True,
              help="Graph ops: standard opset-17 primitives (TensorRT parses them), or ONNX Runtime's fused "
                   "com.microsoft ops (SkipSimplifiedLayerNormalization, RotaryEmbedding, MultiHeadAttention; "
                   "ONNX Runtime only, so not with --engine).")
@click.option("--segment/--no-segment", default=False, show_default=True,
              help="Also export the fused 'segment' graph (N x (T l_step + h_step) + heads, weights shared).")
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Compare every graph with the PyTorch reference (ONNX Runtime, Polygraphy).")
@click.option("--validation-batch", default=2, show_default=True, type=click.IntRange(1), help="Batch used for validation.")
@click.option("--validation-provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="ONNX Runtime provider for validation; auto = CUDA when onnxruntime-gpu has it.")
@click.option("--engine", is_flag=True, help="Also build one TensorRT engine per graph (strongly typed).")
@click.option("--min-batch", default=1, show_default=True, type=click.IntRange(1), help="Engine profile: smallest batch.")
@click.option("--opt-batch", default=8, show_default=True, type=click.IntRange(1), help="Engine profile: batch to tune for.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1), help="Engine profile: largest batch.")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None,
              help="TensorRT timing cache file, read before and updated after each build.")
@click.option("--builder-optimization-level", type=click.IntRange(0, 5), default=None,
              help="TensorRT builder optimisation level (TensorRT's default: 3).")
@click.option("--trt-flavour", type=click.Choice(["auto", "tensorrt", "tensorrt_rtx"]), default="auto", show_default=True,
              help="TensorRT flavour; auto prefers tensorrt, else tensorrt_rtx (env HRM_TRT_FLAVOUR overrides auto).")
@click.option("--rtx-compute-capability", "rtx_cc", multiple=True,
              help="TensorRT-RTX target, e.g. 8.9 or 12.0 or 'current' (repeatable; default: RTX's own targets).")
@click.option("--identifiers", type=click.Path(path_type=Path), default=None,
              help="The dataset build's identifiers.json (puzzle id -> name, e.g. ARC '0a1b2c3d_t5_0312456789'): "
                   "recorded in the deployment so hrm-run can run the official augment-and-vote procedure.")
@click.option("--tasks", type=click.Path(path_type=Path), default=None,
              help="Keep only the puzzle-embedding rows of these tasks (an ARC task file, a folder of them or a "
                   "challenges file) and id 0, renumbered: an edge-sized embedding. Needs --identifiers.")
@click.option("--force", is_flag=True,
              help="Replace the deployment at --out (only a deployment: never a folder that is not one, or that "
                   "holds the checkpoint).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@sizing_options
@handle_errors
def main(checkpoint: str, out: Path, precision: str, opset: int, ops: str, segment: bool, validate: bool,
         validation_batch: int, validation_provider: str, engine: bool, min_batch: int, opt_batch: int, max_batch: int,
         timing_cache: Path | None, builder_optimization_level: int | None, trt_flavour: str,
         rtx_cc: tuple[str, ...], identifiers: Path | None, tasks: Path | None, force: bool, as_json: bool,
         task_name: str | None, task_param: tuple[str, ...],
         seq_len: int | None, dataset_json: Path | None) -> None:
    """Export an HRM or TRM checkpoint to ONNX (+ TensorRT) and prove it matches the PyTorch model."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    progress = _Progress(console)
    try:
        from hrm.export import EngineOptions, export_deployment

        engine_opts = EngineOptions(min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
                                    timing_cache=timing_cache, builder_optimization_level=builder_optimization_level,
                                    flavour=trt_flavour, compute_capabilities=tuple(rtx_cc)) if engine else None
        report = export_deployment(checkpoint, out, precisions=precision, opset=opset, validate=validate,
                                   engine=engine_opts, force=force, segment=segment, progress=progress,
                                   validation_batch=validation_batch, provider=validation_provider, ops=ops,
                                   identifiers=identifiers, tasks=tasks,
                                   **load_kwargs(task_name, task_param, seq_len, dataset_json))
    except HRMError as exc:
        failed = getattr(exc, "report", None)
        if failed is not None:
            progress.close()
            _emit(console, failed, as_json)
        raise
    finally:
        progress.close()
    _emit(console, report, as_json)


class _Progress:
    """Progress callback: a transient spinner per running stage (terminals only), a ✓ line per finished
    stage, indented notes in between. Nothing but the error line is printed when loading fails."""

    def __init__(self, console: Any) -> None:
        self.console, self.status = console, None

    def __call__(self, event: Any) -> None:
        if event.kind == "done":
            self._stop()
            self.console.print(f"[green]✓[/] {event.stage}: {event.message} [dim]({event.seconds:.1f} s)[/]")
        elif event.kind == "start":
            if self.console.is_terminal:
                self.status = self.console.status(f"{event.stage}: {event.message}")
                self.status.start()
        else:
            self.console.print(f"    [dim]{event.message}[/]", soft_wrap=True)  # paths and hashes stay whole

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop()


def _emit(console: Any, report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        console.print(_table(report))
        for name, v in (report.validation or {}).items():
            seg, chain = v["segment"], v["chain"]
            gate = "" if chain.get("gated", True) else (", not gated" + ("" if chain["passed"] else
                                                                          ": [yellow]past it[/]"))
            console.print(f"  {name}: composed segment max_rel {seg['max_rel']:.2e} (tol {seg['tolerance']:.1e}); "
                          f"{chain['segments']} chained segments max_rel {chain['max_rel']:.2e} "
                          f"(tol {chain['tolerance']:.1e}{gate}), argmax agreement {chain['prediction_agreement']:.1%}"
                          + (" (before quantization)" if "quantization" in v else ""))
            if "quantization" in v:
                q, d = v["quantization"], v["quantization"]["drift_vs_fp32"]
                n = sum(w["weights"] for w in q["weights"].values())
                console.print(f"  {name}: {n} int8 weights within half a step of fp32; after quantization, vs fp32: "
                              f"l_step max_rel {d['l_step']:.2e}, chain {d['chain']:.2e}, argmax agreement "
                              f"{d['chain_prediction_agreement']:.1%} (not gated; gate: hrm-parity --precision {name})")
        ids = report.identifiers
        if ids:
            t = ids["table_bytes_fp32"]
            console.print(f"  puzzle identifiers: {ids['count']:,} of {ids['source_count']:,} rows kept "
                          f"({ids['tasks']:,} tasks); embedding table {t['before'] / 2**20:,.1f} MiB -> "
                          f"{t['after'] / 2**20:,.1f} MiB (fp32)")
        for note in report.notes:
            console.print(f"  [yellow]note:[/] {note}", soft_wrap=True)
        ops_note = "" if report.ops == "standard" else f"; {report.ops} graphs (ONNX Runtime only)"
        if report.validation and not report.passed:
            console.print(f"{report.out_dir}: [red]VALIDATION FAILED[/]: nothing was written (a deployment already "
                          "there is unchanged)", soft_wrap=True)  # one line whatever the path's length
        else:
            state = "[green]validated[/]" if report.validation else "[yellow]not validated (--no-validate)[/]"
            console.print(f"{report.out_dir}: {state}; manifest {report.manifest_path.name} written{ops_note}",
                          soft_wrap=True)


def _table(report: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"hrm-export -> {report.out_dir}", title_justify="left")
    for col in ("graph", "precision", "size", "max abs err", "max rel err", "tolerance", "engine build"):
        table.add_column(col, justify="left" if col in ("graph", "precision") else "right")
    for row in report.graphs:
        size = f"= {row.alias_of}" if row.alias_of else f"{row.bytes / 2**20:.1f} MiB"  # TRM: h_step runs l_step's graph
        rel = "-" if row.max_rel is None else f"{row.max_rel:.2e}" + ("" if row.passed else " [red]FAIL[/]")
        table.add_row(row.kind, row.precision, size, "-" if row.max_abs is None else f"{row.max_abs:.2e}",
                      rel, "-" if row.tolerance is None else f"{row.tolerance:.1e}",
                      "-" if row.build_seconds is None else f"{row.build_seconds:.1f} s")
    return table


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
