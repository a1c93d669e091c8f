"""``hrm-doctor [DIR]``: what is installed here and does the TensorRT / ONNX Runtime path work on this
device. A thin layer over :func:`hrm.doctor.run_doctor` (read its docstring for every check).

Exit status: 0 when nothing that is available fails ("not available" lines are fine), 1 when something
fails, 2 on unusable input. The runtime options (:mod:`hrm.cli.options`) that apply here mean what they mean
everywhere: ``--precision`` (a list, fp32 always added: the reference; default: every precision this device
runs), ``--max-segments``, ``--batch``, ``--threads`` / ``--spin`` (ONNX Runtime). Backends, devices and
halting are what the doctor proves, so it picks them itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.common import handle_errors
from hrm.cli.options import RuntimeArgs, runtime_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="model to export and prove (our .safetensors) [default: the checkout's models/sudoku4.safetensors]")
@click.option("--puzzles", type=click.IntRange(min=1), default=16, show_default=True,
              help="generated puzzles solved by every backend and compared with ONNX Runtime CPU fp32")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="work in this folder and keep it (the exported deployment and its engines)")
@click.option("--no-timing", is_flag=True, help="skip the batch-1 segment timings")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON on stdout")
@runtime_options(omit=("backend", "device", "halting"), precisions=True, default_precisions=None, batch=8,
                 flags=("threads", "spin"))
@handle_errors
def main(directory: Path | None, checkpoint: Path | None, puzzles: int, keep: Path | None, no_timing: bool,
         as_json: bool, runtime: RuntimeArgs) -> None:
    """Check this device: components, then export (or DIR), engines, solves, CUDA graphs, timing."""
    from hrm.doctor import run_doctor

    if directory is not None and checkpoint is not None:
        raise click.UsageError("give DIR (an exported deployment) or --checkpoint (a model to export), not both")
    report = run_doctor(directory, checkpoint=checkpoint, puzzles=puzzles, batch=runtime.batch, workdir=keep,
                        time_segments=not no_timing, precisions=runtime.precisions or None,
                        max_segments=runtime.max_segments, ort_options=runtime.options("ort"))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)
    raise SystemExit(report.exit_code)


def _print(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    style = {"works": "green", "fails": "bold red", "not available": "yellow"}
    out = Console(highlight=False, width=max(Console().width, 140))
    t = Table(title="hrm-doctor", show_lines=False)
    for col in ("", "check", "verdict", "detail"):
        t.add_column(col, overflow="fold")
    for c in report.checks:
        t.add_row(c.section, c.name, f"[{style[c.verdict]}]{c.verdict}[/]", escape(c.detail))
    out.print(t)
    failed = [c.name for c in report.checks if c.verdict == "fails"]
    out.print(f"[bold red]{len(failed)} failed: {', '.join(failed)}[/]" if failed else "[green]nothing that is "
              "available fails[/]")
