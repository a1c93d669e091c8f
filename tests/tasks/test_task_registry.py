"""Registry, metadata round trip, the Puzzle/Verdict contract and the torch-free import rule."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hrm.errors import ConfigError, HRMError, ParseError
from hrm.tasks import (
    ArcTask,
    MazeTask,
    Puzzle,
    SudokuTask,
    Task,
    Verdict,
    get_task,
    task_from_metadata,
)
from hrm.tasks.base import as_tokens, read_text, split_lines


@pytest.mark.parametrize(
    "name, params, cls, seq_len, vocab, grid",
    [
        ("sudoku", {}, SudokuTask, 81, 11, [9, 9]),
        ("sudoku", {"size": 4}, SudokuTask, 16, 6, [4, 4]),
        ("maze", {}, MazeTask, 900, 6, [30, 30]),
        ("maze", {"size": 10}, MazeTask, 100, 6, [10, 10]),
        ("arc", {}, ArcTask, 900, 12, [30, 30]),
    ],
)
def test_registry_and_metadata_round_trip(name, params, cls, seq_len, vocab, grid) -> None:
    t = get_task(name, **params)
    assert isinstance(t, cls) and isinstance(t, Task)
    meta = t.metadata()
    assert meta["name"] == name and meta["seq_len"] == seq_len and meta["vocab_size"] == vocab
    assert meta["grid"] == grid and len(meta["token_map"]) == vocab
    assert sorted(meta["token_map"].values()) == list(range(vocab))
    back = json.loads(json.dumps(meta))  # JSON-able
    t2 = task_from_metadata(back)
    assert type(t2) is cls and t2.metadata() == meta
    assert repr(t2).startswith(cls.__name__)


def test_registry_errors() -> None:
    with pytest.raises(ConfigError, match="unknown task 'chess'"):
        get_task("chess")
    with pytest.raises(ConfigError, match="size must be 9 or 4"):
        get_task("sudoku", size=16)
    with pytest.raises(ConfigError, match="bad parameters"):
        get_task("arc", size=3)
    meta = get_task("sudoku").metadata()
    with pytest.raises(ConfigError, match="field 'vocab_size' is 12"):
        task_from_metadata({**meta, "vocab_size": 12})
    tm = dict(meta["token_map"])
    tm["."] = 0
    with pytest.raises(ConfigError, match="field 'token_map'"):
        task_from_metadata({**meta, "token_map": tm})
    with pytest.raises(ConfigError, match="missing field 'name'"):
        task_from_metadata({"params": {}})
    with pytest.raises(ConfigError):
        task_from_metadata([1, 2])  # type: ignore[arg-type]
    assert isinstance(task_from_metadata({"name": "maze", "params": {"size": 8}}), MazeTask)


def test_puzzle_is_immutable_and_validated() -> None:
    src = np.arange(4, dtype=np.int32)
    p = Puzzle(src, np.arange(4), "f:1")
    assert p.tokens.dtype == np.int32 and p.label.dtype == np.int32
    assert p.tokens is not src and src.flags.writeable  # the caller's array is not frozen
    with pytest.raises(ValueError):
        p.tokens[0] = 5
    with pytest.raises(AttributeError):
        p.source = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="label shape"):
        Puzzle(np.arange(4), np.arange(3), "f:1")
    with pytest.raises(ValueError, match="1-D"):
        Puzzle(np.zeros((2, 2), int), None, "f:1")
    with pytest.raises(ValueError, match="integers"):
        Puzzle(np.zeros(3), None, "f:1")
    with pytest.raises(ValueError, match="token 8589934594 at position 1 is outside int32"):
        Puzzle(np.array([1, 2**33 + 2]), None, "f:1")  # an int32 cast would make it 2
    q = Puzzle(np.arange(4, dtype=np.uint8), np.arange(4), "g:2", meta={"x": 1})
    assert p.same_as(q) and not p.same_as(Puzzle(np.arange(4), None, "f:1"))
    assert p != q and p == p  # identity equality, no ambiguous array comparison
    assert Verdict(True, None, "ok") == Verdict(True, None, "ok")


def test_helpers() -> None:
    assert split_lines("a\r\nb\n\nc\n") == ["a", "b", "", "c"]
    assert split_lines("a\x0cb") == ["a\x0cb"]
    with pytest.raises(ValueError, match="expected 81 tokens"):
        as_tokens(np.zeros(80, int), 81)
    with pytest.raises(ValueError, match="integer"):
        as_tokens(np.zeros(81), 81)
    assert issubclass(ParseError, HRMError) and issubclass(ParseError, ValueError)


def test_read_text_strips_bom(tmp_path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_text(f) == "hello\n"


@pytest.mark.parametrize("name, params", [("sudoku", {}), ("maze", {"size": 12}), ("arc", {})])
def test_every_task_checks_its_own_generated_labels(name, params) -> None:
    t = get_task(name, **params)
    for p in t.generate(2, np.random.default_rng(0)):
        assert p.tokens.shape == (t.seq_len,) and p.label is not None
        assert p.tokens.max() < t.vocab_size and p.label.max() < t.vocab_size
        v = t.check(p, p.label)
        assert v.valid and v.correct is True, v.reason
        assert t.render(p.label)  # renders without error
        assert t.decode(p.tokens).ndim == 2


def test_import_is_torch_free() -> None:
    code = (
        "import sys; import hrm.tasks, hrm.tasks.dataset, hrm.tasks.sudoku_gen; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'onnx', 'onnxruntime', 'tensorrt'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
