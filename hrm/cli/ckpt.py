"""``hrm-ckpt``: inspect checkpoints and convert official ones to our format."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.common import handle_errors


@click.group(help="Inspect HRM / TRM checkpoints and convert official step_N checkpoints to hrm-deploy's format.")
def main() -> None:
    pass


@main.command("info", help="Print a checkpoint's format, family (HRM/TRM), config, task and parameter count.")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--seq-len", type=int, default=None, help="Official checkpoints with RoPE: the dataset's seq_len.")
@handle_errors
def info(path: Path, as_json: bool, seq_len: int | None) -> None:
    from hrm.checkpoint import load_checkpoint

    kwargs = {"seq_len": seq_len} if seq_len else {}
    ck = load_checkpoint(path, **kwargs)
    c = ck.config
    summary = {"path": str(ck.source), "format": ck.format, "family": c.arch, "sha256": ck.sha256,
               "parameters": ck.num_parameters, "halt_rule": c.halt_rule, "config": c.to_dict(), "task": ck.task}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if c.arch == "trm":
        stack = f"one net of {c.L_layers} layers ({'mlp_t' if c.mlp_t else 'attention'})"
    else:
        stack = f"H/L layers {c.H_layers}/{c.L_layers}"
    click.echo(f"{ck.source}  [{ck.format}]  {c.arch.upper()}  sha256 {ck.sha256[:16]}")
    click.echo(f"  {ck.num_parameters:,} parameters; hidden {c.hidden_size}, heads {c.num_heads}, "
               f"{stack}, N x T = {c.H_cycles} x {c.L_cycles}, halt_max_steps {c.halt_max_steps}, "
               f"ACT halts when {c.halt_rule}")
    click.echo(f"  seq_len {c.seq_len} (+{c.puzzle_len} puzzle), vocab {c.vocab_size}, "
               f"{c.num_puzzle_identifiers} puzzle ids, {c.pos_encodings}, forward {c.forward_dtype}")
    click.echo(f"  task: {json.dumps(ck.task) if ck.task else 'none recorded'}")


@main.command("convert", help="Write our .safetensors format from an official step_N checkpoint (HRM or TRM).")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--task", "task_name", default=None, help="Task to record, e.g. sudoku, maze, arc.")
@click.option("--task-param", multiple=True, help="Task parameter KEY=VALUE (e.g. size=9).")
@click.option("--fp16", is_flag=True, help="Store weights in fp16 (half the size).")
@click.option("--seq-len", type=int, default=None, help="seq_len when no dataset.json is reachable (RoPE models).")
@click.option("--dataset-json", type=click.Path(path_type=Path), default=None, help="The dataset's dataset.json.")
@handle_errors
def convert(src: Path, dst: Path, task_name: str | None, task_param: tuple[str, ...], fp16: bool,
            seq_len: int | None, dataset_json: Path | None) -> None:
    from hrm.checkpoint import convert_official

    task = None
    if task_name:
        from hrm.tasks import get_task

        params = {}
        for kv in task_param:
            key, _, value = kv.partition("=")
            params[key] = int(value) if value.isdigit() else value
        task = get_task(task_name, **params).metadata()
    kwargs = {k: v for k, v in (("seq_len", seq_len), ("dataset_json", dataset_json)) if v is not None}
    out = convert_official(src, dst, task=task, dtype="fp16" if fp16 else "fp32", **kwargs)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
