"""``hrm-demo``: export the bundled model and solve the bundled examples (the README's first command)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hrm.cli.common import handle_errors, stderr_console
from hrm.halting import HALTING_MODES
from hrm.demo import DEFAULT_EXAMPLES, DEFAULT_MODEL, DEFAULT_OUT


@click.command()
@click.option("--model", type=click.Path(path_type=Path), default=DEFAULT_MODEL, show_default=True)
@click.option("--examples", type=click.Path(path_type=Path), default=DEFAULT_EXAMPLES, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@click.option("--halting", type=click.Choice(HALTING_MODES), default=None,
              help="Default: the model's (ACT for the bundled models).")
@handle_errors
def main(model: Path, examples: Path, out: Path, precision: str, halting: str | None) -> None:
    """Export MODEL to ONNX under OUT, then solve EXAMPLES with ONNX Runtime on the CPU."""
    from hrm.cli.run import format_result
    from hrm.halting import HALTING_MODES
from hrm.demo import run_demo
    from hrm.runtime import summary_line

    err = stderr_console()
    t0 = time.perf_counter()

    def progress(event) -> None:
        msg = getattr(event, "message", None) or str(event)
        err.print(f"[dim]export:[/] {msg}", highlight=False)

    demo = run_demo(model, examples, out, precision=precision, halting=halting, progress=progress)
    click.echo(f"exported {model} -> {demo.deployment} ({precision}, validated against PyTorch)\n")
    for e in demo.parse_errors:
        err.print(f"[red]error:[/] {e}", highlight=False)
    for r in demo.results:
        click.echo(format_result(r, demo.task, trace=False, color=False))
    click.echo(summary_line(demo.summary))
    click.echo(f"total {time.perf_counter() - t0:.1f} s (export + validation + solving)")
