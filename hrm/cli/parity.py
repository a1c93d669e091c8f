"""``hrm-parity``: does a backend answer like the PyTorch reference? Table or JSON; gates -> exit code.

The comparison, the metrics and the gates live in :mod:`hrm.runtime.parity` (read its docstring for
the exact definitions); this command only loads the puzzles, calls :func:`run_parity` and prints.
Exit status: 0 when every gate passes, 1 when one fails, 2 on unusable input.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.common import handle_errors
from hrm.manifest import PRECISIONS


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(["ort", "trt", "torch"]), default="ort", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--precision", "precisions", default="fp32", show_default=True,
              help="comma-separated variants to check, e.g. fp32,fp16")
@click.option("--dataset", default="generated", show_default=True,
              help="'generated' (the task's generator) or a PATH: our .npz or an official dataset folder")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="puzzles to compare")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--max-segments", type=click.IntRange(min=1), default=None, help="segment cap (default halt_max_steps)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the generated dataset")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="reference checkpoint (default: the manifest's source, sha-checked)")
@click.option("--reference-device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="where the PyTorch reference runs")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@handle_errors
def main(deployment: Path, backend: str, device: str, precisions: str, dataset: str, n: int, batch: int,
         max_segments: int | None, seed: int, checkpoint: Path | None, reference_device: str, as_json: bool) -> None:
    """Compare DEPLOYMENT's BACKEND with the fp32 PyTorch reference; non-zero exit if a gate fails."""
    from hrm.runtime.datasets import load_puzzles
    from hrm.runtime.deployment import load_deployment
    from hrm.runtime.parity import run_parity

    names = [p.strip() for p in precisions.split(",") if p.strip()]
    bad = [p for p in names if p not in PRECISIONS]
    if bad or not names:
        raise click.BadParameter(f"unknown precision(s) {bad}; use {', '.join(PRECISIONS)}", param_hint="--precision")
    dep = load_deployment(deployment)
    for p in names:
        dep.variant(p)
    puzzles = load_puzzles(dataset, dep, n=n, seed=seed)
    report = run_parity(dep, puzzles, backend=backend, device=device, precisions=names, batch=batch,
                        max_segments=max_segments, checkpoint=checkpoint, reference_device=reference_device)
    report.meta["dataset"] = dataset
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_table(report)
    raise SystemExit(0 if report.passed else 1)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from rich.markup import escape

    out = Console(highlight=False, width=max(Console().width, 120))
    m = report.meta
    t = Table(title=f"parity: {m['backend']} on {m['device']} vs {m['reference']}, {m['n']} puzzles "
                    f"({m.get('dataset', '?')}), max {m['max_segments']} segments")
    for col in ("prec", "halting", "answers", "tokens", "acc", "ref acc", "halt agree", "segs", "ref segs",
                "z_H drift (last seg) mean/max"):
        t.add_column(col, justify="right", no_wrap=True)
    for c in report.comparisons:
        drift = f"{c.drift_mean[-1]:.1e}/{c.drift_max[-1]:.1e}" if c.drift_mean else "-"
        t.add_row(c.precision, c.halting, _pct(c.answer_agreement), _pct(c.token_agreement), _pct(c.accuracy),
                  _pct(c.reference_accuracy), _pct(c.halting_agreement), f"{c.mean_segments:.2f}",
                  f"{c.reference_mean_segments:.2f}", drift)
    out.print(t)
    for c in report.comparisons:
        if c.drift_mean:
            seg = ", ".join(f"{a:.1e}/{b:.1e}" for a, b in zip(c.drift_mean, c.drift_max))
            out.print(f"z_H drift per segment (mean/max), {c.precision} {c.halting}: {seg}")
    for g in report.gates:
        mark = "[green]PASS[/]" if g.passed else "[red]FAIL[/]"
        out.print(f"{mark} {escape(g.name)} ({g.precision}, {g.halting}): {escape(g.detail)}", markup=True)
    out.print("parity: " + ("[green]all gates passed[/]" if report.passed else "[red]gate failed[/]"), markup=True)


if __name__ == "__main__":
    main()
