"""``hrm-run`` on an ARC deployment: the official augment / solve / invert / vote procedure.

Thin: tasks come from :mod:`hrm.tasks.arc_inputs`, the procedure is :func:`hrm.tasks.arc_eval.solve_arc`,
pictures :func:`hrm.tasks.arc_eval.save_task_png`; this module only prints. Human output: per task a
header (pass@1 / pass@2 when the expected output is known), per test input the two attempts with
their votes, and input | attempt 1 | attempt 2 | expected drawn side by side in colour.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from hrm.cli.options import RuntimeArgs
from hrm.errors import EXIT_REJECTED
from hrm.tasks.arc import render_side_by_side


def run_arc(deployment: Any, inputs: tuple[str, ...], runtime: RuntimeArgs, *, err: Any,
            progress: Callable[[Any, int], Any], as_json: bool, color: bool, max_augmentations: int | None,
            submission: Path | None, solutions: Path | None, png: Path | None) -> int:
    """Run the ARC procedure for the CLI; returns the exit code (1 when an input was refused).

    ``runtime``: the shared runtime options, as for every other ``hrm-run``: the session (backend, device,
    precision, options, halting policy) comes from them, its batch (the scheduler's slots) no bigger than
    the puzzles need."""
    from hrm.identifiers import deployment_identifiers
    from hrm.tasks.arc_eval import NO_IDENTIFIERS_NOTE, plan_runs, save_task_png, solve_arc, write_submission
    from hrm.tasks.arc_inputs import apply_solutions, read_arc_inputs

    read = read_arc_inputs(inputs, stdin=sys.stdin)
    unscored = apply_solutions(read, solutions) if solutions is not None else []
    for e in read.errors:
        err.print(f"[red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        if as_json:
            click.echo(json.dumps({"source": e.source, "line": e.line, "error": e.message}))
    if solutions is not None and unscored:
        err.print(f"warning: {solutions} has no solution for {len(unscored)} task(s) (first: {unscored[0]}); "
                  "they are solved but not scored", highlight=False, soft_wrap=True)
    identifiers = deployment_identifiers(deployment.manifest)
    if identifiers is None:
        err.print(f"warning: {NO_IDENTIFIERS_NOTE}", highlight=False, soft_wrap=True)
    plans, _ = plan_runs(read.records, identifiers, max_augmentations)
    total = sum(len(rec.test) * len(plan) for rec, plan in zip(read.records, plans))
    if read.records:
        slots = max(1, min(runtime.batch, total))
        with runtime.session(deployment, batch=slots) as session, progress(err, total) as advance:
            report = solve_arc(session, read.records, identifiers=identifiers, max_augmentations=max_augmentations,
                               slots=slots, sources=read.sources, on_progress=advance)
        for task in report.tasks:
            click.echo(json.dumps(task.to_dict()) if as_json else format_task(task, color))
        if submission is not None:
            write_submission(submission, report)
            err.print(f"wrote {submission} ({len(report.tasks)} tasks, ARC Prize format)", highlight=False)
        if png is not None:
            for task in report.tasks:
                save_task_png(task, Path(png) / f"{task.task_id}.png")
            err.print(f"wrote {len(report.tasks)} pictures to {png}", highlight=False)
        summary = report.summary()
    else:
        summary = {"tasks": 0, "test_inputs": 0, "puzzles": 0, "pass@1": None, "pass@2": None}
    summary["rejected"] = len(read.errors)
    if as_json:
        click.echo(json.dumps({"summary": summary}))
    err.print(summary_line(summary), highlight=False, soft_wrap=True)
    return EXIT_REJECTED if read.errors else 0


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")


def format_task(task: Any, color: bool) -> str:
    """Header, then per test input its attempts (votes, mean halting probability) and the grids."""
    head = f"{task.task_id}" + (f" ({task.source})" if task.source else "")
    if task.labelled:
        head += f": pass@1 {_yes(task.passed(1))}, pass@2 {_yes(task.passed(2))}"
    lines = [head]
    if task.note:
        lines.append(f"  note: {task.note}")
    for t in task.tests:
        votes = {id(c.grid): c for c in t.candidates}
        described = []
        for i, a in enumerate(t.attempts):
            c = votes.get(id(a))
            shape = f"{a.shape[0]}x{a.shape[1]}"
            described.append(f"attempt {i + 1} {shape}" + (f", {c.count}/{t.runs} votes, p {c.mean_q:.2f}" if c else
                                                           " (filler: no other grid)"))
        lines.append(f"  test[{t.index}]: " + "; ".join(described) + (f"; {t.failed} runs failed" if t.failed else ""))
        panels = [("input", t.input), *((f"attempt {i + 1}" + _mark(t, a), a) for i, a in enumerate(t.attempts)),
                  ("expected", t.label)]
        lines.extend("    " + line for line in render_side_by_side(panels, color=color).split("\n"))
    return "\n".join(lines) + "\n"


def _mark(test: Any, grid: Any) -> str:
    if test.label is None:
        return ""
    from hrm.tasks.arc_vote import grid_key

    return " ✓" if grid_key(grid) == grid_key(test.label) else " ✗"


def summary_line(s: dict[str, Any]) -> str:
    """'ARC: 120 tasks, 167 test inputs, 1336 puzzles in 52.1 s (25.6 puzzles/s) | pass@1 0.0% pass@2 0.8% ...'."""
    line = f"ARC: {s['tasks']} tasks, {s['test_inputs']} test inputs, {s['puzzles']} puzzles"
    if s.get("seconds") is not None:
        line += f" in {s['seconds']:.1f} s ({s['puzzles_per_s'] or 0:.1f} puzzles/s, {s.get('slots')} slots)"
    if s.get("pass@1") is not None:
        line += (f" | pass@1 {s['pass@1']:.1%}, pass@2 {s['pass@2']:.1%} over {s['labelled_tasks']} tasks with "
                 "known outputs")
    if s.get("rejected"):
        line += f" | {s['rejected']} input{'s' if s['rejected'] != 1 else ''} rejected"
    return line
