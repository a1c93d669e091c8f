"""SudokuTask: formats, tokens, checker reasons, rendering, malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.base import read_text
from hrm.tasks.sudoku_solver import random_solution

Q = "..53.....8......2..7..1.5..4....53...1..7...6..32...8..6.5....9..4....3......97.."
A = "145327698839654127672918543496185372218473956753296481367542819984761235521839764"

GRID = """\
+-------+-------+-------+
| . . 5 | 3 . . | . . . |
| 8 . . | . . . | . 2 . |
| . 7 . | . 1 . | 5 . . |
+-------+-------+-------+
| 4 . . | . . 5 | 3 . . |
| . 1 . | . 7 . | . . 6 |
| . . 3 | 2 . . | . 8 . |
+-------+-------+-------+
| . 6 . | 5 . . | . . 9 |
| . . 4 | . . . | . 3 . |
| . . . | . . 9 | 7 . . |
+-------+-------+-------+
"""


@pytest.fixture
def task():
    return get_task("sudoku")


def test_token_map_is_official(task) -> None:
    tm = task.token_map()
    assert tm["<pad>"] == 0 and tm["."] == 1 and tm["1"] == 2 and tm["9"] == 10
    assert len(tm) == 11 == task.vocab_size and task.seq_len == 81 and task.grid_shape == (9, 9)
    t4 = get_task("sudoku", size=4)
    assert t4.vocab_size == 6 and t4.seq_len == 16 and t4.token_map()["4"] == 5 and t4.token_map()["."] == 1
    p = task.parse(Q)[0]
    # official builder: q.replace('.', '0') -> digits, then + 1
    official = np.frombuffer(Q.replace(".", "0").encode(), dtype=np.uint8) - ord("0") + 1
    assert np.array_equal(p.tokens, official) and p.tokens.dtype == np.int32


def test_all_formats_give_the_same_puzzle(task) -> None:
    text = f"""# one per line, '.' blanks
{Q}
{Q.replace(".", "0")}   # '0' blanks and a trailing comment

{GRID}
source,q,a,rating
demo,{Q},{A},12
{Q} {A}
"""
    ps = task.parse(text, "f.txt")
    assert len(ps) == 5
    for p in ps:
        assert np.array_equal(p.tokens, ps[0].tokens)
    assert [p.source for p in ps] == ["f.txt:2", "f.txt:3", "f.txt:6", "f.txt:20", "f.txt:21"]
    assert ps[0].label is None and ps[2].label is None
    assert ps[3].label is not None and "".join(str(d) for d in task.decode(ps[3].label).reshape(-1)) == A
    assert ps[3].meta == {"format": "csv", "csv_source": "demo", "rating": "12"}
    assert np.array_equal(ps[4].label, ps[3].label)


def test_headerless_csv_and_4x4(task) -> None:
    p = task.parse(f"{Q},{A}\n")[0]
    assert p.label is not None
    t4 = get_task("sudoku", size=4)
    ps = t4.parse("1.3.\n3...\n..1.\n.2..\n\n1.3.3.....1..2..\n")
    assert len(ps) == 2 and np.array_equal(ps[0].tokens, ps[1].tokens)
    assert t4.decode(ps[0].tokens)[0].tolist() == [1, 0, 3, 0]


def test_round_trip_parse_decode_render_parse(task) -> None:
    p = task.parse(Q)[0]
    g = task.decode(p.tokens)
    assert g[0, 2] == 5 and g[0, 0] == 0 and g.shape == (9, 9)
    assert np.array_equal(task.encode(g), p.tokens)
    text = task.render(p.tokens)
    assert text.splitlines()[0] == ". . 5 | 3 . . | . . ."
    assert text.splitlines()[3] == "------+-------+------"
    again = task.parse(text)[0]
    assert np.array_equal(again.tokens, p.tokens)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([4, 9]))
def test_round_trip_random_grids(seed: int, size: int) -> None:
    task = get_task("sudoku", size=size)
    rng = np.random.default_rng(seed)
    sol = np.array(random_solution(rng, 2 if size == 4 else 3)).reshape(size, size)
    grid = np.where(rng.random((size, size)) < 0.5, sol, 0)
    tokens = task.encode(grid)
    assert np.array_equal(task.decode(tokens), grid)
    (p,) = task.parse(task.render(tokens))
    assert np.array_equal(p.tokens, tokens)
    (p,) = task.parse("".join(str(d) for d in grid.reshape(-1)))
    assert np.array_equal(p.tokens, tokens)


def test_render_highlight_and_color(task) -> None:
    p = task.parse(Q)[0]
    mask = np.zeros(81, bool)
    mask[2] = True  # row 1, column 3 (the given 5)
    mask[80] = True
    lines = task.render(p.tokens, highlight=mask).splitlines()
    assert lines[0] == ". . 5*| 3 . . | . . ."
    assert lines[-1].endswith(". .*")
    colored = task.render(p.tokens, highlight=mask, color=True)
    assert "\x1b[1;30;43m5\x1b[0m" in colored
    bad = p.tokens.copy()
    bad[0] = 0
    assert task.render(bad).startswith("? ")
    with pytest.raises(ValueError):
        task.render(p.tokens, highlight=np.zeros(80, bool))


def test_check_names_the_problem(task) -> None:
    p = task.parse(f"{Q},{A}")[0]
    assert task.check(p, p.label) == type(task.check(p, p.label))(True, True, "solved")
    sol = task.decode(p.label)

    # two cells swapped inside row 1: columns and boxes break, the row stays fine
    s = sol.copy()
    s[0, 0], s[0, 1] = s[0, 1], s[0, 0]
    v = task.check(p, task.encode(s))
    assert not v.valid and v.correct is False
    assert "column 1 has two 4s" in v.reason and "column 2 has two 1s" in v.reason

    # a row duplicate
    s = sol.copy()
    s[2, 0] = s[2, 1]
    v = task.check(p, task.encode(s))
    assert "row 3 has two 7s" in v.reason and "column 1 has two 7s" in v.reason
    assert "box 1 has two 7s" in v.reason

    # a changed given (row 1, column 3 is a given 5)
    s = sol.copy()
    s[0, 2] = 9
    v = task.check(p, task.encode(s))
    assert v.reason.startswith("1 givens changed, first at row 1, column 3 (given 5, answer 9)")

    # blanks and PAD tokens
    v = task.check(p, p.tokens)
    assert not v.valid and v.reason.startswith("58 cells left blank, first at row 1, column 1")
    pad = p.label.copy()
    pad[10] = 0
    v = task.check(p, pad)
    assert v.reason.startswith("1 cells hold no digit, first at row 2, column 2 (token 0)")

    # no label: correct is None
    unl = task.parse(Q)[0]
    assert task.check(unl, p.label) == type(v)(True, None, "valid solution")
    with pytest.raises(ValueError):
        task.check(p, p.label[:80])


def test_check_valid_but_not_label(task) -> None:
    # a puzzle with two solutions: empty 4x4 rows; label one solution, answer the other
    t4 = get_task("sudoku", size=4)
    a = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])
    b = a[:, [1, 0, 2, 3]]
    puzzle = np.where(a == b, a, 0)
    p = t4.parse(" ".join(["".join(map(str, puzzle.reshape(-1))), "".join(map(str, a.reshape(-1)))]))[0]
    v = t4.check(p, t4.encode(b))
    assert v.valid and v.correct is False and "differs from the label in 8 cells" in v.reason


def test_generate_and_solve(task) -> None:
    ps = task.generate(2, np.random.default_rng(0), difficulty="easy")
    for p in ps:
        assert p.label is not None and p.meta["guesses"] == 0 and p.meta["bucket"] == "0"
        assert task.check(p, p.label).correct
        assert np.array_equal(task.solve(p), p.label)
        assert task.rate(p) == {"solutions": 1, "guesses": 0, "backtracks": 0}
        assert p.source.startswith("<generated>:")


# -- malformed input: every error names the line ------------------------------------------------


@pytest.mark.parametrize(
    "text, line, message",
    [
        (Q[:-1], 1, "expected 81 cells, found 80"),
        ("\n\n" + Q + "5", 3, "expected 81 cells, found 82"),
        (Q[:10] + "x" + Q[11:], 1, "bad character 'x' at column 11"),
        ("# c\n" + Q + "\n" + Q.replace("5", "a", 1), 3, "bad character 'a' at column 3"),
        ("5 3 . . 7 . . . .\n6 . . 1 9 5 . .\n", 1, "grid that starts here, line 2: grid row has 8 cells, expected 9"),
        ("5 3 . . 7 . . . .\n6 . . 1 9 5 . . .\n\n", 1, "grid that starts here has 2 rows, expected 9 (blank line at line 3)"),
        ("x\n5 3 . . 7 . . . .\n", 1, "bad character 'x'"),
        (". . . . . . . . .\n" * 4, 1, "has 4 rows, expected 9 (end of input)"),
        ("source,q,a,rating\ns," + Q + "," + A[:-1] + ",3\n", 2, "CSV field a: expected 81 cells, found 80"),
        ("source,q,a,rating\ns," + Q + "\n", 2, "CSV row has 2 fields, the header names more"),
        (Q + "," + A + ",1\n", 1, "CSV row has 3 fields"),
        (Q + "," + A.replace("1", ".", 1) + "\n", 1, "solution has 1 blank cells"),
        (Q + "," + "2" + A[1:] + "\n", 1, "solution is not valid: row 1 has two 2s"),
        (Q + "," + A[:2] + "6" + A[3:] + "\n", 1, "solution changes the given at row 1, column 3 (5 -> 6)"),
        ("5" + Q[1:], 1, "givens conflict: row 1 has two 5s"),
        ("\n" + Q + "\n" + Q[:40], 3, "expected 81 cells, found 40"),
    ],
)
def test_malformed_inputs(task, text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as ei:
        task.parse(text, "puzzles.txt")
    e = ei.value
    assert e.source == "puzzles.txt" and e.line == line, str(e)
    assert message in e.message, str(e)
    assert str(e).startswith(f"puzzles.txt:{line}: ")


def test_parse_file_and_unreadable_files(task, tmp_path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("\n" + Q + "\n")
    (p,) = task.parse_file(f)
    assert p.source == f"{f}:2"
    with pytest.raises(ParseError, match="cannot read file"):
        task.parse_file(tmp_path / "missing.txt")
    b = tmp_path / "bin.txt"
    b.write_bytes(Q.encode() + b"\n..\xff\xfe\n")
    with pytest.raises(ParseError) as ei:
        task.parse_file(b)
    assert ei.value.line == 2 and "byte 0xff (not UTF-8) at column 3" in ei.value.message
    good, bad = task.parse_records(read_text(b), str(b))  # the bad bytes cost only their own line
    assert good.source == f"{b}:1" and bad.line == 2


def test_empty_input_gives_no_puzzles(task) -> None:
    assert task.parse("") == [] and task.parse("# only a comment\n\n") == []


def test_bad_character_in_solution_field_names_its_column(task) -> None:
    line = "  " + Q + "   " + A[:5] + "x" + A[6:]
    with pytest.raises(ParseError) as ei:
        task.parse(line, "p.txt")
    assert ei.value.line == 1 and f"bad character 'x' at column {2 + 81 + 3 + 6}" in ei.value.message
