"""``hrm-ckpt``: inspect checkpoints and convert official ones to our format."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hrm.cli.checkpoint_options import load_kwargs, sizing_options
from hrm.cli.common import handle_errors


@click.group(help="Inspect HRM / TRM checkpoints (files, published folders, hf://) and convert official ones to "
                  "hrm-deploy's format.")
def main() -> None:
    pass


@main.command("info", help="Print what a checkpoint source resolves to (file, config, hub revision), what was "
                            "inferred (task, sizes), its family (HRM/TRM), config and parameter count.")
@click.argument("source", metavar="SOURCE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@sizing_options
@handle_errors
def info(source: str, as_json: bool, task_name: str | None, task_param: tuple[str, ...], seq_len: int | None,
         dataset_json: Path | None) -> None:
    from hrm.checkpoint import load_checkpoint

    ck = load_checkpoint(source, **load_kwargs(task_name, task_param, seq_len, dataset_json))
    c = ck.config
    summary = {"path": str(ck.source), "format": ck.format, "family": c.arch, "sha256": ck.sha256,
               "parameters": ck.num_parameters, "halt_rule": c.halt_rule, "config": c.to_dict(), "task": ck.task,
               "source": ck.provenance(), "notes": ck.notes()}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if c.arch == "trm":
        stack = f"one net of {c.L_layers} layers ({'mlp_t' if c.mlp_t else 'attention'})"
    else:
        stack = f"H/L layers {c.H_layers}/{c.L_layers}"
    click.echo(f"{ck.source}  [{ck.format}]  {c.arch.upper()}  sha256 {ck.sha256[:16]}")
    for line in ck.notes():
        click.echo(f"  {line}")
    click.echo(f"  {ck.num_parameters:,} parameters; hidden {c.hidden_size}, heads {c.num_heads}, "
               f"{stack}, N x T = {c.H_cycles} x {c.L_cycles}, halt_max_steps {c.halt_max_steps}, "
               f"ACT halts when {c.halt_rule}")
    click.echo(f"  seq_len {c.seq_len} (+{c.puzzle_len} puzzle), vocab {c.vocab_size}, "
               f"{c.num_puzzle_identifiers} puzzle ids, {c.pos_encodings}, forward {c.forward_dtype}")
    click.echo(f"  task: {json.dumps(ck.task) if ck.task else 'none recorded'}")


@main.command("convert", help="Write our .safetensors format from any checkpoint source, HRM or TRM (official "
                               "step_N or checkpoint file, published folder, hf://).")
@click.argument("src", metavar="SRC")
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--fp16", is_flag=True, help="Store weights in fp16 (half the size).")
@sizing_options
@handle_errors
def convert(src: str, dst: Path, fp16: bool, task_name: str | None, task_param: tuple[str, ...],
            seq_len: int | None, dataset_json: Path | None) -> None:
    from hrm.checkpoint import convert_official

    out = convert_official(src, dst, dtype="fp16" if fp16 else "fp32",
                           **load_kwargs(task_name, task_param, seq_len, dataset_json))
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
