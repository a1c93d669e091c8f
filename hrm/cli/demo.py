"""``hrm-demo``: export the bundled model and solve the bundled examples (the README's first command).

:func:`run_demo` is the whole pipeline a user deploys — checkpoint -> validated ONNX deployment ->
torch-free runtime — on the bundled Sudoku model, in under a few minutes on two cores; ``main`` prints it.
It takes the shared runtime options (:mod:`hrm.cli.options`) like every command that runs a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from hrm.cli.common import handle_errors, stderr_console
from hrm.cli.options import RuntimeArgs, runtime_options

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "sudoku4.safetensors"
DEFAULT_EXAMPLES = REPO / "examples" / "sudoku4.txt"
DEFAULT_OUT = REPO / "out" / "demo"


@dataclass
class DemoResult:
    deployment: Path
    task: Any
    export_report: Any
    results: list[Any]
    summary: dict[str, Any]
    parse_errors: list[Any]


def run_demo(model: str | Path = DEFAULT_MODEL, examples: str | Path = DEFAULT_EXAMPLES,
             out: str | Path = DEFAULT_OUT, precision: str = "fp32", halting: str | None = None,
             backend: str = "ort", device: str = "cpu", batch: int = 8, *, max_segments: int | None = None,
             options: Any = None, progress: Callable[[Any], None] | None = None) -> DemoResult:
    """Export ``model`` to ``out`` (replacing a previous demo export; with the fused segment graph when
    ``options.fused``) and solve ``examples`` with it."""
    from hrm.export import export_deployment
    from hrm.runtime import Session, load_deployment, summarize
    from hrm.tasks.inputs import read_inputs

    out = Path(out)
    report = export_deployment(model, out, precisions=precision, force=True, progress=progress,
                               segment=bool(getattr(options, "fused", False)))
    dep = load_deployment(out, precision=precision)
    if dep.task is None:
        raise ValueError(f"{model}: checkpoint records no task; the demo needs one to parse {examples}")
    read = read_inputs(dep.task, (str(examples),))
    with Session(dep, backend=backend, device=device, precision=precision, batch=max(1, min(batch, len(read.puzzles))),
                 halting=halting, max_segments=max_segments, options=options) as session:
        results = session.solve(read.puzzles)
    return DemoResult(out, dep.task, report, results, summarize(results, rejected=len(read.errors)), read.errors)


@click.command()
@click.option("--model", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True)
@click.option("--examples", type=click.Path(path_type=Path), default=DEFAULT_EXAMPLES, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@runtime_options(batch=8)
@handle_errors
def main(model: Path, examples: Path, out: Path, runtime: RuntimeArgs) -> None:
    """Export MODEL to ONNX under OUT, then solve EXAMPLES (ONNX Runtime on the CPU by default)."""
    from hrm.cli.run import format_result
    from hrm.runtime import summary_line

    err = stderr_console()
    t0 = time.perf_counter()

    def progress(event) -> None:
        msg = getattr(event, "message", None) or str(event)
        err.print(f"[dim]export:[/] {msg}", highlight=False)

    demo = run_demo(model, examples, out, precision=runtime.precision, halting=runtime.halting,
                    backend=runtime.backend, device=runtime.device, batch=runtime.batch,
                    max_segments=runtime.max_segments, options=runtime.options(), progress=progress)
    click.echo(f"exported {model} -> {demo.deployment} ({runtime.precision}, validated against PyTorch)\n")
    for e in demo.parse_errors:
        err.print(f"[red]error:[/] {e}", highlight=False)
    for r in demo.results:
        click.echo(format_result(r, demo.task, trace=False, color=False))
    click.echo(summary_line(demo.summary))
    click.echo(f"total {time.perf_counter() - t0:.1f} s (export + validation + solving)")
