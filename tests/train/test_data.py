"""Data layer: augmentations keep answers valid, generated sets are cached, official folders load."""

from __future__ import annotations

import numpy as np
import pytest

from hrm.tasks import Puzzle, get_task
from hrm.train.arrays import PuzzleArrays
from hrm.train.augment import dihedral_augment, sudoku_augment
from hrm.train.config import TrainConfig


@pytest.mark.parametrize("size", [4, 9])
def test_sudoku_augment_keeps_puzzles_valid(size):
    from hrm.tasks.datagen import generate_split

    task = get_task("sudoku", size=size)
    g = generate_split("sudoku", 6, 0, size=size, workers=1)
    digits = np.arange(1, size + 1) + 1
    rng = np.random.default_rng(0)
    inputs, labels = sudoku_augment(g.inputs, g.labels, rng, int(size ** 0.5), digits)
    assert inputs.dtype == g.inputs.dtype and inputs.shape == g.inputs.shape
    assert not np.array_equal(inputs, g.inputs)
    for i in range(len(inputs)):
        v = task.check(Puzzle(inputs[i], labels[i], "aug"), labels[i])
        assert v.valid and v.correct, v.reason
        assert (inputs[i] == 1).sum() == (g.inputs[i] == 1).sum()  # blanks stay blanks


def test_dihedral_augment_keeps_mazes_valid():
    task = get_task("maze", size=7)
    puzzles = task.generate(8, np.random.default_rng(0))
    data = PuzzleArrays.from_puzzles(puzzles)
    inputs, labels = dihedral_augment(data.inputs, data.labels, np.random.default_rng(1), (7, 7))
    for i in range(len(inputs)):
        v = task.check(Puzzle(inputs[i], labels[i], "aug"), labels[i])
        assert v.valid and v.correct, v.reason


def test_generated_sets_are_cached_and_held_out(tmp_path):
    from hrm.train.data import load_data

    cfg = TrainConfig(task="sudoku", size=4, n_train=300, n_eval=100, data_cache=str(tmp_path), gen_workers=1)
    first = load_data(cfg)
    assert not first.info["train"]["cached"]
    again = load_data(cfg)
    assert again.info["train"]["cached"] and again.info["eval"]["cached"]
    assert np.array_equal(first.train.inputs, again.train.inputs)
    assert np.array_equal(first.eval.labels, again.eval.labels)
    train_rows = {r.tobytes() for r in first.train.inputs}
    assert not any(r.tobytes() in train_rows for r in first.eval.inputs)
    assert len(first.eval) + first.info["eval"]["dropped_overlap"] == 100
    assert first.task_meta["name"] == "sudoku" and first.vocab_size == 6 and first.seq_len == 16


def test_official_folder_loads(tmp_path):
    from hrm.tasks.dataset import write_official_split
    from hrm.train.data import load_data

    task = get_task("maze", size=5)
    for split, n, seed in (("train", 20, 0), ("test", 10, 1)):
        arr = PuzzleArrays.from_puzzles(task.generate(n, np.random.default_rng(seed)))
        write_official_split(tmp_path, split, arr.inputs.astype(np.uint8), arr.labels.astype(np.uint8), task=task)
    data = load_data(TrainConfig(task="maze", size=5, data=str(tmp_path), n_eval=8))
    assert len(data.train) == 20 and len(data.eval) == 8
    assert data.vocab_size == 6 and data.num_puzzle_identifiers == 1 and data.seq_len == 25
    assert data.train.inputs.dtype == np.int32


def test_npz_round_trip(tmp_path):
    a = PuzzleArrays(np.arange(12).reshape(3, 4), np.arange(12).reshape(3, 4) + 1, np.array([0, 1, 2]))
    path = a.save_npz(tmp_path / "x.npz", meta={"k": 1})
    b, meta = PuzzleArrays.load_npz(path)
    assert meta == {"k": 1}
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.puzzle_ids, b.puzzle_ids)
    c, dropped = b.without_inputs_of(a.take(np.array([1])))
    assert dropped == 1 and len(c) == 2
