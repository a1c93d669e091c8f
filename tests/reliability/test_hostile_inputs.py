"""Inputs under hostile content: files mixing good and bad records of every line/paragraph format.

Property: every good record comes back as a puzzle (its tokens, its source line), every bad one as
exactly one error at the line its record starts on, in input order; whatever the line endings; and
no bytes at all make a parser raise. Parsing is one pass: time grows linearly with the input.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.inputs import TokenLines, parse_records

S4 = get_task("sudoku", size=4)
M5 = get_task("maze", size=5)
TOKENS = TokenLines(6, 5)
SUDOKUS = S4.generate(12, np.random.default_rng(1))
MAZES = M5.generate(8, np.random.default_rng(2))
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cells(tokens: np.ndarray) -> str:
    return "".join("." if t == 1 else str(t - 1) for t in tokens)


# ---- record builders: (lines, expected tokens or None for a bad record, paragraph?) -----------------

def sudoku_record(kind: str, i: int, cut: int) -> tuple[list[str], np.ndarray | None, bool]:
    p = SUDOKUS[i % len(SUDOKUS)]
    q, a = cells(p.tokens), cells(p.label)
    grid = S4.render(p.tokens).split("\n")
    if kind == "line":
        return [f"{q[:4]} {q[4:8]} {q[8:12]} {q[12:]}"], p.tokens, False
    if kind == "pair":
        return [f"{q} {a}"], p.tokens, False
    if kind == "csv":
        return [f"gen,{q},{a},3"], p.tokens, False
    if kind == "grid":
        return grid, p.tokens, True
    if kind == "bad-char":
        return [q[:cut] + "x" + q[cut + 1:]], None, False
    if kind == "truncated":  # any length but a grid row's (4: see tests/tasks/test_inputs.py) or a whole line's
        return [q[:cut if cut != 4 else 5]], None, False
    if kind == "conflict":
        return ["11" + q[2:]], None, False
    if kind == "csv-short":
        return [f"gen,{q},{a[:-1]},3"], None, False
    if kind == "csv-fields":
        return [f"gen,{q},3"], None, False
    rows = [r for r in grid if not r.startswith("-")]
    if kind == "grid-char":
        rows[cut % 4] = rows[cut % 4].replace(".", "x", 1).replace("1", "x", 1) if "." not in rows[cut % 4] else \
            rows[cut % 4].replace(".", "x", 1)
        return rows, None, True
    if kind == "grid-short":
        rows[cut % 4] = rows[cut % 4][:-2]
        return rows, None, True
    if kind == "grid-missing":
        return rows[:3], None, True
    raise AssertionError(kind)


def maze_record(kind: str, i: int, cut: int) -> tuple[list[str], np.ndarray | None, bool]:
    p = MAZES[i % len(MAZES)]
    rows = M5.render(p.tokens).split("\n")
    if kind == "grid":
        return rows, p.tokens, True
    if kind == "path":  # drawn with its shortest path: the puzzle is the path-free maze
        return M5.render(p.label).split("\n"), p.tokens, True
    r = cut % 5
    if kind == "bad-char":
        rows[r] = rows[r][:2] + "x" + rows[r][3:]
    elif kind == "short-row":  # (a row left all free once cut short would read as a separator line: not this case)
        r = next(k for k in range(r, r + 5) if rows[k % 5][:-1].strip()) % 5
        rows[r] = rows[r][:-1]
    elif kind == "missing-row":
        del rows[r]
    elif kind == "two-starts":
        free = [(y, x) for y, row in enumerate(rows) for x, ch in enumerate(row) if ch == " "]
        y, x = free[cut % len(free)]
        rows[y] = rows[y][:x] + "S" + rows[y][x + 1:]
    else:
        raise AssertionError(kind)
    return rows, None, True


def token_record(kind: str, i: int, cut: int) -> tuple[list[str], np.ndarray | None, bool]:
    toks = [(i * 7 + k * 3) % 5 for k in range(6)]
    if kind == "good":
        return [" ".join(map(str, toks))], np.array(toks), False
    if kind == "float":
        toks[cut % 6] = 1.7
    elif kind == "huge":
        toks[cut % 6] = 2**33 + 2
    elif kind == "negative":
        toks[cut % 6] = -1
    elif kind == "count":
        toks = toks[: cut % 6]
        if not toks:
            toks = [1]
    else:
        raise AssertionError(kind)
    return [", ".join(map(str, toks))], None, False


FORMATS = {
    "sudoku": (S4, sudoku_record, ["line", "pair", "csv", "grid"],
               ["bad-char", "truncated", "conflict", "csv-short", "csv-fields", "grid-char", "grid-short",
                "grid-missing"]),
    "maze": (M5, maze_record, ["grid", "path"], ["bad-char", "short-row", "missing-row", "two-starts"]),
    "tokens": (TOKENS, token_record, ["good"], ["float", "huge", "negative", "count"]),
}


def build(fmt: str, picks: list[tuple[bool, int, int, int, bool]], ending: str) -> tuple[str, list, list]:
    """The file text, [(start line, tokens)] of good records and [start line] of bad ones."""
    task, make, good_kinds, bad_kinds = FORMATS[fmt]
    lines: list[str] = []
    good, bad = [], []
    for is_good, kind_index, i, cut, gap in picks:
        kinds = good_kinds if is_good else bad_kinds
        rec, tokens, paragraph = make(kinds[kind_index % len(kinds)], i, cut)
        if (paragraph or gap or fmt == "maze") and lines and lines[-1] != "":
            lines.append("")  # paragraphs (grids, mazes) are set apart by blank lines
        if gap and fmt == "sudoku":
            lines.append("# a comment line")
        start = len(lines) + 1
        lines.extend(rec)
        if paragraph:
            lines.append("")
        (good.append((start, tokens)) if tokens is not None else bad.append(start))
    return ending.join(lines) + ending, good, bad


PICKS = st.lists(st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, 50), st.integers(1, 15),
                           st.booleans()), min_size=1, max_size=25)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@SETTINGS
@given(picks=PICKS, ending=ENDINGS)
def test_every_good_record_answered_every_bad_one_named(fmt, picks, ending):
    text, good, bad = build(fmt, picks, ending)
    records = parse_records(FORMATS[fmt][0], text, "in.txt")
    puzzles = [r for r in records if not isinstance(r, ParseError)]
    errors = [r for r in records if isinstance(r, ParseError)]
    assert [p.source for p in puzzles] == [f"in.txt:{line}" for line, _ in good], errors
    for p, (_, tokens) in zip(puzzles, good):
        np.testing.assert_array_equal(p.tokens, tokens)
    assert [(e.source, e.line) for e in errors] == [("in.txt", line) for line in bad], [str(e) for e in errors]


def test_maze_csv_rows_are_records():
    flat = ["".join(M5.render(p.tokens).split("\n")) for p in MAZES[:3]]
    sols = ["".join(M5.render(p.label).split("\n")) for p in MAZES[:3]]
    rows = ["source,q,a,rating", f"a,{flat[0]},{sols[0]},1", f"b,{flat[1]},{sols[1][:-1]},1", "c,x\r,y,1",
            f"d,{flat[2]},{sols[2]},1", f"e,{flat[0]}"]
    records = parse_records(M5, "\n".join(rows), "m.csv")
    assert [r.line if isinstance(r, ParseError) else r.source for r in records] == [
        "m.csv:2", 3, 4, 5, "m.csv:6", 7]  # the stray CR ends line 4: "c,x" and ",y,1" are two bad rows


@pytest.mark.parametrize("task", [S4, M5, get_task("arc"), TOKENS], ids=["sudoku", "maze", "arc", "tokens"])
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_give_records_never_a_traceback(task, data):
    import io

    from hrm.tasks.inputs import read_inputs

    got = read_inputs(task, ["-"], stdin=io.TextIOWrapper(io.BytesIO(data)))
    n_lines = data.count(b"\n") + data.count(b"\r") + 1
    for e in got.errors:
        assert isinstance(e, ParseError) and e.source == "<stdin>" and "\n" not in str(e)
        assert e.line is None or 1 <= e.line <= n_lines


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400))
def test_arc_task_inputs_any_bytes_never_a_traceback(data):
    """hrm-run on an ARC deployment reads tasks with hrm.tasks.arc_inputs: stdin bytes of any kind are
    errors naming <stdin>, never a decode error."""
    import io

    from hrm.tasks.arc_inputs import read_arc_inputs

    got = read_arc_inputs(["-"], stdin=io.TextIOWrapper(io.BytesIO(data)))
    assert all(isinstance(e, ParseError) and e.source == "<stdin>" and "\n" not in str(e) for e in got.errors)
    assert got.records or got.errors


def test_arc_task_inputs_deep_json_and_odd_items(tmp_path):
    from hrm.tasks.arc_inputs import read_arc_inputs

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    good = tmp_path / "good.json"
    good.write_text('{"train": [], "test": [{"input": [[1, 2]]}]}')
    got = read_arc_inputs([str(deep), "x" * 5000, str(good)])
    assert [r.task_id for r in got.records] == ["good"]
    assert [(e.source, e.message) for e in got.errors] == [
        (str(deep), "input nested too deeply to parse"), ("x" * 80, "cannot read: File name too long")]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_parsing_time_is_linear(fmt):
    """Eight times the records (a tenth of them bad) take about eight times as long: a ratio, not a clock."""
    task = FORMATS[fmt][0]
    rng = np.random.default_rng(0)
    picks = [(bool(rng.random() > 0.1), int(rng.integers(20)), int(rng.integers(50)), int(rng.integers(1, 16)), False)
             for _ in range(4000)]
    small, _, _ = build(fmt, picks[:500], "\n")
    large, _, bad = build(fmt, picks, "\n")
    assert len(bad) > 300  # more bad records than the old parser's silent cap of 200

    def best(text: str) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            parse_records(task, text, "x")
            times.append(time.perf_counter() - t0)
        return min(times)

    best(small)  # warm up
    ratio = best(large) / best(small)
    assert ratio < 20, f"8x the input took {ratio:.1f}x as long (linear: ~8x; quadratic: ~64x)"
