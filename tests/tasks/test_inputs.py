"""Command-line inputs: every record is a puzzle or a named error; bytes of any kind never raise."""

from __future__ import annotations

import io


from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.inputs import TokenLines, parse_records, read_inputs

S4 = get_task("sudoku", size=4)


def test_line_oriented_file_keeps_good_lines():
    text = "1... .... .... ....\n1x.. .... .... ....\n11.. .... .... ....\n.1.. .... .... ....\n"
    records = S4.parse_records(text, "f.txt")
    assert [(type(r).__name__, r.source if not isinstance(r, ParseError) else r.line) for r in records] == [
        ("Puzzle", "f.txt:1"), ("ParseError", 2), ("ParseError", 3), ("Puzzle", "f.txt:4")]


def test_truncated_line_costs_only_itself():
    """The issue's example: a line cut to n cells looks like a grid row; the next whole puzzle ends it."""
    good = ["1... .... .... ....", ".1.. .... .... ....", "..1. .... .... ....", "...1 .... .... ...."]
    text = "\n".join([good[0], good[1], "1...", good[2], good[3]]) + "\n"
    records = S4.parse_records(text, "f.txt")
    assert [r.line if isinstance(r, ParseError) else r.source for r in records] == [
        "f.txt:1", "f.txt:2", 3, "f.txt:4", "f.txt:5"]
    assert "expected 16 cells, found 4" in records[2].message


def test_broken_grid_is_one_error_and_other_puzzles_survive():
    text = "1 . | . .\n. . | . .\n\n. . | . 4\n\n1... .... .... ....\n"
    records = S4.parse_records(text, "g.txt")
    errors = [r for r in records if isinstance(r, ParseError)]
    assert [r.source for r in records if not isinstance(r, ParseError)] == ["g.txt:6"]
    assert [e.line for e in errors] == [1, 4]  # the 2-row grid and the 1-row one, each at its first line
    assert "grid that starts here has 2 rows, expected 4 (blank line at line 3)" in errors[0].message


def test_wrong_size_file_names_every_line():
    s9 = "..53.....8......2..7..1.5..4....53...1..7...6..32...8..6.5....9..4....3......97.."
    records = S4.parse_records("\n".join([s9] * 5), "nine.txt")
    assert [r.line for r in records] == [1, 2, 3, 4, 5]
    assert all("expected 16 cells, found 81" in r.message for r in records)


def test_broken_json_fails_once():
    arc = get_task("arc")
    (err,) = parse_records(arc, '{"train": [],\n "test": [\n', "t.json")
    assert isinstance(err, ParseError) and err.line is not None


def test_deeply_nested_json_is_one_error():
    arc = get_task("arc")
    (err,) = parse_records(arc, "[" * 100_000 + "]" * 100_000, "deep.json")
    assert isinstance(err, ParseError) and "nested too deeply" in str(err)


def test_read_inputs_kinds(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("1... .... .... ....\n")
    (tmp_path / "dir").mkdir()
    got = read_inputs(S4, [str(f), "-", "..2. .... .... ....", str(tmp_path / "missing.csv"), str(tmp_path / "dir")],
                      stdin=io.StringIO(".3.. .... .... ....\n"))
    assert [p.source for p in got.puzzles] == [f"{f}:1", "<stdin>:1", "<arg 3>:1"]
    assert [e.source for e in got.errors] == [str(tmp_path / "missing.csv"), str(tmp_path / "dir")]


def test_binary_stdin_and_cr_only_files(tmp_path):
    stdin = io.TextIOWrapper(io.BytesIO(b"\x00\xff\xfe\x80\n.3.. .... .... ....\n\x89PNG\r\n"), encoding="utf-8")
    got = read_inputs(S4, ["-"], stdin=stdin)
    assert [p.source for p in got.puzzles] == ["<stdin>:2"]
    assert [(e.line, e.message.split(" at ")[0]) for e in got.errors] == [
        (1, "bad character '\\x00'"), (3, "bad character byte 0x89 (not UTF-8)")]
    cr = tmp_path / "mac.txt"
    cr.write_bytes(b"1... .... .... ....\r.1.. .... .... ....\r")
    assert [p.source for p in read_inputs(S4, [str(cr)]).puzzles] == [f"{cr}:1", f"{cr}:2"]


def test_token_lines_for_task_less_deployments():
    t = TokenLines(4, 6)
    ps = t.parse("1 2 3 4\n\n5,5,0,1 # comment\n", "x")
    assert [p.tokens.tolist() for p in ps] == [[1, 2, 3, 4], [5, 5, 0, 1]]
    records = t.parse_records("1 2 3\n1 2 3 9\n1 2 3 1.7\n8589934594 1 1 1\n1_0 1 1 1\n0 0 0 0\n", "x")
    assert [r.line if isinstance(r, ParseError) else r.source for r in records] == [1, 2, 3, 4, 5, "x:6"]
    assert [r.message for r in records[:5]] == [
        "expected 4 tokens, found 3", "token 9 outside the vocabulary [0, 6)", "expected integer tokens, found '1.7'",
        "token 8589934594 outside the vocabulary [0, 6)", "expected integer tokens, found '1_0'"]
    assert t.render([1, 2, 3, 4], highlight=[False, True, False, False]) == "1 2* 3 4"


def test_arc_challenges_go_per_task():
    """ARC's own parse_records (contract C2) is what read_inputs uses: a bad task costs only itself."""
    arc = get_task("arc")
    good = {"train": [], "test": [{"input": [[1]]}, {"input": [[2, 3]]}]}
    text = '{"a": ' + str(good).replace("'", '"') + ',\n "b": {"train": [], "test": [{"input": [[1], [2, 3]]}]},\n' \
           ' "c": ' + str(good).replace("'", '"') + '}'
    got = read_inputs(arc, [text])
    assert [p.meta["task_id"] for p in got.puzzles] == ["a", "a", "c", "c"]
    assert len(got.errors) == 1 and got.errors[0].line == 2
    assert "task b: test[0].input: row 2 has 2 cells" in got.errors[0].message
