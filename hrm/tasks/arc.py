"""ARC-AGI (1 and 2): task JSON, the 30x30 canvas encoding, augmentations and the official vote.

Canvas (official ``build_arc_dataset.py``): 30x30, row-major; PAD 0, end-of-grid marker ``<eos>`` 1,
colours 0-9 -> 2-11 (vocab 12, seq_len 900). A ``h x w`` grid placed at ``(r0, c0)`` gets markers on
the row below it (columns ``c0..c0+w-1``) and on the column right of it (rows ``r0..r0+h-1``); the
corner ``(r0+h, c0+w)`` stays PAD, as do markers that would fall outside the canvas. The official
builder places grids at a random offset only for the *train* split (translation augmentation, the
same offset for input and output, one example per puzzle left at (0, 0)); the test split - what
evaluation and inference see - is always at (0, 0), which :meth:`ArcTask.parse` reproduces.

Decoding is the official evaluation's ``crop``: the largest-area top-left rectangle of colour tokens,
scanning rows until a row's first non-colour cell shrinks the width (see :func:`crop`).

Augmentation: 8 dihedral transforms numbered as ``dataset/common.py`` (0 identity, 1-3 rot90 k
times, 4 fliplr, 5 flipud, 6 transpose, 7 anti-transpose) and colour permutations that keep colour 0
(black) fixed. The builder maps colours first, then applies the transform; augmented puzzles are
named ``{task_id}_t{tid}_{perm digits}``. The evaluation inverts each prediction
(``argsort(perm)[inverse_dihedral(grid)]``), groups identical grids, ranks them by vote count then
mean ``sigmoid(q_halt)``, and scores pass@k per task: a task counts only if *every* test input's
label is among its top-k candidates.

HRM never sees the demonstrations (train pairs) at inference: a task is identified by its puzzle
identifier, so each test input is one :class:`~hrm.tasks.base.Puzzle`; the pairs are kept in
``meta["train"]`` for display and for building datasets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
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
)

__all__ = [
    "ArcTask",
    "ArcRecord",
    "CANVAS",
    "DIHEDRAL_INVERSE",
    "load_arc_json",
    "encode_grid",
    "encode_pair",
    "crop",
    "dihedral",
    "inverse_dihedral",
    "random_color_perm",
    "transform_grid",
    "invert_prediction",
    "augment",
    "aug_name",
    "parse_aug_name",
    "grid_key",
    "Candidate",
    "vote",
    "pass_at_k",
    "ArcVoter",
]

CANVAS = 30
PAD, EOS, COLOR0 = 0, 1, 2
#: inverse of each dihedral transform id (as the official ``DIHEDRAL_INVERSE``)
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
IDENTITY_PERM = np.arange(10, dtype=np.int64)
_AUG_NAME = re.compile(r"^(?P<base>.*)_t(?P<tid>[0-7])_(?P<perm>[0-9]{10})$")
# ARC palette (black, blue, red, green, yellow, grey, magenta, orange, sky, maroon) as RGB
_PALETTE = (
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


def _grid(obj: Any, where: str) -> np.ndarray:
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


def _check_grid_array(grid: Any) -> np.ndarray:
    g = np.asarray(grid)
    if g.ndim != 2 or not (1 <= g.shape[0] <= CANVAS and 1 <= g.shape[1] <= CANVAS):
        raise ValueError(f"an ARC grid is 2-D with 1..{CANVAS} rows and columns, got shape {g.shape}")
    if g.size and (not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() > 9):
        raise ValueError("ARC colours are integers 0-9")
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
            inp = _grid(pair["input"], f"{where}.input")
            outp = _grid(pair["output"], f"{where}.output") if "output" in pair else None
            out.append((inp, outp))
        parts[split] = out
    return ArcRecord(task_id, tuple(parts["train"]), tuple(parts["test"]))


def load_arc_json(text: str, source: str = "<string>", task_id: str | None = None) -> list[ArcRecord]:
    """Parse an ARC task file (``{"train", "test"}``) or a Kaggle-style file of many tasks
    (``{task_id: {"train", "test"}}``). Every problem raises ParseError naming ``source`` and the
    pair (``"train[2].input: row 3 has 4 cells, row 1 has 5 (ragged grid)"``); invalid JSON names
    the line and column.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(source, e.lineno, f"invalid JSON: {e.msg} at column {e.colno}") from None
    if task_id is None:
        task_id = PurePath(source).stem if not source.startswith("<") else "task"
    if isinstance(obj, dict) and ("train" in obj or "test" in obj):
        items = [(task_id, obj)]
    elif isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        items = list(obj.items())
    else:
        raise ParseError(
            source, None,
            "expected an ARC task ({\"train\": [...], \"test\": [...]}) or an object of tasks keyed by id",
        )
    records = []
    for tid, o in items:
        try:
            records.append(_record(o, str(tid)))
        except ValueError as e:
            prefix = "" if len(items) == 1 and tid == task_id else f"{tid}: "
            raise ParseError(source, None, f"{prefix}{e}") from None
    return records


# -- canvas ----------------------------------------------------------------------------------------


def encode_grid(grid: Any, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Grid (colours 0-9) -> int32 canvas tokens [900] with the end-of-grid markers (module doc)."""
    g = _check_grid_array(grid)
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
    a, b = _check_grid_array(inp), _check_grid_array(out)
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


# -- augmentation ----------------------------------------------------------------------------------


def dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """The 8 dihedral transforms, numbered as the official ``dihedral_transform``."""
    a = np.asarray(grid)
    if tid == 0:
        return a
    if tid in (1, 2, 3):
        return np.rot90(a, k=tid)
    if tid == 4:
        return np.fliplr(a)
    if tid == 5:
        return np.flipud(a)
    if tid == 6:
        return a.T
    if tid == 7:
        return np.fliplr(np.rot90(a, k=1))
    raise ValueError(f"dihedral transform id must be 0..7, got {tid}")


def inverse_dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """Undo :func:`dihedral` ``tid``."""
    if not 0 <= tid <= 7:
        raise ValueError(f"dihedral transform id must be 0..7, got {tid}")
    return dihedral(grid, DIHEDRAL_INVERSE[tid])


def _perm(perm: Any) -> np.ndarray:
    p = np.asarray(IDENTITY_PERM if perm is None else perm, dtype=np.int64)
    if p.shape != (10,) or sorted(p.tolist()) != list(range(10)):
        raise ValueError(f"a colour permutation is a permutation of 0..9, got {p.tolist()}")
    return p


def random_color_perm(rng: np.random.Generator) -> np.ndarray:
    """Random colour map with colour 0 (black background) fixed, as the official builder does."""
    return np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.int64)


def transform_grid(grid: Any, tid: int, perm: Any = None) -> np.ndarray:
    """Augment one grid: map colours through ``perm`` then apply dihedral ``tid``."""
    return np.ascontiguousarray(dihedral(_perm(perm)[np.asarray(grid, dtype=np.int64)], tid))


def invert_prediction(grid: Any, tid: int, perm: Any = None) -> np.ndarray:
    """Map a prediction made on an augmented puzzle back to the original frame (exact inverse)."""
    inv = np.argsort(_perm(perm))
    return np.ascontiguousarray(inv[inverse_dihedral(np.asarray(grid, dtype=np.int64), tid)])


def aug_name(task_id: str, tid: int, perm: Any) -> str:
    """Official augmented-puzzle name: ``{task_id}_t{tid}_{digits of perm}``."""
    return f"{task_id}_t{int(tid)}_{''.join(str(int(x)) for x in _perm(perm))}"


def parse_aug_name(name: str) -> tuple[str, int, np.ndarray]:
    """``(base_task_id, tid, perm)`` of a puzzle name; identity for a name without augmentation."""
    m = _AUG_NAME.match(name)
    if not m:
        return name, 0, IDENTITY_PERM.copy()
    perm = np.asarray([int(ch) for ch in m["perm"]], dtype=np.int64)
    return m["base"], int(m["tid"]), _perm(perm)


def augment(record: ArcRecord, tid: int, perm: Any) -> ArcRecord:
    """The whole task (every train and test grid) under one augmentation, renamed officially."""
    def t(g: np.ndarray | None) -> np.ndarray | None:
        return None if g is None else transform_grid(g, tid, perm)

    return ArcRecord(
        aug_name(record.task_id, tid, perm),
        tuple((t(i), t(o)) for i, o in record.train),  # type: ignore[misc]
        tuple((t(i), t(o)) for i, o in record.test),  # type: ignore[misc]
    )


# -- voting ----------------------------------------------------------------------------------------


def grid_key(grid: Any) -> tuple[tuple[int, ...], bytes]:
    """Exact identity of a grid (shape + values), dtype-independent: the vote groups by it."""
    g = np.asarray(grid)
    return tuple(int(x) for x in g.shape), np.ascontiguousarray(g, dtype=np.int64).tobytes()


@dataclass(frozen=True, eq=False)
class Candidate:
    """A distinct predicted grid: how many augmented runs produced it and their mean halting prob."""

    grid: np.ndarray
    count: int
    mean_q: float


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.float64(x))))


def vote(predictions: Iterable[tuple[Any, float]], *, q_is_logit: bool = True) -> list[Candidate]:
    """Group ``(grid, q_halt)`` predictions by grid and rank them as the official evaluation:
    by count, then by mean ``sigmoid(q_halt)`` (``q_is_logit=False``: q is a probability already),
    both descending; ties keep first-seen order.
    """
    groups: dict[tuple, list] = {}  # key -> [grid, count, sum of q], in first-seen order
    for grid, q in predictions:
        p = _sigmoid(q) if q_is_logit else float(q)
        g = groups.setdefault(grid_key(grid), [np.asarray(grid, dtype=np.int64), 0, 0.0])
        g[1] += 1
        g[2] += p
    cands = [Candidate(grid, count, total / count) for grid, count, total in groups.values()]
    return sorted(cands, key=lambda c: (c.count, c.mean_q), reverse=True)


def pass_at_k(
    tasks: Mapping[str, Sequence[tuple[Sequence[Candidate], Any]]], ks: Sequence[int] = (1, 2)
) -> dict[int, float]:
    """Fraction of tasks solved within the top-k candidates, for each k.

    ``tasks[task_id]`` lists, per test input, ``(ranked candidates, label grid)``. As in the
    official evaluation a task counts only if every one of its test inputs is solved.
    """
    if not tasks:
        return {int(k): 0.0 for k in ks}
    out = {}
    for k in ks:
        solved = 0
        for tests in tasks.values():
            solved += all(
                any(grid_key(c.grid) == grid_key(label) for c in ranked[: int(k)]) for ranked, label in tests
            )
        out[int(k)] = solved / len(tasks)
    return out


class ArcVoter:
    """Collects predictions from augmented runs and scores them like the official notebook.

    Predictions are keyed by the original task id and the (de-augmented) test input, so the same
    test input seen under 1000 augmentations lands in one vote. Names follow :func:`aug_name`.
    """

    def __init__(self, *, q_is_logit: bool = True) -> None:
        self.q_is_logit = q_is_logit
        self._preds: dict[tuple[str, tuple], list[tuple[np.ndarray, float]]] = {}

    def add(self, name: str, input_grid: Any, prediction: Any, q_halt: float) -> None:
        """One prediction for the puzzle ``name`` (possibly augmented) on ``input_grid`` (as the
        model saw it); both grids are mapped back to the original frame before voting."""
        base, tid, perm = parse_aug_name(name)
        inp = invert_prediction(input_grid, tid, perm)
        pred = invert_prediction(prediction, tid, perm)
        self._preds.setdefault((base, grid_key(inp)), []).append((pred, float(q_halt)))

    def add_tokens(self, name: str, input_tokens: Any, prediction_tokens: Any, q_halt: float) -> None:
        """:meth:`add` from canvas tokens (both are cropped as the official evaluation does)."""
        self.add(name, crop(input_tokens), crop(prediction_tokens), q_halt)

    def ranked(self, task_id: str, input_grid: Any) -> list[Candidate]:
        """Ranked candidates for one original test input (empty if none was added)."""
        return vote(self._preds.get((task_id, grid_key(input_grid)), []), q_is_logit=self.q_is_logit)

    def score(self, records: Iterable[ArcRecord], ks: Sequence[int] = (1, 2)) -> dict[int, float]:
        """pass@k over original ``records`` (their test outputs are the labels; they must be known)."""
        tasks: dict[str, list[tuple[list[Candidate], np.ndarray]]] = {}
        for rec in records:
            tests = []
            for k, (inp, out) in enumerate(rec.test):
                if out is None:
                    raise ValueError(f"task {rec.task_id}: test[{k}] has no output to score against")
                tests.append((self.ranked(rec.task_id, inp), out))
            tasks[rec.task_id] = tests
        return pass_at_k(tasks, ks)


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

        ``meta``: ``task_id``, ``test_index``, ``train`` (the demonstration pairs), ``input``,
        ``output`` (None if unknown) and ``record`` (the whole :class:`ArcRecord`). ``puzzle_id`` is
        0 (the blank identifier): map ``task_id`` to the model's identifiers with
        :func:`hrm.tasks.dataset.assign_puzzle_ids`.
        """
        records = load_arc_json(text, source)
        return self.puzzles_from_records(records, source)

    def puzzles_from_records(self, records: Sequence[ArcRecord], source: str = "<records>") -> list[Puzzle]:
        """Puzzles for already-loaded records (e.g. after :func:`augment`)."""
        many = len(records) > 1
        out = []
        for rec in records:
            for k, (inp, outp) in enumerate(rec.test):
                label = None if outp is None else encode_grid(outp)
                where = f"{source}:{rec.task_id}/test[{k}]" if many else f"{source}:test[{k}]"
                meta = {
                    "task_id": rec.task_id, "test_index": k, "train": rec.train,
                    "input": inp, "output": outp, "record": rec,
                }
                out.append(Puzzle(encode_grid(inp), label, where, 0, meta))
        return out

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Canvas tokens -> the cropped colour grid (int64, possibly empty ``(0, 0)``)."""
        return crop(self._tokens(tokens))

    def check(self, puzzle: Puzzle, answer_tokens: np.ndarray) -> Verdict:
        """Valid = the canvas decodes to a non-empty grid; correct = the cropped grid equals the
        cropped label (the official exact-match criterion)."""
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
        lines = []
        for r in range(h):
            parts = []
            for c in range(w):
                v = int(full[r, c])
                if COLOR0 <= v <= COLOR0 + 9:
                    ch = str(v - COLOR0)
                else:
                    ch = {PAD: ".", EOS: "$"}.get(v, "?")
                if color:
                    if mask[r, c]:
                        parts.append(f"{HIGHLIGHT_ANSI}{ch}*{ANSI_RESET}")
                    elif ch.isdigit():
                        rr, gg, bb = _PALETTE[int(ch)]
                        fg = "30" if sum(_PALETTE[int(ch)]) > 400 else "97"
                        parts.append(f"\x1b[{fg};48;2;{rr};{gg};{bb}m{ch} {ANSI_RESET}")
                    else:
                        parts.append(ch + " ")
                else:
                    parts.append(ch + ("*" if mask[r, c] else " "))
            line = "".join(parts)
            lines.append(line if color else line.rstrip(" "))
        return "\n".join(lines)

    def generate(
        self, n: int, rng: np.random.Generator, n_train: int = 3, max_side: int = 10, **kw: Any
    ) -> list[Puzzle]:
        """Synthetic ARC-format tasks for pipeline tests (not ARC!): each task's rule is one random
        dihedral transform + colour permutation; ``n_train`` demonstrations, one labelled test input.
        """
        if kw:
            raise TypeError(f"unexpected keyword arguments: {sorted(kw)}")
        if not 1 <= max_side <= CANVAS:
            raise ValueError(f"max_side must be 1..{CANVAS}")
        out = []
        for i in range(n):
            tid = int(rng.integers(8))
            perm = random_color_perm(rng)
            pairs = []
            for _ in range(n_train + 1):
                h, w = (int(x) for x in rng.integers(1, max_side + 1, size=2))
                g = rng.integers(0, 10, size=(h, w))
                pairs.append((g, transform_grid(g, tid, perm)))
            rec = ArcRecord(f"synthetic{i:05d}", tuple(pairs[:-1]), (pairs[-1],))
            (p,) = self.puzzles_from_records([rec], f"<generated>:{i + 1}")
            out.append(Puzzle(p.tokens, p.label, f"<generated>:{i + 1}", 0, {**p.meta, "rule": (tid, perm)}))
        return out
