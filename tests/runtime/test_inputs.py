"""Lenient parsing: each bad line / broken grid is one error with its line; the rest still parses."""

from __future__ import annotations

import io

import pytest

from hrm.runtime.inputs import TokenLines, parse_lenient, read_inputs
from hrm.tasks import get_task

S4 = get_task("sudoku", size=4)


def test_line_oriented_file_keeps_good_lines():
    text = "1... .... .... ....\n1x.. .... .... ....\n11.. .... .... ....\n.1.. .... .... ....\n"
    puzzles, errors = parse_lenient(S4, text, "f.txt")
    assert [p.source for p in puzzles] == ["f.txt:1", "f.txt:4"]
    assert [(e.source, e.line) for e in errors] == [("f.txt", 2), ("f.txt", 3)]


def test_broken_grid_is_one_error_and_other_puzzles_survive():
    text = "1 . | . .\n. . | . .\n\n. . | . 4\n\n1... .... .... ....\n"
    puzzles, errors = parse_lenient(S4, text, "g.txt")
    assert [p.source for p in puzzles] == ["g.txt:6"]
    assert len(errors) == 1 and errors[0].line == 3


def test_broken_json_fails_once():
    arc = get_task("arc")
    puzzles, errors = parse_lenient(arc, '{"train": [],\n "test": [\n', "t.json")
    assert puzzles == [] and len(errors) == 1 and errors[0].line is not None


def test_read_inputs_kinds(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("1... .... .... ....\n")
    (tmp_path / "dir").mkdir()
    got = read_inputs(S4, [str(f), "-", "..2. .... .... ....", str(tmp_path / "missing.csv"), str(tmp_path / "dir")],
                      stdin=io.StringIO(".3.. .... .... ....\n"))
    assert [p.source for p in got.puzzles] == [f"{f}:1", "<stdin>:1", "<arg 3>:1"]
    assert [e.source for e in got.errors] == [str(tmp_path / "missing.csv"), str(tmp_path / "dir")]


def test_token_lines_for_task_less_deployments():
    t = TokenLines(4, 6)
    ps = t.parse("1 2 3 4\n\n5,5,0,1 # comment\n", "x")
    assert [p.tokens.tolist() for p in ps] == [[1, 2, 3, 4], [5, 5, 0, 1]]
    with pytest.raises(Exception, match="expected 4 tokens"):
        t.parse("1 2 3", "x")
    with pytest.raises(Exception, match="outside the vocabulary"):
        t.parse("1 2 3 9", "x")
    assert t.render([1, 2, 3, 4], highlight=[False, True, False, False]) == "1 2* 3 4"


def test_arc_challenges_go_per_task():
    """The hook for contract C2: a task that reports records itself (ARC) keeps its good tasks."""
    arc = get_task("arc")
    good = {"train": [], "test": [{"input": [[1]]}, {"input": [[2, 3]]}]}
    text = '{"a": ' + str(good).replace("'", '"') + ',\n "b": {"train": [], "test": [{"input": [[1], [2, 3]]}]},\n' \
           ' "c": ' + str(good).replace("'", '"') + '}'
    puzzles, errors = parse_lenient(arc, text, "c.json")
    assert [p.meta["task_id"] for p in puzzles] == ["a", "a", "c", "c"]
    assert len(errors) == 1 and errors[0].line == 2 and "task b: test[0].input: row 2 has 2 cells" in errors[0].message
