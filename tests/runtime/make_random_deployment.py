"""Write a random-weight HRM checkpoint and export it: ``python tests/runtime/make_random_deployment.py OUT``.

For GPU parity and latency checks that need a realistic *size* but no trained model: ``--size full``
is the official Sudoku architecture (27M parameters: hidden 512, 4+4 layers, N=T=2, seq 81+1, 16
segments), ``--size tiny`` the test model. The Q head is random (not the "never halt" init), so ACT
rows halt at different segments. Uses ``hrm.export.export_deployment`` when available, else the
tests' minimal writer. Prints the deployment directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL = dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, H_cycles=2, L_cycles=2, H_layers=4, L_layers=4,
            hidden_size=512, num_heads=8, expansion=4.0, puzzle_emb_ndim=512, halt_max_steps=16,
            forward_dtype="bfloat16")


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True)
@click.option("--precisions", default="fp32,fp16", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def main(out: Path, size: str, precisions: str, seed: int) -> None:
    from deploy_helpers import export
    from helpers import random_tensors, tiny_config

    from hrm.checkpoint import save_checkpoint
    from hrm.config import HRMConfig
    from hrm.tasks import get_task

    if size == "full":
        config, task = HRMConfig(**FULL).validate(), get_task("sudoku").metadata()
    else:
        config, task = tiny_config(), get_task("sudoku", size=4).metadata()
    out.mkdir(parents=True, exist_ok=True)
    ckpt = save_checkpoint(out / "random.safetensors", config, random_tensors(config, seed=seed), task=task)
    d = export(ckpt, out / "deploy", tuple(p.strip() for p in precisions.split(",")))
    click.echo(str(d))


if __name__ == "__main__":
    main()
