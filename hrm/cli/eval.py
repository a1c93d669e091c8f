"""``hrm-eval``: task accuracy of a model, overall and per difficulty bucket, fixed and ACT halting.

Thin: puzzles come from :func:`hrm.runtime.datasets.load_puzzles`, the scoring from
:func:`hrm.runtime.evaluation.evaluate` (read its docstring for exact / valid / segments). MODEL is a
deployment directory or a checkpoint (exported once to the ``hrm-bench`` cache, so ``--backend torch``
on a fresh checkpoint works too). ``--ray`` spreads the solving over Ray actors
(:func:`hrm.serve.evaluate.evaluate_on_ray`) and scores the merged results the same way. Exit status
0, or 2 on unusable input.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.common import handle_errors, stderr_console
from hrm.manifest import PRECISIONS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--dataset", default="generated", show_default=True,
              help="'generated' (the task's generator) or a PATH: our .npz or an official dataset folder")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="at most N puzzles [default: all; 256 generated]")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the generated dataset")
@click.option("--backend", type=click.Choice(["ort", "trt", "torch"]), default="ort", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True)
@click.option("--halting", "haltings", default="fixed,act", show_default=True, help="comma-separated modes to run")
@click.option("--max-segments", type=click.IntRange(min=1), default=None, help="segment cap (default halt_max_steps)")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--group-by", "group_key", default="bucket", show_default=True,
              help="puzzle meta key to report groups by ('none' for overall only)")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="ORT intra-op threads (CPU)")
@click.option("--fused", is_flag=True, help="--backend ort/trt: the fused 'segment' graph (export with --segment)")
@click.option("--spin/--no-spin", default=None,
              help="--backend ort: let idle ORT threads spin [default: only with --fused or on cuda, where one "
                   "session does the work; the step graphs' four thread pools would fight for the cores]")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="split the puzzles over Ray actors (one Session each) on the cluster at ADDRESS ('auto', "
                   "HOST:PORT); without ADDRESS a local cluster on 127.0.0.1. Same report as a local run")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="--ray: actors, at most as many as fit [default: one per GPU on cuda, one per --threads "
                   "cores (1) on the CPU]")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="also write the report as JSON to this file ('-' = stdout instead of the table)")
@handle_errors
def main(model: Path, dataset: str, n: int | None, seed: int, backend: str, device: str, precision: str,
         haltings: str, max_segments: int | None, batch: int, group_key: str, threads: int | None, fused: bool,
         spin: bool | None, ray_address: str | None, workers: int | None,
         json_path: Path | None) -> None:
    """Solve a labelled dataset with MODEL and report exact / valid accuracy and segments."""
    from hrm.bench.models import resolve_path
    from hrm.io import write_text_atomic
    from hrm.runtime import Session, load_deployment
    from hrm.runtime.datasets import load_puzzles
    from hrm.runtime.evaluation import evaluate

    modes = [h.strip() for h in haltings.split(",") if h.strip()]
    bad = [h for h in modes if h not in ("fixed", "act")]
    if bad or not modes:
        raise click.BadParameter(f"unknown halting mode(s) {bad}; use fixed, act", param_hint="--halting")
    err = stderr_console()
    root, origin = resolve_path(model, [precision], log=lambda m: err.print(m, highlight=False))
    options = {"spin": spin, **({"threads": threads} if threads else {})} if backend == "ort" else {}
    if fused:
        if backend == "torch":
            raise click.BadParameter("the torch backend has no fused graph (--fused is for ort and trt)",
                                     param_hint="--fused")
        options["fused"] = True
    if workers is not None and ray_address is None:
        raise click.BadParameter("--workers is for --ray", param_hint="--workers")
    count = n if n is not None else (256 if dataset == "generated" else None)
    dep = load_deployment(root, precision=precision)
    puzzles = load_puzzles(dataset, dep, n=count, seed=seed)
    groups = None if group_key == "none" else group_key
    if ray_address is not None:
        report = _evaluate_on_ray(root, ray_address, workers, puzzles, modes, groups, backend, device, precision,
                                  batch, max_segments, options, err)
    else:
        with Session(dep, backend=backend, device=device, precision=precision, batch=batch, **options) as session:
            report = evaluate(session, puzzles, haltings=modes, group_key=groups, max_segments=max_segments)
    report.meta.update(model=str(model), model_origin=origin, deployment=str(root), dataset=dataset,
                       seed=seed if dataset == "generated" else None)
    text = json.dumps(report.to_dict(), indent=2)
    if json_path is not None and str(json_path) == "-":
        click.echo(text)
        return
    if json_path is not None:
        write_text_atomic(json_path, text + "\n")
    _print_table(report)


def _evaluate_on_ray(root, address, workers, puzzles, modes, groups, backend, device, precision, batch,
                     max_segments, options, err):
    """The same evaluation with the solving spread over Ray actors, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hrm.serve.evaluate import evaluate_on_ray
    from hrm.serve.spec import SessionSpec

    spec = SessionSpec(str(root), backend, device, precision, batch, options=options)
    with Progress(TextColumn("solving on ray"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("solve", total=len(puzzles) * len(modes))
        return evaluate_on_ray(spec, puzzles, haltings=modes, group_key=groups, max_segments=max_segments,
                               address=None if address == "local" else address, workers=workers,
                               on_chunk=lambda k: bar.advance(task, k))


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


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
            t.add_row(group, str(s.n), halting, _pct(s.exact), _pct(s.valid), f"{s.mean_segments:.2f}",
                      f"{s.p50_segments:g}", f"{saved:.0%}" if halting == "act" else "-")
    Console(highlight=False, width=max(Console().width, 110)).print(t)
