"""``hrm-data``: generate datasets from the task generators, convert official CSVs, inspect folders."""

from __future__ import annotations

from pathlib import Path

import click

from hrm.cli.common import fail, handle_errors


@click.group(help="Generate and inspect datasets in the official HRM layout (dataset.json + *.npy).")
def main() -> None:
    pass


@main.command("generate", help="Generate labelled sudoku or maze puzzles into OUT/{train,test}.")
@click.argument("task", type=click.Choice(["sudoku", "maze"]))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--n-train", type=int, default=1000, show_default=True)
@click.option("--n-test", type=int, default=200, show_default=True)
@click.option("--size", type=int, default=None, help="Sudoku 9 or 4; maze side (default 30).")
@click.option("--difficulty", default="any", show_default=True,
              help="Sudoku: easy (0 guesses), medium (1-5), hard (6+), any.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--force", is_flag=True, help="Overwrite an existing folder.")
@handle_errors
def generate(task: str, out: Path, n_train: int, n_test: int, size: int | None, difficulty: str, seed: int,
             workers: int | None, force: bool) -> None:
    from hrm.tasks.datagen import generate_folder

    if out.exists() and any(out.iterdir()) and not force:
        fail(f"{out}: exists and is not empty (use --force to overwrite)")
    generate_folder(task, out, n_train, n_test, seed, size=size, difficulty=difficulty, workers=workers,
                    overwrite=force)
    click.echo(f"wrote {out}/train ({n_train}) and {out}/test ({n_test})")


@main.command("convert-csv", help="Convert an official Sudoku CSV (source,q,a,rating) to OUT/<split>.")
@click.argument("csv", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--force", is_flag=True)
@handle_errors
def convert_csv(csv: Path, out: Path, split: str, force: bool) -> None:
    import numpy as np

    from hrm.tasks import get_task
    from hrm.tasks.dataset import write_official_split

    task = get_task("sudoku", size=9)
    puzzles = task.parse_file(csv)
    missing = [p.source for p in puzzles if p.label is None]
    if missing:
        fail(f"{missing[0]}: no solution column; convert-csv needs labelled rows")
    write_official_split(out, split, np.stack([p.tokens for p in puzzles]).astype(np.uint8),
                         np.stack([p.label for p in puzzles]).astype(np.uint8), task=task, overwrite=force)
    click.echo(f"wrote {len(puzzles)} puzzles to {out}/{split}")


@main.command("info", help="Validate an official dataset folder and summarise it.")
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True)
@handle_errors
def info(root: Path, split: str) -> None:
    from hrm.tasks.dataset import read_official_split

    ds = read_official_split(root, split)
    m = ds.metadata
    click.echo(f"{root}/{split}: {len(ds)} examples, seq_len {m.get('seq_len')}, vocab {m.get('vocab_size')}, "
               f"{m.get('num_puzzle_identifiers')} puzzle ids, sets {m.get('sets')}, "
               f"task {ds.task.name if ds.task else 'unknown'}")
