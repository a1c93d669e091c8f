"""Sudoku (9x9, and 4x4 for tiny models): parsing, checking, rendering, generation.

Token map (official ``build_sudoku_dataset.py``): PAD 0, blank 1, digit ``d`` -> ``d + 1``; 9x9 has
vocab 11 and seq_len 81; 4x4 uses the same scheme (vocab 6, seq_len 16). Decoded grids are int64
``[n, n]`` of digits with 0 = blank and -1 = a token that is no digit (PAD or out of range).

Accepted text formats (autodetected per line; ``#`` starts a comment, comment-only lines are
skipped, blank lines are skipped between puzzles):

* one puzzle per line: ``n*n`` cells, blanks as ``.`` or ``0``, spaces and ``|`` ignored;
  optionally followed by whitespace and the ``n*n``-digit solution (gives a label);
* the official CSV, ``source,q,a,rating`` header (or header-less 4-field / 2-field ``q,a`` rows):
  ``a`` is the label;
* grids of ``n`` lines of ``n`` cells as people type them (``5 3 . | . 7 . | . . .``), with
  separator lines made of ``-``, ``+``, ``=``, ``|``; a blank line inside a grid is an error
  (it almost always means a missing row).

Every line, CSV row and grid is a record (:meth:`SudokuTask.parse_records`): one puzzle or one error at
the line the record starts on. A line of ``n`` cells starts a grid (so does a broken line directly followed
by grid rows); a grid ends after ``n`` rows, at a blank line (an error), or before a line that starts
another record (a whole puzzle or a CSV row), which is then read as that record.
"""

from __future__ import annotations

import csv
import math
from typing import Any

import numpy as np

from hrm.errors import ParseError
from hrm.tasks.base import (
    ANSI_RESET,
    HIGHLIGHT_ANSI,
    Puzzle,
    Record,
    Task,
    Verdict,
    describe_char,
    at_record,
    highlight_mask,
    raise_first,
    split_lines,
)
from hrm.tasks.sudoku_gen import Difficulty, difficulty_bucket, generate_one
from hrm.tasks.sudoku_solver import rate

__all__ = ["SudokuTask", "find_conflicts"]

_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
_SEPARATOR_CHARS = set("-+=|_ \t")
_DIM_ANSI = "\x1b[2m"


def _cell_chars(text: str) -> str:
    """The characters of a line that stand for cells (good or bad): all but spaces, tabs and '|'."""
    return "".join(text.split()).replace("|", "")


class _Grid:
    """A grid being read: where it starts, its rows so far, the first error in it (one per grid)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.rows: list[list[int] | ParseError] = []
        self.error: ParseError | None = None

    def add(self, row: list[int] | ParseError) -> None:
        self.rows.append(row)
        if isinstance(row, ParseError) and self.error is None:
            self.error = at_record(row, self.start, "grid")


def find_conflicts(grid: np.ndarray, box: int) -> list[str]:
    """Human-readable rule violations of a digit grid (0 and negatives are ignored).

    Units are named 1-based: rows top to bottom, columns left to right, boxes left to right then top
    to bottom ("row 3 has two 7s", "column 5 has two 2s", "box 2 has three 9s").
    """
    g = np.asarray(grid)
    n = box * box
    out: list[str] = []
    units: list[tuple[str, np.ndarray]] = []
    units += [(f"row {r + 1}", g[r, :]) for r in range(n)]
    units += [(f"column {c + 1}", g[:, c]) for c in range(n)]
    units += [
        (f"box {br * box + bc + 1}", g[br * box:(br + 1) * box, bc * box:(bc + 1) * box].reshape(-1))
        for br in range(box)
        for bc in range(box)
    ]
    for name, vals in units:
        counts = np.bincount(vals[vals > 0], minlength=n + 1)
        for d in np.nonzero(counts > 1)[0]:
            k = int(counts[d])
            out.append(f"{name} has {_COUNT_WORDS.get(k, str(k))} {d}s")
    return out


class SudokuTask(Task):
    """Sudoku of side ``size`` (9 or 4). See the module docstring for formats and tokens."""

    name = "sudoku"

    def __init__(self, size: int = 9) -> None:
        size = int(size)
        if size not in (4, 9):
            raise ValueError(f"Sudoku size must be 9 or 4, got {size}")
        self.size = size
        self.box = math.isqrt(size)
        self.grid_shape = (size, size)
        self.seq_len = size * size
        self.vocab_size = size + 2

    # -- description -----------------------------------------------------------------------------
    def token_map(self) -> dict[str, int]:
        m = {"<pad>": 0, ".": 1}
        m.update({str(d): d + 1 for d in range(1, self.size + 1)})
        return m

    def params(self) -> dict[str, Any]:
        return {"size": self.size}

    # -- tokens <-> grids --------------------------------------------------------------------------
    def encode(self, grid: Any) -> np.ndarray:
        """Digit grid (0 = blank, any shape with n*n cells) -> int32 tokens [n*n]."""
        g = np.asarray(grid).reshape(-1)
        if g.size != self.seq_len or (g.size and not np.issubdtype(g.dtype, np.integer)):
            raise ValueError(f"expected {self.seq_len} integer cells, got {g.size} of {g.dtype}")
        if g.min(initial=0) < 0 or g.max(initial=0) > self.size:
            raise ValueError(f"digits must be 0..{self.size}")
        return (g + 1).astype(np.int32)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        t = self._tokens(tokens)
        d = t - 1
        d[(t < 1) | (t > self.size + 1)] = -1
        return d.reshape(self.grid_shape)

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, text: str, source: str = "<string>") -> list[Puzzle]:
        return raise_first(self.parse_records(text, source))

    def parse_records(self, text: str, source: str = "<string>") -> list[Record]:
        """One pass over the lines; each record (a line, a CSV row, a grid of ``n`` rows) yields its
        puzzle or its error. A grid that breaks (a bad row, a blank line, the end of input) is one
        error; a line that starts another kind of record (a whole puzzle, a CSV row) ends the grid
        before it and is read as that record, so a truncated line never swallows its neighbours."""
        n = self.size
        out: list[Record] = []
        grid: _Grid | None = None
        csv_cols: tuple[int, int] | None = None  # (q, a) column indices from a header
        lines = split_lines(text)
        i = 0
        while i < len(lines):
            lineno, raw = i + 1, lines[i]
            content = raw.split("#", 1)[0]
            stripped = content.strip()
            kind = self._kind(stripped)
            if grid is not None:
                if kind == "blank":
                    if not raw.strip():  # a truly blank line (comment lines inside a grid are fine)
                        out.append(grid.error or ParseError(
                            source, grid.start, f"grid that starts here has {len(grid.rows)} rows, expected {n} "
                                                f"(blank line at line {lineno})"))
                        grid = None
                    i += 1
                    continue
                if kind in ("csv", "pair", "puzzle"):  # another record starts here: the grid ends short
                    out.append(grid.error or ParseError(
                        source, grid.start, f"grid that starts here has {len(grid.rows)} rows, expected {n} "
                                            f"(line {lineno} is a whole puzzle, not a grid row)"
                                            if len(grid.rows) > 1 else
                                            f"expected {self.seq_len} cells, found {len(grid.rows[0])} (a puzzle "
                                            f"is one line of {self.seq_len} cells or {n} lines of {n})"))
                    grid = None
                    continue  # read this line again as the record it starts
                if kind != "separator":
                    grid.add(self._grid_row(content, source, lineno, grid.start))
                    if len(grid.rows) == n:
                        out.append(grid.error or self._record(
                            lambda g=grid: self._make([x for row in g.rows for x in row], None, source, g.start,
                                                      {"format": "grid"})))
                        grid = None
                i += 1
                continue
            i += 1
            if kind in ("blank", "separator"):
                continue
            if kind == "csv":
                try:
                    fields = next(csv.reader([stripped]))
                except csv.Error as exc:
                    out.append(ParseError(source, lineno, f"unreadable CSV row ({exc})"))
                    continue
                lowered = [f.strip().lower() for f in fields]
                if "q" in lowered and "a" in lowered:
                    csv_cols = (lowered.index("q"), lowered.index("a"))
                    continue
                out.append(self._record(lambda: self._csv_row(fields, csv_cols, source, lineno, raw)))
            elif kind == "pair":
                out.append(self._record(lambda: self._pair(stripped, raw, source, lineno)))
            elif kind == "puzzle":
                out.append(self._record(lambda: self._make(self._cells(content, source, lineno, 0), None, source,
                                                           lineno, {"format": "line"})))
            elif kind == "row" or (kind == "other" and i < len(lines) and self._kind(
                    lines[i].split("#", 1)[0].strip()) == "row"):  # a grid whose first row is broken
                grid = _Grid(lineno)
                grid.add(self._grid_row(content, source, lineno, lineno))
            else:
                out.append(self._record(lambda: self._wrong_count(content, source, lineno)))
        if grid is not None:
            out.append(grid.error or ParseError(
                source, grid.start, f"grid that starts here has {len(grid.rows)} rows, expected {n} (end of input)"))
        return out

    def _kind(self, stripped: str) -> str:
        """What a (comment-free, stripped) line is: blank, separator, csv, pair (puzzle + solution),
        puzzle (one line of n*n cells), row (n cells: part of a grid) or other (a broken record).
        Cells are counted before they are validated, so a bad character keeps a line's kind."""
        if not stripped:
            return "blank"
        if "," in stripped:
            return "csv"
        chars = set(stripped)
        if chars <= _SEPARATOR_CHARS and chars & set("-+=_"):
            return "separator"
        parts = stripped.split()
        if len(parts) == 2 and len(parts[0]) == self.seq_len and len(parts[1]) == self.seq_len:
            return "pair"
        cells = len(_cell_chars(stripped))
        if cells == self.seq_len:
            return "puzzle"
        return "row" if cells == self.size else "other"

    @staticmethod
    def _record(build) -> Record:
        try:
            return build()
        except ParseError as exc:
            return exc

    def _pair(self, stripped: str, raw: str, source: str, lineno: int) -> Puzzle:
        q_text, a_text = stripped.split()
        start_q = raw.index(q_text)
        start_a = raw.index(a_text, start_q + len(q_text))
        q = self._cells(q_text, source, lineno, start_q)
        a = self._cells(a_text, source, lineno, start_a)
        return self._make(q, a, source, lineno, {"format": "line"})

    def _wrong_count(self, content: str, source: str, lineno: int) -> Puzzle:
        """A line that is neither a puzzle nor a grid row: the count, and the first bad character if any."""
        found = len(_cell_chars(content))
        try:
            self._cells(content, source, lineno, 0)
            also = ""
        except ParseError as exc:
            also = f"; {exc.message.split(' (expected')[0]}"
        raise ParseError(source, lineno, f"expected {self.seq_len} cells, found {found} (a puzzle is one line "
                                         f"of {self.seq_len} cells or {self.size} lines of {self.size}){also}")

    def _grid_row(self, content: str, source: str, lineno: int, start: int) -> list[int] | ParseError:
        try:
            row = self._cells(content, source, lineno, 0)
        except ParseError as exc:
            return exc
        if len(row) != self.size:
            return ParseError(source, lineno, f"grid row has {len(row)} cells, expected {self.size}")
        return row

    def _cells(self, text: str, source: str, lineno: int, offset: int) -> list[int]:
        """Cells of one line: digits 1..n, '.'/'0' blank; spaces and '|' ignored."""
        out: list[int] = []
        top = str(self.size)
        for i, ch in enumerate(text):
            if ch in " \t|":
                continue
            if ch == "." or ch == "0":
                out.append(0)
            elif "1" <= ch <= top and len(ch) == 1:
                out.append(ord(ch) - 48)
            else:
                raise ParseError(
                    source, lineno,
                    f"bad character {describe_char(ch)} at column {offset + i + 1} "
                    f"(expected digits 1-{self.size}, '.' or '0' for blanks)",
                )
        return out

    def _csv_row(
        self, fields: list[str], cols: tuple[int, int] | None, source: str, lineno: int, raw: str
    ) -> Puzzle:
        meta: dict[str, Any] = {"format": "csv"}
        if cols is not None:
            qi, ai = cols
            if max(qi, ai) >= len(fields):
                raise ParseError(source, lineno, f"CSV row has {len(fields)} fields, the header names more")
        elif len(fields) == 4:
            qi, ai = 1, 2
        elif len(fields) == 2:
            qi, ai = 0, 1
        else:
            raise ParseError(
                source, lineno, f"CSV row has {len(fields)} fields, expected 4 (source,q,a,rating) or 2 (q,a)"
            )
        if len(fields) == 4:
            meta["csv_source"] = fields[0]
            meta["rating"] = fields[3]
        q_text, a_text = fields[qi].strip(), fields[ai].strip()
        for what, t in (("q", q_text), ("a", a_text)):
            if len(t) != self.seq_len:
                raise ParseError(source, lineno, f"CSV field {what}: expected {self.seq_len} cells, found {len(t)}")
        q = self._cells(q_text, source, lineno, max(0, raw.find(q_text)))
        a = self._cells(a_text, source, lineno, max(0, raw.find(a_text)))
        return self._make(q, a, source, lineno, meta)

    def _make(self, q: list[int], a: list[int] | None, source: str, lineno: int, meta: dict) -> Puzzle:
        g = np.asarray(q, dtype=np.int64).reshape(self.grid_shape)
        conflicts = find_conflicts(g, self.box)
        if conflicts:
            raise ParseError(source, lineno, f"givens conflict: {conflicts[0]}")
        label = None
        if a is not None:
            s = np.asarray(a, dtype=np.int64).reshape(self.grid_shape)
            blanks = int((s == 0).sum())
            if blanks:
                raise ParseError(source, lineno, f"solution has {blanks} blank cells")
            changed = np.argwhere((g > 0) & (g != s))
            if len(changed):
                r, c = changed[0]
                raise ParseError(
                    source, lineno,
                    f"solution changes the given at row {r + 1}, column {c + 1} ({g[r, c]} -> {s[r, c]})",
                )
            conflicts = find_conflicts(s, self.box)
            if conflicts:
                raise ParseError(source, lineno, f"solution is not valid: {conflicts[0]}")
            label = self.encode(s)
        return Puzzle(self.encode(g), label, f"{source}:{lineno}", 0, meta)

    # -- judging ---------------------------------------------------------------------------------
    def check(self, puzzle: Puzzle, answer_tokens: np.ndarray) -> Verdict:
        """Valid = complete, legal and keeps every given; correct = equals the label (if any).

        The reason lists up to three problems, most basic first: non-digit tokens, blanks, changed
        givens, then duplicate digits by row/column/box.
        """
        answer = self._tokens(answer_tokens, "answer")
        ans = self.decode(answer)
        givens = self.decode(puzzle.tokens)
        problems: list[str] = []
        bad = np.argwhere(ans < 0)
        if len(bad):
            r, c = bad[0]
            problems.append(
                f"{len(bad)} cells hold no digit, first at row {r + 1}, column {c + 1} "
                f"(token {int(answer[r * self.size + c])})"
            )
        blank = np.argwhere(ans == 0)
        if len(blank):
            r, c = blank[0]
            problems.append(f"{len(blank)} cells left blank, first at row {r + 1}, column {c + 1}")
        changed = np.argwhere((givens > 0) & (ans != givens))
        if len(changed):
            r, c = changed[0]
            problems.append(
                f"{len(changed)} givens changed, first at row {r + 1}, column {c + 1} "
                f"(given {givens[r, c]}, answer {ans[r, c] if ans[r, c] >= 0 else '?'})"
            )
        problems += find_conflicts(ans, self.box)
        valid = not problems
        correct = None if puzzle.label is None else bool(np.array_equal(answer, puzzle.label))
        if not valid:
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            reason = "; ".join(problems[:3]) + more
        elif correct is None:
            reason = "valid solution"
        elif correct:
            reason = "solved"
        else:
            diff = int((answer != puzzle.label).sum())
            reason = f"valid solution, but it differs from the label in {diff} cells (puzzle not unique)"
        return Verdict(valid, correct, reason)

    # -- display ---------------------------------------------------------------------------------
    def render(self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False) -> str:
        """Grid with ``|`` between boxes and ``-+-`` lines between bands; ``.`` blank, ``?`` non-digit.

        Highlighted cells: ``*`` after the digit (plain) or bold black-on-yellow (``color=True``).
        """
        g = self.decode(tokens)
        mask = highlight_mask(highlight, self.seq_len, self.grid_shape)
        b = self.box
        lines: list[str] = []
        plain_row = ""
        for r in range(self.size):
            groups = []
            for s in range(b):
                parts = []
                for c in range(s * b, (s + 1) * b):
                    v = g[r, c]
                    ch = str(v) if v > 0 else ("." if v == 0 else "?")
                    if color:
                        if mask[r, c]:
                            parts.append(f"{HIGHLIGHT_ANSI}{ch}{ANSI_RESET} ")
                        elif v <= 0:
                            parts.append(f"{_DIM_ANSI}{ch}{ANSI_RESET} ")
                        else:
                            parts.append(ch + " ")
                    else:
                        parts.append(ch + ("*" if mask[r, c] else " "))
                groups.append("".join(parts))
            if r == 0:
                plain_row = "| ".join("x " * b for _ in range(b)).rstrip()
            if r and r % b == 0:
                lines.append("".join("+" if ch == "|" else "-" for ch in plain_row))
            lines.append("| ".join(groups).rstrip(" "))
        return "\n".join(lines)

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self, n: int, rng: np.random.Generator, difficulty: Difficulty = "any", **kw: Any
    ) -> list[Puzzle]:
        """``n`` unique-solution puzzles with labels; ``difficulty`` as in :mod:`hrm.tasks.sudoku_gen`.

        ``meta`` holds ``guesses``, ``backtracks`` and ``bucket``. Extra keywords go to
        :func:`hrm.tasks.sudoku_gen.generate_one` (``max_tries``, ``climb_steps``).
        For many puzzles use :func:`hrm.tasks.sudoku_gen.generate_dataset` (parallel).
        """
        out = []
        for i in range(n):
            p, s, g, b = generate_one(rng, difficulty, self.size, **kw)
            meta = {"guesses": g, "backtracks": b, "bucket": difficulty_bucket(g)}
            out.append(Puzzle(self.encode(p), self.encode(s), f"<generated>:{i + 1}", 0, meta))
        return out

    def rate(self, puzzle: Puzzle) -> dict[str, int]:
        """Solver counters for a puzzle: ``{"solutions" (capped at 2), "guesses", "backtracks"}``."""
        r = rate(np.clip(self.decode(puzzle.tokens), 0, None))
        return {"solutions": r.solutions, "guesses": r.guesses, "backtracks": r.backtracks}

    def solve(self, puzzle: Puzzle) -> np.ndarray | None:
        """Label tokens for ``puzzle`` found by the exact solver (None if it has no solution)."""
        r = rate(np.clip(self.decode(puzzle.tokens), 0, None), limit=1)
        return None if r.solution is None else self.encode(np.asarray(r.solution))
