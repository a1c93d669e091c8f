"""Official dataset folders: our writer's output reads back, official-layout folders read, errors named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.arc import encode_grid
from hrm.tasks.dataset import (
    SetArrays,
    assign_puzzle_ids,
    read_identifiers,
    read_official_split,
    write_official_sets,
    write_official_split,
)
from hrm.tasks.sudoku_gen import generate_dataset

OFFICIAL_KEYS = {
    "pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
    "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "sets",
}


def official_like(root: Path, split: str, inputs: np.ndarray, labels: np.ndarray, **meta) -> None:
    """Lay out a split the way the official builders do (uint8 tokens, int32 indices, no 'task')."""
    d = root / split
    d.mkdir(parents=True)
    n = len(inputs)
    np.save(d / "all__inputs.npy", inputs.astype(np.uint8))
    np.save(d / "all__labels.npy", labels.astype(np.uint8))
    np.save(d / "all__puzzle_identifiers.npy", np.zeros(n, np.int32))
    np.save(d / "all__puzzle_indices.npy", np.arange(n + 1, dtype=np.int32))
    np.save(d / "all__group_indices.npy", np.arange(n + 1, dtype=np.int32))
    m = {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 11, "seq_len": inputs.shape[1],
        "num_puzzle_identifiers": 1, "total_groups": n, "mean_puzzle_examples": 1, "sets": ["all"],
    }
    m.update(meta)
    (d / "dataset.json").write_text(json.dumps(m))


def test_generated_sudoku_round_trip(tmp_path: Path) -> None:
    data = generate_dataset(6, rng_seed=1, difficulty="easy", workers=1)
    task = get_task("sudoku")
    out = write_official_split(tmp_path, "train", data.inputs, data.labels, task=task)
    assert out == tmp_path / "train"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json"]
        + [f"all__{f}.npy" for f in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")]
    )
    meta = json.loads((out / "dataset.json").read_text())
    assert OFFICIAL_KEYS <= set(meta)
    assert (meta["seq_len"], meta["vocab_size"], meta["num_puzzle_identifiers"], meta["total_groups"]) == (81, 11, 1, 6)
    assert meta["mean_puzzle_examples"] == 1.0 and meta["sets"] == ["all"] and meta["task"]["name"] == "sudoku"
    assert np.load(out / "all__inputs.npy").dtype == np.uint8
    assert np.load(out / "all__puzzle_indices.npy").dtype == np.int32

    split = read_official_split(tmp_path, "train")
    assert len(split) == 6 and split.task is not None and split.task.name == "sudoku"
    ps = list(split.puzzles())
    assert len(ps) == 6
    for i, p in enumerate(ps):
        assert np.array_equal(p.tokens, data.inputs[i]) and np.array_equal(p.label, data.labels[i])
        assert p.puzzle_id == 0 and p.meta["index"] == i and p.meta["group_index"] == i
        assert p.source == f"{out / 'all__inputs.npy'}:{i}"
        assert task.check(p, p.label).correct


def test_reads_official_layout_and_guesses_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    maze = get_task("maze")
    p = maze.generate(2, rng)
    official_like(tmp_path, "test", np.stack([x.tokens for x in p]), np.stack([x.label for x in p]), vocab_size=6)
    split = read_official_split(tmp_path, "test")
    assert split.task is not None and split.task.name == "maze" and split.task.params() == {"size": 30}
    assert split.identifiers is None
    got = list(split.puzzles("all"))
    assert got[1].same_as(p[1])
    with pytest.raises(KeyError):
        list(split.puzzles("nope"))
    # 4x4 Sudoku and 4x4 mazes share seq_len 16 / vocab 6: without our 'task' key -> unknown
    official_like(tmp_path / "s4", "test", np.ones((1, 16)), np.full((1, 16), 2), vocab_size=6)
    assert read_official_split(tmp_path / "s4", "test").task is None
    t4 = get_task("sudoku", size=4)
    write_official_split(tmp_path / "s4b", "test", np.ones((1, 16)), np.full((1, 16), 2), task=t4)
    assert read_official_split(tmp_path / "s4b", "test").task.params() == {"size": 4}


def test_arc_multi_example_puzzles_groups_and_identifiers(tmp_path: Path) -> None:
    # 2 groups; group 0 has puzzles "a" and its augmentation "a_t1_...", each with 2 test examples
    names = ["<blank>", "a", "a_t1_0123456789", "b"]
    grids = [np.full((2, 2), k) for k in range(5)]
    inputs = np.stack([encode_grid(g) for g in grids])
    labels = inputs.copy()
    write_official_split(
        tmp_path, "test", inputs, labels, np.array([1, 2, 3]),
        puzzle_indices=np.array([0, 2, 4, 5]), group_indices=np.array([0, 2, 3]),
        task=get_task("arc"), identifiers=names,
    )
    meta = json.loads((tmp_path / "test" / "dataset.json").read_text())
    assert meta["num_puzzle_identifiers"] == 4 and meta["total_groups"] == 2
    assert meta["mean_puzzle_examples"] == pytest.approx(5 / 3)
    assert read_identifiers(tmp_path) == names
    split = read_official_split(tmp_path, "test")
    ps = list(split.puzzles())
    assert [p.puzzle_id for p in ps] == [1, 1, 2, 2, 3]
    assert [p.meta["puzzle_index"] for p in ps] == [0, 0, 1, 1, 2]
    assert [p.meta["group_index"] for p in ps] == [0, 0, 0, 0, 1]
    assert [p.meta["name"] for p in ps] == ["a", "a", "a_t1_0123456789", "a_t1_0123456789", "b"]
    # labels keep raw tokens: PAD (0) is the ignore id outside the grid
    assert split.metadata["ignore_label_id"] == 0 and (ps[0].label == 0).sum() == 900 - 4 - 4


def test_assign_puzzle_ids() -> None:
    arc = get_task("arc")
    ps = arc.parse(json.dumps({"train": [], "test": [{"input": [[1]]}]}), "/x/abc.json")
    (q,) = assign_puzzle_ids(ps, ["<blank>", "zzz", "abc"])
    assert q.puzzle_id == 2 and q.meta["task_id"] == "abc" and np.array_equal(q.tokens, ps[0].tokens)
    assert assign_puzzle_ids(ps, {"abc": 7})[0].puzzle_id == 7
    with pytest.raises(KeyError, match="abc"):
        assign_puzzle_ids(ps, ["<blank>"])


def test_write_is_atomic_and_refuses_to_clobber(tmp_path: Path) -> None:
    x = np.full((2, 81), 2)
    write_official_split(tmp_path, "test", x, x, vocab_size=11)
    with pytest.raises(FileExistsError):
        write_official_split(tmp_path, "test", x, x, vocab_size=11)
    write_official_split(tmp_path, "test", x[:1], x[:1], vocab_size=11, overwrite=True)
    assert len(read_official_split(tmp_path, "test")) == 1
    # an inconsistent write fails before anything is published, and leaves no temp dirs
    with pytest.raises(ValueError, match="refusing"):
        write_official_split(tmp_path, "bad", x, x + 20, vocab_size=11)
    with pytest.raises(ValueError, match="one entry per puzzle"):
        write_official_split(tmp_path, "bad", x, x, np.zeros(5), vocab_size=11)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]


def test_write_official_sets_several_sets(tmp_path: Path) -> None:
    a = SetArrays(np.ones((2, 4)), np.ones((2, 4)), np.zeros(2), np.arange(3), np.arange(3))
    b = SetArrays(np.ones((1, 4)), np.ones((1, 4)), np.zeros(1), np.arange(2), np.arange(2))
    write_official_sets(tmp_path, "train", {"a": a, "b": b}, vocab_size=3)
    split = read_official_split(tmp_path, "train")
    assert list(split.sets) == ["a", "b"] and len(split) == 3 and split.metadata["total_groups"] == 3
    assert [p.meta["set"] for p in split.puzzles()] == ["a", "a", "b"]


# -- malformed folders ---------------------------------------------------------------------------


def _good(tmp_path: Path) -> Path:
    official_like(tmp_path, "test", np.ones((3, 81)), np.full((3, 81), 2))
    return tmp_path / "test"


def _edit_meta(d: Path, **changes) -> None:
    m = json.loads((d / "dataset.json").read_text())
    for k, v in changes.items():
        if v is KeyError:
            del m[k]
        else:
            m[k] = v
    (d / "dataset.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "change, file, message",
    [
        ({"seq_len": KeyError}, "dataset.json", "missing field 'seq_len'"),
        ({"vocab_size": "11"}, "dataset.json", "field 'vocab_size' has the wrong type"),
        ({"sets": []}, "dataset.json", "field 'sets' must be a non-empty list"),
        ({"seq_len": 80}, "all__inputs.npy", "expected shape [N, 80] (seq_len), found [3, 81]"),
        ({"vocab_size": 2}, "all__labels.npy", "tokens must be in 0..1 (vocab_size), found 2..2"),
        ({"total_groups": 4}, "dataset.json", "total_groups is 4, the arrays have 3"),
        ({"sets": ["all", "extra"]}, "extra__inputs.npy", "missing array file"),
        ({"task": {"name": "sudoku", "params": {"size": 4}}}, "dataset.json", "field 'task' (sudoku) has seq_len 16"),
    ],
)
def test_malformed_metadata(tmp_path: Path, change: dict, file: str, message: str) -> None:
    d = _good(tmp_path)
    _edit_meta(d, **change)
    with pytest.raises(ParseError) as ei:
        read_official_split(tmp_path, "test")
    assert ei.value.source == str(d / file), str(ei.value)
    assert message in ei.value.message, str(ei.value)


@pytest.mark.parametrize(
    "name, array, message",
    [
        ("puzzle_indices", np.array([0, 1, 3, 2], np.int32), "non-decreasing offsets from 0 to 3"),
        ("puzzle_indices", np.array([0, 1, 2], np.int32), "expected 4 non-decreasing offsets"),
        ("group_indices", np.array([0, 2], np.int32), "offsets from 0 to 3 (the number of puzzles)"),
        ("puzzle_identifiers", np.array([0, 0, 5], np.int32), "identifiers must be in 0..0"),
        ("labels", np.ones((2, 81), np.uint8), "2 rows, inputs has 3"),
        ("inputs", np.ones((3, 81), np.float32), "expected integers, found dtype float32"),
    ],
)
def test_malformed_arrays(tmp_path: Path, name: str, array: np.ndarray, message: str) -> None:
    d = _good(tmp_path)
    np.save(d / f"all__{name}.npy", array)
    with pytest.raises(ParseError) as ei:
        read_official_split(tmp_path, "test")
    assert ei.value.source == str(d / f"all__{name}.npy") and message in ei.value.message, str(ei.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="not an official dataset split"):
        read_official_split(tmp_path, "test")
    d = _good(tmp_path)
    (d / "dataset.json").write_text('{"pad_id": 0,\n "x": }')
    with pytest.raises(ParseError) as ei:
        read_official_split(tmp_path, "test")
    assert ei.value.line == 2 and "invalid JSON" in ei.value.message
    d2 = _good(tmp_path / "b")
    (d2 / "all__labels.npy").write_bytes(b"not numpy")
    with pytest.raises(ParseError, match="not a readable .npy array"):
        read_official_split(tmp_path / "b", "test")
    (tmp_path / "b" / "identifiers.json").write_text('{"a": 1}')
    with pytest.raises(ParseError, match="expected a JSON list of names"):
        read_identifiers(tmp_path / "b")


def test_split_exposes_merged_arrays(tmp_path: Path) -> None:
    a = SetArrays(np.ones((2, 4)), np.full((2, 4), 2), np.array([1]), np.array([0, 2]), np.array([0, 1]))
    b = SetArrays(np.full((3, 4), 2), np.ones((3, 4)), np.array([2, 3]), np.array([0, 1, 3]), np.array([0, 2]))
    write_official_sets(tmp_path, "test", {"a": a, "b": b}, vocab_size=3)
    split = read_official_split(tmp_path, "test")
    assert split.inputs.shape == (5, 4) and split.labels[:2].max() == 2
    assert split.puzzle_identifiers.tolist() == [1, 2, 3]
    assert split.puzzle_indices.tolist() == [0, 2, 3, 5]
    assert split.group_indices.tolist() == [0, 1, 3]
    assert split.example_identifiers().tolist() == [1, 1, 2, 3, 3]
    one = read_official_split(_good(tmp_path / "one").parent, "test")
    assert isinstance(one.inputs, np.memmap) and one.example_identifiers().tolist() == [0, 0, 0]
