"""``hrm-parity``: does a backend answer like the PyTorch reference? Table or JSON; gates -> exit code.

The comparison, the metrics and the gates live in :mod:`hrm.evaluation.parity` (read its docstring for
the exact definitions); this command only loads the puzzles, calls :func:`run_parity` and prints.
Exit status: 0 when every gate passes, 1 when one fails, 2 on unusable input.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.common import handle_errors, pct
from hrm.cli.options import DEVICES, RuntimeArgs, runtime_options
from hrm.errors import EXIT_OK, EXIT_REJECTED


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("deployment", type=click.Path(path_type=Path))
@runtime_options(precisions=True, haltings=True, batch=32)
@click.option("--dataset", default="generated", show_default=True,
              help="'generated' (the task's generator) or a PATH: our .npz or an official dataset folder")
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="puzzles to compare")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the generated dataset")
@click.option("--reference-device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="where the PyTorch reference runs")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@handle_errors
def main(deployment: Path, runtime: RuntimeArgs, dataset: str, n: int, seed: int, reference_device: str,
         as_json: bool) -> None:
    """Compare DEPLOYMENT's BACKEND with the fp32 PyTorch reference; non-zero exit if a gate fails.

    --checkpoint is the reference's weights (and the torch backend's, with --backend torch); the other
    backend options (--fused, --threads, ...) configure the backend under test.
    """
    from hrm.evaluation.datasets import load_puzzles
    from hrm.runtime.deployment import load_deployment
    from hrm.evaluation.parity import run_parity

    dep = load_deployment(deployment)
    for p in runtime.precisions:
        dep.variant(p)
    puzzles = load_puzzles(dataset, dep, n=n, seed=seed)
    checkpoint = runtime.option_values.get("checkpoint")
    options = runtime.options(skip=() if runtime.backend == "torch" else ("checkpoint",))
    report = run_parity(dep, puzzles, backend=runtime.backend, device=runtime.device, precisions=runtime.precisions,
                        haltings=runtime.haltings, batch=runtime.batch, max_segments=runtime.max_segments,
                        checkpoint=checkpoint, reference_device=reference_device, options=options)
    report.meta["dataset"] = dataset
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_table(report)
    raise SystemExit(EXIT_OK if report.passed else EXIT_REJECTED)


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
        t.add_row(c.precision, c.halting, pct(c.answer_agreement), pct(c.token_agreement), pct(c.accuracy),
                  pct(c.reference_accuracy), pct(c.halting_agreement), f"{c.mean_segments:.2f}",
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
