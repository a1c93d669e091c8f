"""ARC-AGI (1 and 2) as a task: task JSON in, the 30x30 canvas encoding, crop, check and render.

Canvas (official ``build_arc_dataset.py``): 30x30, row-major; PAD 0, end-of-grid marker ``<eos>`` 1,
colours 0-9 -> 2-11 (vocab 12, seq_len 900). A ``h x w`` grid placed at ``(r0, c0)`` gets markers on
the row below it (columns ``c0..c0+w-1``) and on the column right of it (rows ``r0..r0+h-1``); the
corner ``(r0+h, c0+w)`` stays PAD, as do markers that would fall outside the canvas. The official
builder places grids at a random offset only for the *train* split (translation augmentation, the
same offset for input and output, one example per puzzle left at (0, 0)); the test split - what
evaluation and inference see - is always at (0, 0), which :meth:`ArcTask.parse` reproduces.

Decoding is the official evaluation's ``crop``: the largest-area top-left rectangle of colour tokens,
scanning rows until a row's first non-colour cell shrinks the width (see :func:`crop`).

HRM never sees the demonstrations (train pairs) at inference: a task is identified by its puzzle
identifier, so each test input is one :class:`~hrm.tasks.base.Puzzle`; the pairs are kept in
``meta["train"]`` for display and for building datasets. Augmentations live in
:mod:`hrm.tasks.arc_augment`, the vote and pass@k in :mod:`hrm.tasks.arc_vote`, the evaluation
procedure over a runtime session in :mod:`hrm.tasks.arc_eval`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

import numpy as np

from hrm.errors import ParseError
from hrm.tasks.arc_augment import Augmentation, random_augmentations
from hrm.tasks.base import (
    ANSI_RESET,
    HIGHLIGHT_ANSI,
    Puzzle,
    Task,
    Verdict,
    highlight_mask,
)

__all__ = [
    "ArcTask",
    "ArcRecord",
    "CANVAS",
    "read_arc_records",
    "load_arc_json",
    "encode_grid",
    "encode_pair",
    "crop",
    "check_grid",
    "grid_from_json",
    "render_grid",
    "render_side_by_side",
    "PALETTE",
]

CANVAS = 30
PAD, EOS, COLOR0 = 0, 1, 2
#: ARC palette (black, blue, red, green, yellow, grey, magenta, orange, sky, maroon) as RGB, the
#: official notebook's colour map
PALETTE = (
    (0, 0, 0), (0, 116, 217), (255, 65, 54), (46, 204, 64), (255, 220, 0),
    (170, 170, 170), (240, 18, 190), (255, 133, 27), (127, 219, 255), (135, 12, 37),
)


# -- grids & records -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ArcRecord:
    """One ARC task: demonstration pairs and test pairs (test outputs may be unknown: None)."""

    task_id: str
    train: tuple[tuple[np.ndarray, np.ndarray], ...]
    test: tuple[tuple[np.ndarray, np.ndarray | None], ...]

    def to_json(self) -> dict[str, Any]:
        """The ARC JSON object (``{"train": [...], "test": [...]}``)."""

        def pair(i: np.ndarray, o: np.ndarray | None) -> dict[str, Any]:
            d: dict[str, Any] = {"input": i.tolist()}
            if o is not None:
                d["output"] = o.tolist()
            return d

        return {"train": [pair(i, o) for i, o in self.train], "test": [pair(i, o) for i, o in self.test]}

    def augmented(self, aug: Augmentation) -> "ArcRecord":
        """The whole task (every train and test grid) under one augmentation, named officially."""
        def t(g: np.ndarray | None) -> np.ndarray | None:
            return None if g is None else aug.apply(g)

        return ArcRecord(aug.name(self.task_id), tuple((t(i), t(o)) for i, o in self.train),  # type: ignore[misc]
                         tuple((t(i), t(o)) for i, o in self.test))

    def with_test_outputs(self, outputs: Sequence[Any]) -> "ArcRecord":
        """The record with its test outputs set (an ARC Prize solutions entry, in test order)."""
        if len(outputs) != len(self.test):
            raise ValueError(f"task {self.task_id}: {len(outputs)} solutions for {len(self.test)} test inputs")
        test = tuple((i, check_grid(o, f"task {self.task_id}: test[{k}].output")) for k, ((i, _), o)
                     in enumerate(zip(self.test, outputs)))
        return replace(self, test=test)


def grid_from_json(obj: Any, where: str) -> np.ndarray:
    """Validate a JSON grid: list of equal-length lists of ints 0-9, 1..30 each way."""
    if not isinstance(obj, list):
        raise ValueError(f"{where}: expected a list of rows, got {type(obj).__name__}")
    if not obj:
        raise ValueError(f"{where}: empty grid (needs 1 to {CANVAS} rows)")
    if len(obj) > CANVAS:
        raise ValueError(f"{where}: {len(obj)} rows, at most {CANVAS}")
    width = None
    for r, row in enumerate(obj):
        if not isinstance(row, list):
            raise ValueError(f"{where}: row {r + 1} is not a list")
        if width is None:
            width = len(row)
            if not 1 <= width <= CANVAS:
                raise ValueError(f"{where}: row 1 has {width} cells, expected 1 to {CANVAS}")
        elif len(row) != width:
            raise ValueError(f"{where}: row {r + 1} has {len(row)} cells, row 1 has {width} (ragged grid)")
        for c, v in enumerate(row):
            if type(v) is not int or not 0 <= v <= 9:
                raise ValueError(f"{where}: row {r + 1}, column {c + 1}: {v!r} is not a colour 0-9")
    return np.asarray(obj, dtype=np.int64)


def check_grid(grid: Any, where: str = "grid") -> np.ndarray:
    """An in-memory grid as int64, or ValueError: 2-D, 1..30 rows and columns, colours 0-9."""
    g = np.asarray(grid)
    if g.ndim != 2 or not (1 <= g.shape[0] <= CANVAS and 1 <= g.shape[1] <= CANVAS):
        raise ValueError(f"{where}: an ARC grid is 2-D with 1..{CANVAS} rows and columns, got shape {g.shape}")
    if not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() > 9:
        raise ValueError(f"{where}: ARC colours are integers 0-9")
    return g.astype(np.int64, copy=False)


def _record(obj: Any, task_id: str) -> ArcRecord:
    if not isinstance(obj, dict):
        raise ValueError(f"expected an object with 'train' and 'test', got {type(obj).__name__}")
    parts: dict[str, list] = {}
    for split in ("train", "test"):
        if split not in obj:
            raise ValueError(f"missing {split!r}")
        pairs = obj[split]
        if not isinstance(pairs, list):
            raise ValueError(f"{split!r} must be a list of pairs, got {type(pairs).__name__}")
        if split == "test" and not pairs:
            raise ValueError("'test' is empty: nothing to solve")
        out = []
        for k, pair in enumerate(pairs):
            where = f"{split}[{k}]"
            if not isinstance(pair, dict):
                raise ValueError(f"{where}: expected an object with 'input' and 'output'")
            if "input" not in pair:
                raise ValueError(f"{where}: missing 'input'")
            if "output" not in pair and split == "train":
                raise ValueError(f"{where}: missing 'output'")
            inp = grid_from_json(pair["input"], f"{where}.input")
            outp = grid_from_json(pair["output"], f"{where}.output") if "output" in pair else None
            out.append((inp, outp))
        parts[split] = out
    return ArcRecord(task_id, tuple(parts["train"]), tuple(parts["test"]))


def _key_line(text: str, key: str) -> int | None:
    """1-based line where ``"key":`` first appears in a JSON text (json.loads gives no positions)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def read_arc_records(text: str, source: str = "<string>", task_id: str | None = None) -> list[ArcRecord | ParseError]:
    """One :class:`ArcRecord` or :class:`ParseError` per task, in file order, never raising for content.

    Accepts one task (``{"train", "test"}``; its id is ``task_id`` or the file's stem) or the ARC
    Prize combined challenges file (``{task_id: {"train", "test"}}``). A refused task's error names the
    task, the pair and the field (``task 0a1b: train[2].input: row 3 has 4 cells, row 1 has 5 (ragged
    grid)``) and the line where the task starts; the other tasks go on. Broken JSON is one error with
    its line and column.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return [ParseError(source, e.lineno, f"invalid JSON: {e.msg} at column {e.colno}")]
    except RecursionError:
        return [ParseError(source, None, "input nested too deeply to parse")]
    if task_id is None:
        task_id = PurePath(source).stem if not source.startswith("<") else "task"
    if isinstance(obj, dict) and ("train" in obj or "test" in obj):
        items, single = [(task_id, obj)], True
    elif isinstance(obj, dict) and obj:
        items, single = list(obj.items()), False
    else:
        return [ParseError(source, 1, "expected an ARC task ({\"train\": [...], \"test\": [...]}) or an object "
                                      "of tasks keyed by id (the ARC Prize challenges file)")]
    out: list[ArcRecord | ParseError] = []
    for tid, o in items:
        try:
            out.append(_record(o, str(tid)))
        except ValueError as e:
            line = 1 if single else _key_line(text, str(tid))
            out.append(ParseError(source, line, f"task {tid}: {e}"))
    return out


def load_arc_json(text: str, source: str = "<string>", task_id: str | None = None) -> list[ArcRecord]:
    """:func:`read_arc_records` that raises the first :class:`ParseError` (all-or-nothing callers)."""
    records = read_arc_records(text, source, task_id)
    for r in records:
        if isinstance(r, ParseError):
            raise r
    return records  # type: ignore[return-value]


# -- canvas ----------------------------------------------------------------------------------------


def encode_grid(grid: Any, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Grid (colours 0-9) -> int32 canvas tokens [900] with the end-of-grid markers (module doc)."""
    g = check_grid(grid)
    h, w = g.shape
    r0, c0 = int(offset[0]), int(offset[1])
    if r0 < 0 or c0 < 0 or r0 + h > CANVAS or c0 + w > CANVAS:
        raise ValueError(f"a {h}x{w} grid at offset {offset} does not fit the {CANVAS}x{CANVAS} canvas")
    canvas = np.zeros((CANVAS, CANVAS), np.int32)
    canvas[r0:r0 + h, c0:c0 + w] = g + COLOR0
    if r0 + h < CANVAS:
        canvas[r0 + h, c0:c0 + w] = EOS
    if c0 + w < CANVAS:
        canvas[r0:r0 + h, c0 + w] = EOS
    return canvas.reshape(-1)


def encode_pair(
    inp: Any, out: Any, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Encode an (input, output) pair; with ``rng``, at one random offset that fits both grids
    (the official train-split translation augmentation); without, at (0, 0) as evaluation does."""
    a, b = check_grid(inp, "input"), check_grid(out, "output")
    if rng is None:
        off = (0, 0)
    else:
        off = (
            int(rng.integers(0, CANVAS - max(a.shape[0], b.shape[0]) + 1)),
            int(rng.integers(0, CANVAS - max(a.shape[1], b.shape[1]) + 1)),
        )
    return encode_grid(a, off), encode_grid(b, off)


def crop(tokens: Any) -> np.ndarray:
    """The official evaluation's crop: largest top-left rectangle of colour tokens -> colours 0-9.

    Rows are scanned from the top; the usable width is the run of colour tokens at the start of the
    row, never growing again once it shrank; the (rows, width) with the largest area wins (first
    one on ties). A canvas whose first cell is no colour decodes to an empty ``(0, 0)`` grid.
    """
    t = np.asarray(tokens).reshape(-1)
    if t.size != CANVAS * CANVAS:
        raise ValueError(f"expected {CANVAS * CANVAS} canvas tokens, got {t.size}")
    grid = t.reshape(CANVAS, CANVAS).astype(np.int64)
    is_colour = (grid >= COLOR0) & (grid <= COLOR0 + 9)
    best_area, best = 0, (0, 0)
    width = CANVAS
    for r in range(CANVAS):
        row = is_colour[r, :width]
        if not row.all():
            width = int(np.argmin(row))
        area = (r + 1) * width
        if area > best_area:
            best_area, best = area, (r + 1, width)
    return grid[: best[0], : best[1]] - COLOR0


# -- the task --------------------------------------------------------------------------------------


class ArcTask(Task):
    """ARC on the 30x30 canvas. One :class:`Puzzle` per test input; see the module docstring."""

    name = "arc"
    grid_shape = (CANVAS, CANVAS)
    seq_len = CANVAS * CANVAS
    vocab_size = 12

    def token_map(self) -> dict[str, int]:
        m = {"<pad>": PAD, "<eos>": EOS}
        m.update({str(c): c + COLOR0 for c in range(10)})
        return m

    def parse(self, text: str, source: str = "<string>") -> list[Puzzle]:
        """Each test input of each task -> a Puzzle at offset (0, 0); test outputs become labels.
        Raises the first :class:`ParseError` (see :meth:`parse_records` for the per-task form).

        ``meta``: ``task_id``, ``test_index``, ``train`` (the demonstration pairs), ``input``,
        ``output`` (None if unknown) and ``record`` (the whole :class:`ArcRecord`). ``puzzle_id`` is
        0 (the blank identifier): the evaluation procedure (:mod:`hrm.tasks.arc_eval`) gives each
        augmented copy its identifier.
        """
        return self.puzzles_from_records(load_arc_json(text, source), source)

    def parse_records(self, text: str, source: str = "<string>") -> list[Puzzle | ParseError]:
        """Per-record parsing (contract C2): the puzzles of every valid task (one per test input) and
        one :class:`ParseError` per refused task, in file order; never raises for bad content."""
        out: list[Puzzle | ParseError] = []
        items = read_arc_records(text, source)
        many = len(items) > 1
        for item in items:
            if isinstance(item, ParseError):
                out.append(item)
            else:
                out.extend(self._puzzles(item, source, many))
        return out

    def puzzles_from_records(self, records: Sequence[ArcRecord], source: str = "<records>") -> list[Puzzle]:
        """Puzzles for already-loaded records (e.g. after :meth:`ArcRecord.augmented`)."""
        many = len(records) > 1
        return [p for rec in records for p in self._puzzles(rec, source, many)]

    def _puzzles(self, rec: ArcRecord, source: str, many: bool) -> list[Puzzle]:
        out = []
        for k, (inp, outp) in enumerate(rec.test):
            label = None if outp is None else encode_grid(outp)
            where = f"{source}:{rec.task_id}/test[{k}]" if many else f"{source}:test[{k}]"
            meta = {"task_id": rec.task_id, "test_index": k, "train": rec.train, "input": inp, "output": outp,
                    "record": rec}
            out.append(Puzzle(encode_grid(inp), label, where, 0, meta))
        return out

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Canvas tokens -> the cropped colour grid (int64, possibly empty ``(0, 0)``)."""
        return crop(self._tokens(tokens))

    def check(self, puzzle: Puzzle, answer_tokens: np.ndarray) -> Verdict:
        """Valid = the canvas decodes to a non-empty grid (a well-formed attempt); correct = the
        cropped grid equals the cropped label (the official exact-match criterion). Whether a grid has
        the *right* shape is only known against a label; the evaluation procedure
        (:mod:`hrm.tasks.arc_eval`) is what scores ARC answers (vote, pass@k)."""
        ans = self.decode(answer_tokens)
        label = None if puzzle.label is None else crop(puzzle.label)
        if ans.size == 0:
            reason = "no grid: the canvas starts with a non-colour token"
            return Verdict(False, None if label is None else False, reason)
        shape = f"{ans.shape[0]}x{ans.shape[1]}"
        if label is None:
            return Verdict(True, None, f"{shape} grid")
        if ans.shape != label.shape:
            return Verdict(True, False, f"{shape} grid, expected {label.shape[0]}x{label.shape[1]}")
        diff = np.argwhere(ans != label)
        if len(diff):
            r, c = diff[0]
            return Verdict(True, False, f"{len(diff)} of {ans.size} cells differ, first at ({r + 1}, {c + 1})")
        return Verdict(True, True, f"{shape} grid, matches the label")

    def render(
        self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False,
        canvas: bool = False,
    ) -> str:
        """The cropped grid as digits (``canvas=True``: the whole 30x30 canvas with ``.`` for PAD and
        ``$`` for the end marker). ``color=True`` paints each cell's ARC colour as an ANSI 24-bit
        background; highlighted cells get ``*`` (plain) or the yellow highlight style."""
        t = self._tokens(tokens)
        mask = highlight_mask(highlight, self.seq_len, (CANVAS, CANVAS))
        full = t.reshape(CANVAS, CANVAS)
        if canvas:
            h, w = CANVAS, CANVAS
        else:
            h, w = crop(t).shape
            if h == 0:
                return "(empty grid)"
        return _render_cells(full[:h, :w] - COLOR0, mask[:h, :w], color)

    def generate(
        self, n: int, rng: np.random.Generator, n_train: int = 3, max_side: int = 10, **kw: Any
    ) -> list[Puzzle]:
        """Synthetic ARC-format tasks for pipeline tests (not ARC!): each task's rule is one random
        augmentation (dihedral transform + colour permutation); ``n_train`` demonstrations, one
        labelled test input. ``meta["rule"]`` is the :class:`~hrm.tasks.arc_augment.Augmentation`.
        """
        if kw:
            raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
        if not 1 <= max_side <= CANVAS:
            raise ValueError(f"max_side must be 1..{CANVAS}")
        out = []
        for i in range(n):
            seed = rng.integers(0, 10, size=(2, 2))
            (rule,) = random_augmentations([(seed, seed)], 1, rng) or [Augmentation()]
            pairs = []
            for _ in range(n_train + 1):
                h, w = (int(x) for x in rng.integers(1, max_side + 1, size=2))
                g = rng.integers(0, 10, size=(h, w))
                pairs.append((g, rule.apply(g)))
            rec = ArcRecord(f"synthetic{i:05d}", tuple(pairs[:-1]), (pairs[-1],))
            (p,) = self.puzzles_from_records([rec], f"<generated>:{i + 1}")
            out.append(Puzzle(p.tokens, p.label, f"<generated>:{i + 1}", 0, {**p.meta, "rule": rule}))
        return out


# -- display ----------------------------------------------------------------------------------------


def _render_cells(cells: np.ndarray, mask: np.ndarray, color: bool) -> str:
    """Cells as colour digits (values 0-9; PAD -2 -> ``.``, end marker -1 -> ``$``), two columns each."""
    lines = []
    for r in range(cells.shape[0]):
        parts = []
        for c in range(cells.shape[1]):
            v = int(cells[r, c])
            ch = str(v) if 0 <= v <= 9 else {PAD - COLOR0: ".", EOS - COLOR0: "$"}.get(v, "?")
            if color:
                if mask[r, c]:
                    parts.append(f"{HIGHLIGHT_ANSI}{ch}*{ANSI_RESET}")
                elif ch.isdigit():
                    rr, gg, bb = PALETTE[v]
                    fg = "30" if rr + gg + bb > 400 else "97"
                    parts.append(f"\x1b[{fg};48;2;{rr};{gg};{bb}m{ch} {ANSI_RESET}")
                else:
                    parts.append(ch + " ")
            else:
                parts.append(ch + ("*" if mask[r, c] else " "))
        line = "".join(parts)
        lines.append(line if color else line.rstrip(" "))
    return "\n".join(lines)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def render_grid(grid: Any, color: bool = False) -> str:
    """A colour grid (values 0-9) as text, the way :meth:`ArcTask.render` draws a decoded answer."""
    g = np.asarray(grid, dtype=np.int64)
    if g.size == 0:
        return "(empty grid)"
    return _render_cells(g, np.zeros(g.shape, bool), color)


def render_side_by_side(panels: Sequence[tuple[str, Any]], color: bool = False, gap: int = 3) -> str:
    """Titled grids next to each other (input | attempt 1 | attempt 2 | expected), top-aligned."""
    blocks = []
    for title, grid in panels:
        body = ["-"] if grid is None else render_grid(grid, color).split("\n")
        blocks.append((title, body, max(len(title), *(_visible_len(line) for line in body))))
    sep = " " * gap
    lines = [sep.join(t.ljust(w) for t, _, w in blocks).rstrip()]
    for r in range(max(len(b) for _, b, _ in blocks)):
        row = [(body[r] if r < len(body) else "") for _, body, _ in blocks]
        lines.append(sep.join(s + " " * (w - _visible_len(s)) for s, (_, _, w) in zip(row, blocks)).rstrip())
    return "\n".join(lines)
