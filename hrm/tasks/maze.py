"""Maze (square, 4x4 to 30x30): find a shortest path from ``S`` to ``G``.

Token map (official ``build_maze_dataset.py``, charset ``"# SGo"``): PAD 0, ``#`` wall 1, `` `` free
2, ``S`` start 3, ``G`` goal 4, ``o`` path 5; vocab 6, seq_len ``size*size`` (900 for 30x30).
The puzzle has no ``o``; the label is the puzzle with a shortest path drawn in ``o`` (S and G stay).
Decoded grids are ``<U1`` character arrays; a token that is no symbol decodes to ``?``.

Accepted text formats:

* mazes drawn as ``size`` lines of ``size`` characters from ``# SGo``; several mazes one after the
  other, optionally separated by blank lines. ``o`` cells in the input are the path: such an input
  yields the path-free puzzle plus the drawn path as its label. There are no comments (``#`` is a
  wall) and trailing spaces matter (they are free cells): a row that an editor stripped shows up as
  "row has 28 cells, expected 30". Outside a maze, empty lines (and whitespace-only lines that are
  not exactly ``size`` wide) are separators; inside one, an empty line is an error.
* the official CSV (``source,q,a,rating`` header; ``q``/``a`` are ``size*size`` characters).

Every maze (``size`` consecutive lines) and CSV row is a record (:meth:`MazeTask.parse_records`): one
puzzle or one error at its first line. A maze with a bad row is read to its last row, so the next one
starts where it should; a blank line inside a maze ends it. (An all-free first row that lost a character
is whitespace of the wrong width, i.e. a separator: such a maze is reported from its second row.)

Check (see :meth:`MazeTask.check`): walls, S and G unchanged; the ``o`` cells form one connected
4-neighbour route from S to G with no stray cells; and the route is optimal (its length equals the
BFS distance). Coordinates in messages are 1-based ``(row, column)``.
"""

from __future__ import annotations

import csv
from collections import deque
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

__all__ = ["MazeTask", "CHARSET", "bfs_distances", "shortest_path"]

CHARSET = "# SGo"
PAD, WALL, FREE, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
_CHAR_TO_TOKEN = {ch: i + 1 for i, ch in enumerate(CHARSET)}
_TOKEN_TO_CHAR = np.array(["?"] + list(CHARSET), dtype="<U1")
_NAMES = {"S": ("start", "starts"), "G": ("goal", "goals")}
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
_STYLE = {
    "#": "\x1b[100m",  # wall: grey background
    "o": "\x1b[30;42m",  # path: black on green
    "S": "\x1b[1;37;44m",  # start: bold white on blue
    "G": "\x1b[1;37;41m",  # goal: bold white on red
    "?": "\x1b[1;31m",
}


def _neighbours(i: int, size: int) -> list[int]:
    r, c = divmod(i, size)
    out = []
    if r > 0:
        out.append(i - size)
    if r + 1 < size:
        out.append(i + size)
    if c > 0:
        out.append(i - 1)
    if c + 1 < size:
        out.append(i + 1)
    return out


def bfs_distances(passable: np.ndarray, start: int) -> np.ndarray:
    """4-neighbour BFS over a flat-or-square boolean grid; -1 where unreachable. ``start`` is flat."""
    p = np.asarray(passable, bool)
    size = p.shape[0] if p.ndim == 2 else int(round(p.size ** 0.5))
    free = p.reshape(-1).tolist()
    dist = [-1] * len(free)
    dist[start] = 0
    q = deque([start])
    while q:
        i = q.popleft()
        d = dist[i] + 1
        for j in _neighbours(i, size):
            if free[j] and dist[j] < 0:
                dist[j] = d
                q.append(j)
    return np.asarray(dist, dtype=np.int64)


def shortest_path(passable: np.ndarray, start: int, goal: int) -> list[int] | None:
    """Flat cell indices of a shortest path start..goal (inclusive), or None if unreachable.

    Deterministic: walks back from the goal preferring up, down, left, right.
    """
    p = np.asarray(passable, bool)
    size = p.shape[0] if p.ndim == 2 else int(round(p.size ** 0.5))
    dist = bfs_distances(p, start).tolist()
    if dist[goal] < 0:
        return None
    path = [goal]
    i = goal
    while i != start:
        i = next(j for j in _neighbours(i, size) if dist[j] == dist[i] - 1)
        path.append(i)
    return path[::-1]


def _rc(i: int, size: int) -> str:
    r, c = divmod(int(i), size)
    return f"({r + 1}, {c + 1})"


class MazeTask(Task):
    """Square maze of side ``size`` (4..30, default 30). See the module docstring."""

    name = "maze"

    def __init__(self, size: int = 30) -> None:
        size = int(size)
        if not 4 <= size <= 30:
            raise ValueError(f"maze size must be 4..30, got {size}")
        self.size = size
        self.grid_shape = (size, size)
        self.seq_len = size * size
        self.vocab_size = len(CHARSET) + 1

    def token_map(self) -> dict[str, int]:
        return {"<pad>": PAD, **_CHAR_TO_TOKEN}

    def params(self) -> dict[str, Any]:
        return {"size": self.size}

    # -- tokens <-> grids --------------------------------------------------------------------------
    def encode(self, grid: Any) -> np.ndarray:
        """Rows of characters (list of strings or a char array) -> int32 tokens."""
        if isinstance(grid, np.ndarray):
            rows = ["".join(r) for r in np.asarray(grid).reshape(self.grid_shape)]
        else:
            rows = list(grid)
        text = "".join(rows)
        if len(rows) != self.size or len(text) != self.seq_len:
            raise ValueError(f"expected {self.size} rows of {self.size} characters")
        try:
            return np.fromiter((_CHAR_TO_TOKEN[ch] for ch in text), np.int32, self.seq_len)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in {CHARSET!r}") from None

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        t = self._tokens(tokens)
        t = np.where((t >= 0) & (t <= PATH), t, 0)
        return _TOKEN_TO_CHAR[t].reshape(self.grid_shape)

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, text: str, source: str = "<string>") -> list[Puzzle]:
        return raise_first(self.parse_records(text, source))

    def parse_records(self, text: str, source: str = "<string>") -> list[Record]:
        """One pass; each maze (``size`` consecutive lines) or CSV row yields its puzzle or its error.

        A maze with a bad row is still read to its last row, so the next maze starts where it should;
        a blank line inside a maze ends it (one error) and the next non-separator line starts a new one.
        """
        lines = split_lines(text)
        first = next((ln for ln in lines if ln.strip()), "")
        if first.strip().lower().replace(" ", "").startswith("source,q,a"):
            return self._csv_records(lines, source)
        n = self.size
        out: list[Record] = []
        rows: list[str] = []
        error: ParseError | None = None
        start = 0
        for lineno, line in enumerate(lines, start=1):
            if not rows and not line.strip() and len(line) != n:
                continue  # a separator (an all-free row exactly `size` wide starts a maze)
            if rows and not line:
                out.append(error or ParseError(
                    source, start,
                    f"the maze that starts here has {len(rows)} rows, expected {n} (blank line at line {lineno}; "
                    f"mazes are square)"))
                rows, error = [], None
                continue
            if not rows:
                start = lineno
            if error is None:
                error = self._row_problem(line, source, lineno, f"expected {n} (maze size {n})")
            rows.append(line)
            if len(rows) == n:
                if error is None:
                    try:
                        out.append(self._make(rows, source, start, list(range(start, start + n))))
                    except ParseError as exc:
                        error = exc
                if error is not None:
                    out.append(at_record(error, start, "maze"))
                rows, error = [], None
        if rows:
            out.append(at_record(error, start, "maze") if error else ParseError(
                source, start, f"the maze that starts here has {len(rows)} rows, expected {n} (end of input)"))
        return out

    def _row_problem(self, row: str, source: str, lineno: int, expect: str | None, col0: int = 0) -> ParseError | None:
        try:
            self._check_row(row, source, lineno, expect, col0)
        except ParseError as exc:
            return exc
        return None

    def _check_row(self, row: str, source: str, lineno: int, expect: str | None, col0: int = 0) -> None:
        """Characters must be from the charset; length must be ``size`` unless ``expect`` is None."""
        for i, ch in enumerate(row):
            if ch not in _CHAR_TO_TOKEN:
                raise ParseError(
                    source, lineno,
                    f"bad character {describe_char(ch)} at column {col0 + i + 1} (allowed: '#', ' ', 'S', 'G', 'o')",
                )
        if expect is not None and len(row) != self.size:
            raise ParseError(source, lineno, f"row has {len(row)} cells, {expect}")

    def _csv_records(self, lines: list[str], source: str) -> list[Record]:
        out: list[Record] = []
        header_seen = False
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if not header_seen:
                header_seen = True
                continue
            try:
                out.append(self._csv_row(line, source, lineno))
            except ParseError as exc:
                out.append(exc)
        return out

    def _csv_row(self, line: str, source: str, lineno: int) -> Puzzle:
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            raise ParseError(source, lineno, f"unreadable CSV row ({exc})") from None
        if len(fields) != 4:
            raise ParseError(source, lineno, f"CSV row has {len(fields)} fields, expected 4 (source,q,a,rating)")
        src, q, a, rating = fields
        for what, s in (("q", q), ("a", a)):
            if len(s) != self.seq_len:
                raise ParseError(source, lineno, f"CSV field {what}: expected {self.seq_len} cells, found {len(s)}")
            self._check_row(s, source, lineno, None, col0=max(0, line.find(s)))
        if "o" in q:
            raise ParseError(source, lineno, "CSV field q contains path cells 'o'")
        rows = [q[i:i + self.size] for i in range(0, self.seq_len, self.size)]
        p = self._make(rows, source, lineno, None)
        label = self.encode([a[i:i + self.size] for i in range(0, self.seq_len, self.size)])
        if not np.array_equal(np.where(label == PATH, FREE, label), p.tokens):
            diff = int(np.argmax(np.where(label == PATH, FREE, label) != p.tokens))
            raise ParseError(source, lineno, f"CSV field a differs from q at {_rc(diff, self.size)}, not a path cell")
        problem = self._path_problem(label)
        if problem:
            raise ParseError(source, lineno, f"CSV field a: the path (o) is broken: {problem}")
        meta = {"format": "csv", "csv_source": src, "rating": rating}
        return Puzzle(p.tokens, label, p.source, 0, meta)

    def _make(self, rows: list[str], source: str, lineno: int, row_lines: list[int] | None) -> Puzzle:
        """Validate one maze: exactly one S and one G; an ``o`` path must connect them.

        ``row_lines`` are the file lines of the rows (None for a one-line CSV field: positions are
        then named by cell).
        """
        n = self.size
        for ch in "SG":
            where = [(r, c) for r, row in enumerate(rows) for c, x in enumerate(row) if x == ch]
            name, plural = _NAMES[ch]
            if not where:
                raise ParseError(source, lineno, f"no {name} ({ch}) in the maze that starts here")
            if len(where) > 1:
                k = _COUNT_WORDS.get(len(where), str(len(where)))
                if row_lines is None:
                    at = [_rc(r * n + c, n) for r, c in where]
                    bad_line = lineno
                else:
                    at = [f"line {row_lines[r]}" for r, _ in where]
                    bad_line = row_lines[where[1][0]]
                joined = f"{at[0]} and {at[1]}" if len(at) == 2 else ", ".join(at[:-1]) + f" and {at[-1]}"
                raise ParseError(source, bad_line, f"{k} {plural} ({ch}) at {joined}")
        grid = self.encode(rows)
        label = None
        if (grid == PATH).any():
            problem = self._path_problem(grid)
            if problem:
                raise ParseError(source, lineno, f"the drawn path (o) is broken: {problem}")
            label = grid
            grid = np.where(grid == PATH, FREE, grid).astype(np.int32)
        return Puzzle(grid, label, f"{source}:{lineno}", 0, {"format": "grid"})

    # -- judging ---------------------------------------------------------------------------------
    def _path_problem(self, answer: np.ndarray) -> str | None:
        """Connectivity of the ``o`` cells of a grid holding one S and one G (None when fine)."""
        n = self.size
        a = answer.tolist()
        s, g = a.index(START), a.index(GOAL)
        on = [x == PATH for x in a]
        on[g] = True
        dist = bfs_distances(np.asarray(on), s).tolist()
        route = dist[g]
        if route < 0:
            reached = [i for i, d in enumerate(dist) if d > 0 and a[i] == PATH]
            if not reached:
                return f"the path does not leave S at {_rc(s, n)}"
            far = max(reached, key=lambda i: dist[i])
            return f"path breaks at {_rc(far, n)}"
        on[s] = True
        from_g = bfs_distances(np.asarray(on), g).tolist()
        stray = [i for i, x in enumerate(a) if x == PATH and not (dist[i] >= 0 and dist[i] + from_g[i] == route)]
        if stray:
            return f"{len(stray)} path cells off the route from S to G, first at {_rc(stray[0], n)}"
        cells = sum(1 for x in a if x == PATH)
        if cells != route - 1:  # parallel routes of equal length
            return f"the path has {cells} cells but the route from S to G needs {route - 1} (it branches)"
        return None

    def check(self, puzzle: Puzzle, answer_tokens: np.ndarray) -> Verdict:
        """Valid = fixed cells unchanged + connected + no stray cells + optimal; correct = equals label.

        Reasons name the first problem found, in that order (e.g. "wall at (3, 4) changed to 'o'",
        "path breaks at (4, 7)", "path length 31, shortest is 29").
        """
        n = self.size
        ans = self._tokens(answer_tokens, "answer")
        puz = np.asarray(puzzle.tokens, dtype=np.int64)
        correct = None if puzzle.label is None else bool(np.array_equal(ans, puzzle.label))

        def invalid(msg: str) -> Verdict:
            return Verdict(False, False if correct is not None else None, msg)

        bad = np.nonzero((ans < WALL) | (ans > PATH))[0]
        if bad.size:
            i = int(bad[0])
            return invalid(f"{bad.size} cells hold no maze symbol, first at {_rc(i, n)} (token {int(ans[i])})")
        fixed = np.nonzero((puz != FREE) & (ans != puz))[0]
        if fixed.size:
            i = int(fixed[0])
            what = {WALL: "wall", START: "start S", GOAL: "goal G"}.get(int(puz[i]), "cell")
            return invalid(
                f"{what} at {_rc(i, n)} changed to {CHARSET[int(ans[i]) - 1]!r}"
                + (f" ({fixed.size} fixed cells changed)" if fixed.size > 1 else "")
            )
        added = np.nonzero((puz == FREE) & (ans != FREE) & (ans != PATH))[0]
        if added.size:
            i = int(added[0])
            return invalid(f"free cell at {_rc(i, n)} changed to {CHARSET[int(ans[i]) - 1]!r}")
        problem = self._path_problem(ans)
        if problem:
            return invalid(problem)
        s, g = int(np.argmax(puz == START)), int(np.argmax(puz == GOAL))
        shortest = int(bfs_distances(puz != WALL, s)[g])
        length = int((ans == PATH).sum()) + 1
        if length != shortest:
            return invalid(f"path length {length}, shortest is {shortest}")
        if correct is False:
            return Verdict(True, False, f"a shortest path (length {length}), but not the label's")
        return Verdict(True, correct, f"shortest path, length {length}")

    # -- display ---------------------------------------------------------------------------------
    def render(self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False) -> str:
        """The maze as text, one line per row.

        Plain, no highlight: one character per cell - exactly the input format, so the output parses
        back (trailing spaces are kept). Plain with a highlight mask: two columns per cell, the symbol
        then ``*`` (highlighted) or a space. ``color=True``: two columns per cell, walls grey, path
        green, S blue, G red, highlighted cells yellow. ``?`` marks a token that is no symbol.
        """
        g = self.decode(tokens)
        if highlight is None and not color:
            return "\n".join("".join(row) for row in g)
        mask = highlight_mask(highlight, self.seq_len, self.grid_shape)
        lines = []
        for r in range(self.size):
            parts = []
            for c in range(self.size):
                ch = str(g[r, c])
                if color:
                    style = HIGHLIGHT_ANSI if mask[r, c] else _STYLE.get(ch, "")
                    parts.append(f"{style}{ch} {ANSI_RESET}" if style else ch + " ")
                else:
                    parts.append(ch + ("*" if mask[r, c] else " "))
            lines.append("".join(parts))
        return "\n".join(lines)

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self, n: int, rng: np.random.Generator, loop_fraction: float = 0.05, min_distance: int = 0,
        max_tries: int = 1000, **kw: Any,
    ) -> list[Puzzle]:
        """``n`` random mazes with a shortest path as label (see :func:`generate_maze`).

        ``min_distance`` rejects mazes whose S->G distance is shorter (the paper's Maze-Hard keeps
        paths longer than 110 steps at 30x30); ``meta["distance"]`` is the BFS distance.
        """
        if kw:
            raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
        out = []
        for i in range(n):
            for _ in range(max_tries):
                puzzle, label, dist = generate_maze(rng, self.size, loop_fraction)
                if dist >= min_distance:
                    break
            else:
                raise RuntimeError(
                    f"no {self.size}x{self.size} maze with distance >= {min_distance} in {max_tries} tries "
                    f"(loop_fraction {loop_fraction}; fewer loops give longer paths)"
                )
            out.append(Puzzle(puzzle, label, f"<generated>:{i + 1}", 0, {"distance": dist}))
        return out


def generate_maze(
    rng: np.random.Generator, size: int = 30, loop_fraction: float = 0.05
) -> tuple[np.ndarray, np.ndarray, int]:
    """One random maze: ``(puzzle_tokens, label_tokens, shortest_distance)``.

    Randomised depth-first search carves a perfect maze on the cells at even coordinates (for even
    sizes the last row and column stay wall); then ``loop_fraction`` of the remaining inner walls
    between two cells are knocked out so several routes exist and the shortest one must be *found*,
    not just followed. At 30x30 the median S->G distance is ~245 steps with no loops, ~125 with
    0.05 (the default) and ~70 with 0.15. S and G go far apart: G is a random cell in the top 20% of BFS distance from
    S, where S is the far end of a double sweep (an approximate diameter).
    """
    if not 4 <= size <= 30:
        raise ValueError(f"maze size must be 4..30, got {size}")
    if not 0.0 <= loop_fraction <= 1.0:
        raise ValueError(f"loop_fraction must be in [0, 1], got {loop_fraction}")
    k = (size + 1) // 2  # cells per side, at coordinates 0, 2, ..., 2k-2
    free = np.zeros((size, size), bool)
    free[0:2 * k - 1:2, 0:2 * k - 1:2] = True
    seen = np.zeros((k, k), bool)
    start = (int(rng.integers(k)), int(rng.integers(k)))
    seen[start] = True
    stack = [start]
    steps = ((-1, 0), (1, 0), (0, -1), (0, 1))
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc) for dr, dc in steps
            if 0 <= r + dr < k and 0 <= c + dc < k and not seen[r + dr, c + dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        free[r + nr, c + nc] = True  # the wall between (2r, 2c) and (2nr, 2nc)
        seen[nr, nc] = True
        stack.append((nr, nc))
    # knock out extra walls between two cells (one odd coordinate) to create loops
    walls = [(r, c) for r in range(2 * k - 1) for c in range(2 * k - 1) if (r + c) % 2 == 1 and not free[r, c]]
    if walls and loop_fraction > 0:
        count = int(round(loop_fraction * len(walls)))
        for i in rng.choice(len(walls), size=count, replace=False):
            free[walls[int(i)]] = True
    flat_free = free.reshape(-1)
    cells = np.nonzero(flat_free)[0]
    a = int(cells[int(rng.integers(len(cells)))])
    d = bfs_distances(free, a)
    s = int(np.argmax(d))
    d = bfs_distances(free, s)
    far = np.nonzero(d >= max(1, int(0.8 * d.max())))[0]
    g = int(far[int(rng.integers(len(far)))])
    if rng.random() < 0.5:
        s, g = g, s
    grid = np.where(flat_free, FREE, WALL).astype(np.int32)
    grid[s], grid[g] = START, GOAL
    path = shortest_path(free, s, g)
    assert path is not None
    label = grid.copy()
    label[path[1:-1]] = PATH
    return grid, label, len(path) - 1
