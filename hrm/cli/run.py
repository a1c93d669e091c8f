"""``hrm-run``: solve puzzles with an exported HRM and show or emit the answers.

Thin on purpose: inputs go through :mod:`hrm.tasks.inputs`, solving through
:class:`hrm.runtime.Session`, formatting through the task's ``render`` and
:mod:`hrm.runtime.results`. torch is imported only for ``--backend torch``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from hrm.cli.common import handle_errors, stderr_console
from hrm.errors import EXIT_REJECTED
from hrm.manifest import PRECISIONS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1)
@click.option("--backend", type=click.Choice(["trt", "ort", "torch"]), default="ort", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True)
@click.option("--halting", type=click.Choice(["act", "fixed"]), default=None,
              help="act: stop a puzzle when q_halt > q_continue; fixed: every puzzle runs --max-segments "
                   "[default: the manifest's default_halting]")
@click.option("--max-segments", type=click.IntRange(min=1), default=None,
              help="segment cap (default: the trained halt_max_steps; may exceed it)")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="puzzles per batch")
@click.option("--trace", is_flag=True, help="show the answer after every segment, changed cells highlighted")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines on stdout: one per puzzle ('source' key), one per rejected input ('error' "
                   "key), then one {'summary': ...}")
@click.option("--color/--no-color", default=None, help="highlight with ANSI colours [default: if stdout is a terminal]")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="--backend torch: the checkpoint (default: the manifest's source, sha-checked)")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="--backend ort on the CPU: intra-op threads [default: ORT's, one per core]")
@click.option("--fused", is_flag=True,
              help="--backend ort/trt: run each segment as the one fused 'segment' graph (export with --segment); "
                   "on a 2-core CPU 0.58x PyTorch eager per solve vs 1.16x for the step graphs with spinning pools")
@click.option("--spin/--no-spin", default=None,
              help="--backend ort: let idle ORT threads spin [default: only with --fused or on cuda, where one "
                   "session does the work; the step graphs' four thread pools would fight for the cores]")
@handle_errors
def main(deployment: Path, inputs: tuple[str, ...], backend: str, device: str, precision: str, halting: str | None,
         max_segments: int | None, batch: int, trace: bool, as_json: bool, color: bool | None,
         checkpoint: Path | None, threads: int | None, fused: bool, spin: bool | None) -> None:
    """Solve the puzzles in INPUTS with the model exported to DEPLOYMENT.

    An INPUT is a puzzle string, a file in any format the model's task accepts (one puzzle per line,
    grids, official CSV, ARC JSON), or '-' for stdin; with no INPUT, piped stdin is read. Exit code 0
    when every input parsed and was answered, 1 when some record was rejected (each is named with its
    line; the others are still solved), 2 on a usage or deployment error.
    """
    from hrm.runtime import Session, load_deployment, summarize, summary_line
    from hrm.tasks.inputs import TokenLines, read_inputs

    err = stderr_console()
    if not inputs:
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("no INPUT given and stdin is a terminal; pass puzzles, files or '-'")
        inputs = ("-",)
    dep = load_deployment(deployment, precision=precision)
    task = dep.task
    parser = task if task is not None else TokenLines(dep.config.seq_len, dep.config.vocab_size)
    read = read_inputs(parser, inputs, stdin=sys.stdin)
    options = {"checkpoint": checkpoint} if (backend == "torch" and checkpoint) else {}
    if fused and backend == "torch":
        raise click.BadParameter("the torch backend has no fused graph (--fused is for ort and trt)", param_hint="--fused")
    if backend == "ort":
        options = {"spin": spin, **({"threads": threads} if threads and device == "cpu" else {})}
    if fused:
        options["fused"] = True
    # no bigger than needed: a single puzzle should not pay for --batch rows of compute
    session = Session(dep, backend=backend, device=device, precision=precision,
                      batch=max(1, min(batch, len(read.puzzles))), halting=halting, max_segments=max_segments,
                      **options)
    for e in read.errors:
        err.print(f"[red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        if as_json:
            click.echo(json.dumps({"source": e.source, "line": e.line, "error": e.message}))
    color = sys.stdout.isatty() if color is None else color

    results = []
    with session, _progress(err, len(read.puzzles)) as advance:
        for r in session.iter_solve(read.puzzles, trace=trace, on_chunk=advance):
            results.append(r)
            click.echo(json.dumps(r.to_dict(trace=trace)) if as_json else format_result(r, parser, trace, color))
    summary = summarize(results, rejected=len(read.errors))
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    err.print(summary_line(summary), highlight=False, soft_wrap=True)
    if read.errors:
        sys.exit(EXIT_REJECTED)


def format_result(r, task, trace: bool, color: bool) -> str:
    """A header line per puzzle, then the rendered grid (every segment's under --trace)."""
    if r.verdict is not None:
        status = "solved" if r.solved else ("valid" if r.valid else "INVALID")
        detail = f" ({r.verdict.reason})" if r.verdict.reason and not r.solved else ""
    else:
        status, detail = "answered", ""
    q = f"q_halt {r.q_halt[-1]:+.3f} q_continue {r.q_continue[-1]:+.3f}"
    lines = [f"{r.source}: {status}{detail} | {r.segments} segment{'s' if r.segments != 1 else ''} | {q} | "
             f"{r.timings['latency']:.1f} ms"]
    if trace and r.trace:
        prev = np.asarray(r.tokens)
        for k, step in enumerate(r.trace, start=1):
            changed = np.asarray(step) != prev
            lines.append(f"  segment {k}: q_halt {r.q_halt[k - 1]:+.3f} q_continue {r.q_continue[k - 1]:+.3f}, "
                         f"{int(changed.sum())} cells changed")
            lines.append(_indent(task.render(np.asarray(step), highlight=changed, color=color)))
            prev = np.asarray(step)
    else:
        lines.append(_indent(task.render(r.answer_tokens, color=color)))
    return "\n".join(lines) + "\n"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


class _progress:
    """A rich progress bar on stderr for many puzzles; a no-op otherwise (or off a terminal)."""

    MIN_PUZZLES = 32

    def __init__(self, console, total: int) -> None:
        self.console, self.total, self.bar, self.task_id = console, total, None, None

    def __enter__(self):
        if self.total >= self.MIN_PUZZLES and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("solving"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task_id = self.bar.add_task("solve", total=self.total)
        return self.advance

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task_id, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


if __name__ == "__main__":
    main()
