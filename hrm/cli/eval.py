"""``hrm-eval``: task accuracy of a model, overall and per difficulty bucket, fixed and ACT halting.

Thin: puzzles come from :func:`hrm.evaluation.datasets.load_puzzles`, the scoring from
:func:`hrm.evaluation.accuracy.evaluate` (read its docstring for exact / valid / segments); on an ARC
deployment and dataset folder, pass@k from :func:`hrm.evaluation.arc.evaluate_arc_dataset`. MODEL is a
deployment directory or a checkpoint (exported once to the ``hrm-bench`` cache, so ``--backend torch``
on a fresh checkpoint works too). ``--ray`` spreads the solving over Ray actors
(:func:`hrm.serve.evaluate.evaluate_on_ray`, the ``serve`` extra) and scores the merged results the
same way. Exit status 0, or 2 on unusable input.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import click

from hrm.cli.common import handle_errors, pct, stderr_console
from hrm.cli.options import OptionError, RuntimeArgs, runtime_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--dataset", default="generated", show_default=True,
              help="'generated' (the task's generator) or a PATH: our .npz or an official dataset folder")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="at most N puzzles (ARC dataset folders: N tasks) [default: all; 256 generated]")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the generated dataset")
@runtime_options(haltings=True, batch=64)
@click.option("--group-by", "group_key", default="bucket", show_default=True,
              help="puzzle meta key to report groups by ('none' for overall only)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="split the puzzles over Ray actors (one Session each) on the cluster at ADDRESS ('auto', "
                   "HOST:PORT); without ADDRESS a local cluster on 127.0.0.1. Same report as a local run")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="--ray: actors, at most as many as fit [default: one per GPU on cuda, one per --threads "
                   "cores (1) on the CPU]")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="also write the report as JSON to this file ('-' = stdout instead of the table)")
@handle_errors
def main(model: Path, dataset: str, n: int | None, seed: int, runtime: RuntimeArgs, group_key: str,
         ray_address: str | None, workers: int | None,
         json_path: Path | None) -> None:
    """Solve a labelled dataset with MODEL and report exact / valid accuracy and segments."""
    from hrm.bench.models import resolve_path
    from hrm.io import write_text_atomic
    from hrm.evaluation.datasets import load_puzzles
    from hrm.evaluation.accuracy import evaluate

    err = stderr_console()
    root, origin = resolve_path(model, [runtime.precision], log=lambda m: err.print(m, highlight=False))
    if workers is not None and ray_address is None:
        raise OptionError("--workers is for --ray")
    count = n if n is not None else (256 if dataset == "generated" else None)
    groups = None if group_key == "none" else group_key
    if ray_address is not None:
        report = _evaluate_on_ray(root, ray_address, workers, runtime, dataset, count, seed, groups, err)
        doc, show = report.to_dict(), partial(_print_table, report)
    else:
        with runtime.session(root) as session:
            if _arc_folder(session.task, dataset):
                from hrm.evaluation.arc import evaluate_arc_dataset

                doc = evaluate_arc_dataset(session, dataset, haltings=runtime.haltings, ks=(1, 2, 10), max_tasks=n)
                show = partial(_print_arc, doc)
            else:
                puzzles = load_puzzles(dataset, session.deployment, n=count, seed=seed)
                report = evaluate(session, puzzles, haltings=runtime.haltings, group_key=groups)
                doc, show = report.to_dict(), partial(_print_table, report)  # doc["meta"] is report.meta
    doc["meta"].update(model=str(model), model_origin=origin, deployment=str(root), dataset=dataset,
                       seed=seed if dataset == "generated" else None)
    text = json.dumps(doc, indent=2)
    if json_path is not None and str(json_path) == "-":
        click.echo(text)
        return
    if json_path is not None:
        write_text_atomic(json_path, text + "\n")
    show()


def _arc_folder(task, dataset: str) -> bool:
    """An ARC deployment and a dataset folder: the ARC procedure's pass@k, not per-puzzle accuracy."""
    return task is not None and task.name == "arc" and Path(dataset).is_dir()


def _evaluate_on_ray(root, address, workers, runtime, dataset, count, seed, groups, err):
    """The same evaluation with the solving spread over Ray actors, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hrm.evaluation.datasets import load_puzzles
    from hrm.runtime import load_deployment
    from hrm.serve.evaluate import evaluate_on_ray

    dep = load_deployment(root, precision=runtime.precision)
    if _arc_folder(dep.task, dataset):
        raise OptionError("--ray: an ARC dataset folder is scored by the ARC procedure (augment, vote, pass@k), "
                          "which runs on one machine; drop --ray")
    puzzles = load_puzzles(dataset, dep, n=count, seed=seed)
    spec = runtime.spec(root)
    with Progress(TextColumn("solving on ray"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("solve", total=len(puzzles) * len(runtime.haltings))
        return evaluate_on_ray(spec, puzzles, haltings=runtime.haltings, group_key=groups,
                               address=None if address == "local" else address, workers=workers,
                               on_chunk=lambda k: bar.advance(task, k))


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report.meta
    t = Table(title=f"{m['model']}: {m['backend']} {m['precision']} on {m['device']}, {m['n']} puzzles "
                    f"({m['dataset']}), cap {m['max_segments']} segments")
    for col in ("group", "n", "halting", "exact", "valid", "mean segs", "p50 segs", "saved vs cap"):
        t.add_column(col, justify="right", no_wrap=True)
    for group, by_h in report.scores.items():
        for halting, s in by_h.items():
            saved = 1 - s.mean_segments / m["max_segments"]
            t.add_row(group, str(s.n), halting, pct(s.exact), pct(s.valid), f"{s.mean_segments:.2f}",
                      f"{s.p50_segments:g}", f"{saved:.0%}" if halting == "act" else "-")
    Console(highlight=False, width=max(Console().width, 110)).print(t)


def _print_arc(report: dict) -> None:
    """pass@k per halting mode, as the official notebook prints them."""
    from rich.console import Console
    from rich.table import Table

    m = report["meta"]
    t = Table(title=f"{m['model']}: {m['backend']} {m['precision']} on {m['device']}, ARC {m['dataset']} "
                    f"({m['split']}): {m['tasks']} tasks, {m['n']} puzzles, cap {m['max_segments']} segments"
                    + (f", {m['skipped_puzzles']} not in the deployment" if m["skipped_puzzles"] else ""))
    t.add_column("halting")
    for k in m["ks"]:
        t.add_column(f"pass@{k}", justify="right")
    for col in ("mean segs", "seconds"):
        t.add_column(col, justify="right")
    for halting, s in report["scores"].items():
        t.add_row(halting, *(pct(s[f"pass@{k}"]) for k in m["ks"]), f"{s['mean_segments']:.2f}",
                  f"{s['seconds']:.1f}")
    Console(highlight=False, width=max(Console().width, 110)).print(t)
