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
    Task,
    Verdict,
    highlight_mask,
    split_lines,
)
from hrm.tasks.sudoku_gen import Difficulty, difficulty_bucket, generate_one
from hrm.tasks.sudoku_solver import rate

__all__ = ["SudokuTask", "find_conflicts"]

_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
_SEPARATOR_CHARS = set("-+=|_ \t")
_DIM_ANSI = "\x1b[2m"


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
        n, cells = self.size, self.seq_len
        puzzles: list[Puzzle] = []
        grid_rows: list[list[int]] = []
        grid_start = 0
        csv_cols: tuple[int, int] | None = None  # (q, a) column indices from a header

        def finish_grid() -> None:
            flat = [x for row in grid_rows for x in row]
            puzzles.append(self._make(flat, None, source, grid_start, {"format": "grid"}))
            grid_rows.clear()

        for lineno, raw in enumerate(split_lines(text), start=1):
            content = raw.split("#", 1)[0]
            stripped = content.strip()
            if not stripped:
                if grid_rows and not raw.strip():
                    raise ParseError(
                        source, lineno,
                        f"blank line inside the grid that starts at line {grid_start}: "
                        f"it has {len(grid_rows)} rows, expected {n}",
                    )
                continue
            if "," in stripped:
                if grid_rows:
                    raise ParseError(source, lineno, f"CSV row inside the grid that starts at line {grid_start}")
                fields = next(csv.reader([stripped]))
                lowered = [f.strip().lower() for f in fields]
                if "q" in lowered and "a" in lowered:
                    csv_cols = (lowered.index("q"), lowered.index("a"))
                    continue
                puzzles.append(self._csv_row(fields, csv_cols, source, lineno, raw))
                continue
            if set(stripped) <= _SEPARATOR_CHARS and set(stripped) & set("-+=_"):
                continue  # a separator drawn between bands (or a frame)
            parts = stripped.split()
            if len(parts) == 2 and len(parts[0]) == cells and len(parts[1]) == cells and not grid_rows:
                start_q = raw.index(parts[0])
                start_a = raw.index(parts[1], start_q + len(parts[0]))
                q = self._cells(parts[0], source, lineno, start_q)
                a = self._cells(parts[1], source, lineno, start_a)
                puzzles.append(self._make(q, a, source, lineno, {"format": "line"}))
                continue
            row = self._cells(content, source, lineno, 0)
            if grid_rows:
                if len(row) != n:
                    raise ParseError(
                        source, lineno,
                        f"grid row has {len(row)} cells, expected {n} (grid starts at line {grid_start})",
                    )
                grid_rows.append(row)
                if len(grid_rows) == n:
                    finish_grid()
            elif len(row) == cells:
                puzzles.append(self._make(row, None, source, lineno, {"format": "line"}))
            elif len(row) == n:
                grid_start = lineno
                grid_rows.append(row)
            else:
                raise ParseError(
                    source, lineno,
                    f"expected {cells} cells, found {len(row)} "
                    f"(a puzzle is one line of {cells} cells or {n} lines of {n})",
                )
        if grid_rows:
            raise ParseError(
                source, grid_start,
                f"grid that starts here has {len(grid_rows)} rows, expected {n} (end of input)",
            )
        return puzzles

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
                    f"bad character {ch!r} at column {offset + i + 1} "
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
