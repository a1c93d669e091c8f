"""Sudoku generation: unique-solution puzzles with a target difficulty, augmentation, parallel datasets.

How a puzzle is made (why it is unique and how difficulty is hit):

1. A random complete grid comes from the solver run with a shuffled digit order.
2. Clues are removed in random order. A removal is kept only if the puzzle stays unique, checked
   cheaply with the known solution: the puzzle is unique iff no solution puts another digit in the
   removed cell, i.e. the solver finds *no* solution once that digit is forbidden there. The result
   is minimal: no clue can be removed without losing uniqueness.
   For the easy bucket the removal test is instead "propagation alone still solves it", which
   implies uniqueness and guarantees 0 guesses.
3. The puzzle is rated (:func:`hrm.tasks.sudoku_solver.rate`). About half of minimal 9x9 puzzles
   need no guess, a fifth need 1-5 and the rest 6+. If the rating is below the target, a hill climb
   perturbs the puzzle (drop one clue, add two clues from the solution, re-minimise) and keeps
   changes that do not lower the guess count; harder targets (e.g. 30+ guesses) are reached this way.
   If the rating is above the target's upper bound, clues from the solution are added back (which
   keeps uniqueness and usually lowers the count) until it falls in range; if it jumps below the
   range the puzzle is discarded and a new one is drawn.

Difficulty targets: ``"easy"`` = 0 guesses, ``"medium"`` = 1-5, ``"hard"`` = 6+, ``"any"`` = no
target, the bucket names ``"0"``, ``"1-5"``, ``"6+"``, or an explicit ``(lo, hi)`` range of guesses
(``hi=None`` for no upper bound).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from hrm.tasks.sudoku_solver import (
    Geometry,
    _propagate,
    _Search,
    geometry,
    grid_to_masks,
    random_solution,
    rate,
)

__all__ = [
    "Difficulty",
    "BUCKETS",
    "difficulty_bucket",
    "difficulty_range",
    "GeneratedSudoku",
    "generate_one",
    "generate_dataset",
    "augment",
]

Difficulty = str | tuple[int, int | None]

#: Report buckets, in order, with their guess ranges (inclusive, None = unbounded).
BUCKETS: dict[str, tuple[int, int | None]] = {"0": (0, 0), "1-5": (1, 5), "6+": (6, None)}
_ALIASES = {"easy": "0", "medium": "1-5", "hard": "6+"}


def difficulty_bucket(guesses: int) -> str:
    """Report bucket of a guess count: ``"0"``, ``"1-5"`` or ``"6+"``."""
    if guesses < 0:
        raise ValueError(f"guesses must be >= 0, got {guesses}")
    if guesses == 0:
        return "0"
    return "1-5" if guesses <= 5 else "6+"


def difficulty_range(difficulty: Difficulty) -> tuple[int, int | None]:
    """Normalise a difficulty target to an inclusive ``(lo, hi)`` guess range (``hi`` None = open)."""
    if isinstance(difficulty, str):
        key = _ALIASES.get(difficulty, difficulty)
        if key == "any":
            return (0, None)
        if key in BUCKETS:
            return BUCKETS[key]
        raise ValueError(
            f"unknown difficulty {difficulty!r}: use 'easy', 'medium', 'hard', 'any', "
            f"one of {list(BUCKETS)} or a (lo, hi) tuple"
        )
    try:
        lo, hi = difficulty
    except (TypeError, ValueError):
        raise ValueError(f"difficulty must be a name or a (lo, hi) tuple, got {difficulty!r}") from None
    lo = int(lo)
    if lo < 0 or (hi is not None and int(hi) < lo):
        raise ValueError(f"bad difficulty range {difficulty!r}")
    return (lo, None if hi is None else int(hi))


# -- core steps ----------------------------------------------------------------------------------


def _unique_without(puzzle: list[int], cell: int, value: int, geo: Geometry) -> bool:
    """Is ``puzzle`` (with ``cell`` just blanked, formerly ``value``) still uniquely solvable?"""
    cand = grid_to_masks(puzzle, geo)
    if cand is None:  # cannot happen for a subset of a valid grid; be safe
        return False
    m = cand[cell] & ~(1 << (value - 1))
    if not m:
        return True
    cand[cell] = m
    if not _propagate(cand, [] if m & (m - 1) else [cell], geo):
        return True
    s = _Search(geo, 1)
    s.run(cand)
    return s.found == 0


def _propagation_solves(puzzle: list[int], geo: Geometry) -> bool:
    cand = grid_to_masks(puzzle, geo)
    if cand is None:
        return False
    pc = geo.popcount
    return all(pc[m] == 1 for m in cand)


def _minimise(puzzle: list[int], cells: np.ndarray, geo: Geometry, easy: bool) -> list[int]:
    """Try removing each clue in ``cells`` (in that order); keep removals that preserve the property."""
    p = puzzle[:]
    for c in cells:
        c = int(c)
        v = p[c]
        if not v:
            continue
        p[c] = 0
        ok = _propagation_solves(p, geo) if easy else _unique_without(p, c, v, geo)
        if not ok:
            p[c] = v
    return p


def _climb(
    puzzle: list[int], solution: list[int], guesses: int, backtracks: int, lo: int, hi: int | None,
    steps: int, rng: np.random.Generator, geo: Geometry,
) -> tuple[list[int], int, int]:
    """Hill-climb towards at least ``lo`` guesses; returns (puzzle, guesses, backtracks)."""
    best, best_g, best_b = puzzle, guesses, backtracks
    for _ in range(steps):
        if best_g >= lo:
            break
        p = best[:]
        clues = [i for i, v in enumerate(p) if v]
        blanks = [i for i, v in enumerate(p) if not v]
        p[clues[int(rng.integers(len(clues)))]] = 0
        for i in rng.choice(len(blanks), size=min(2, len(blanks)), replace=False):
            p[blanks[int(i)]] = solution[blanks[int(i)]]
        r = rate(p)
        if r.solutions != 1:
            continue
        p = _minimise(p, rng.permutation(geo.cells), geo, easy=False)
        r = rate(p)
        if r.solutions == 1 and r.guesses >= best_g and (hi is None or r.guesses <= hi):
            best, best_g, best_b = p, r.guesses, r.backtracks
    return best, best_g, best_b


def _descend(
    puzzle: list[int], solution: list[int], guesses: int, lo: int, hi: int, steps: int,
    rng: np.random.Generator, geo: Geometry, probes: int = 8,
) -> tuple[list[int], int, int] | None:
    """Add clues from the solution until the guess count falls into ``lo..hi`` (None if it skips it).

    Adding a clue never breaks uniqueness and usually lowers the guess count; each step probes a few
    candidate clues and keeps the one that lands in range, else the easiest one still above ``hi``.
    """
    p = puzzle[:]
    for _ in range(steps):
        blanks = [i for i, v in enumerate(p) if not v]
        best: tuple[int, int, int] | None = None  # (guesses, backtracks, cell)
        for i in rng.choice(len(blanks), size=min(probes, len(blanks)), replace=False):
            c = blanks[int(i)]
            p[c] = solution[c]
            r = rate(p)
            p[c] = 0
            if lo <= r.guesses <= hi:
                p[c] = solution[c]
                return p, r.guesses, r.backtracks
            if r.guesses > hi and (best is None or r.guesses < best[0]):
                best = (r.guesses, r.backtracks, c)
        if best is None:
            return None
        p[best[2]] = solution[best[2]]
    return None


def generate_one(
    rng: np.random.Generator, difficulty: Difficulty = "any", size: int = 9, max_tries: int = 200,
    climb_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """One unique-solution puzzle in the target range.

    ``climb_steps`` bounds the hill climb per drawn puzzle. The default was tuned by measurement: 5
    for bounded low targets ("medium": climbing a 0-guess draw beats redrawing), none for open
    targets up to 10 guesses ("hard": about 30% of draws qualify and climbing is slower than
    redrawing), else ``3 * lo`` up to 200 (20+ guesses are rarely drawn, climbing gets there).

    Returns ``(puzzle, solution, guesses, backtracks)``: digit grids ``[size, size]`` (int64,
    0 = blank) and the solver's counters. Raises RuntimeError when ``max_tries`` fresh puzzles
    could not reach the target (e.g. "hard" 4x4 puzzles barely exist).
    """
    box = math.isqrt(size)
    if box * box != size or box not in (2, 3):
        raise ValueError(f"Sudoku size must be 4 or 9, got {size}")
    geo = geometry(box)
    lo, hi = difficulty_range(difficulty)
    easy = hi == 0
    if climb_steps is None:
        if hi is not None and lo <= 6:
            climb_steps = 5
        elif lo <= 10:
            climb_steps = 0
        else:
            climb_steps = min(200, 3 * lo)
    for _ in range(max_tries):
        solution = random_solution(rng, box)
        puzzle = _minimise(solution, rng.permutation(geo.cells), geo, easy=easy)
        r = rate(puzzle)
        if r.solutions != 1:  # defensive: minimisation keeps uniqueness by construction
            continue
        g, b = r.guesses, r.backtracks
        if g < lo and climb_steps:
            puzzle, g, b = _climb(puzzle, solution, g, b, lo, hi, climb_steps, rng, geo)
        elif hi is not None and g > hi and not easy:
            found = _descend(puzzle, solution, g, lo, hi, climb_steps, rng, geo)
            if found is not None:
                puzzle, g, b = found
        if g >= lo and (hi is None or g <= hi):
            shape = (size, size)
            return np.asarray(puzzle).reshape(shape), np.asarray(solution).reshape(shape), g, b
    raise RuntimeError(f"could not generate a {size}x{size} Sudoku with guesses in {lo}..{hi} in {max_tries} tries")


# -- augmentation --------------------------------------------------------------------------------


def augment(
    puzzle_grid: np.ndarray, solution_grid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The official training augmentation (validity-preserving), applied identically to both grids.

    Digit permutation (blank 0 stays 0), optional transpose, then a row permutation that shuffles the
    bands and the rows inside each band and a column permutation that does the same for stacks -
    the same recipe as the official ``shuffle_sudoku``, for any box size. Grids are digit grids
    ``[n, n]``; the output keeps their dtype.
    """
    p = np.asarray(puzzle_grid)
    s = np.asarray(solution_grid)
    if p.shape != s.shape or p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"expected two equal square grids, got {p.shape} and {s.shape}")
    n = p.shape[0]
    b = math.isqrt(n)
    if b * b != n:
        raise ValueError(f"grid side must be a square number, got {n}")
    digit_map = np.concatenate([[0], rng.permutation(n) + 1])
    transpose = bool(rng.random() < 0.5)
    row_perm = np.concatenate([band * b + rng.permutation(b) for band in rng.permutation(b)])
    col_perm = np.concatenate([stack * b + rng.permutation(b) for stack in rng.permutation(b)])

    def apply(x: np.ndarray) -> np.ndarray:
        if transpose:
            x = x.T
        return digit_map[x[row_perm][:, col_perm]].astype(x.dtype, copy=False)

    return apply(p), apply(s)


# -- datasets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedSudoku:
    """Arrays for a generated dataset, in official token form (uint8, digit d -> d+1, blank -> 1).

    ``inputs``/``labels``: [n, size*size]; ``guesses``/``backtracks``: [n] int32 solver counters.
    Feed to :func:`hrm.tasks.dataset.write_official_split` to get an official dataset folder.
    """

    inputs: np.ndarray
    labels: np.ndarray
    guesses: np.ndarray
    backtracks: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def buckets(self) -> dict[str, int]:
        """Counts per report bucket."""
        out = {k: 0 for k in BUCKETS}
        for g in self.guesses:
            out[difficulty_bucket(int(g))] += 1
        return out


_CHUNK = 16


def _gen_chunk(args: tuple[np.random.SeedSequence, int, Difficulty, int]) -> tuple[np.ndarray, ...]:
    seed, count, difficulty, size = args
    rng = np.random.default_rng(seed)
    ins, labs, gs, bs = [], [], [], []
    for _ in range(count):
        p, s, g, b = generate_one(rng, difficulty, size)
        ins.append(p.reshape(-1))
        labs.append(s.reshape(-1))
        gs.append(g)
        bs.append(b)
    return (
        (np.asarray(ins) + 1).astype(np.uint8),
        (np.asarray(labs) + 1).astype(np.uint8),
        np.asarray(gs, dtype=np.int32),
        np.asarray(bs, dtype=np.int32),
    )


def generate_dataset(
    n: int, rng_seed: int, difficulty: Difficulty = "any", workers: int | None = None, size: int = 9,
    mp_context: str | None = None,
) -> GeneratedSudoku:
    """Generate ``n`` labelled puzzles, in parallel over ``workers`` processes.

    Deterministic in ``(n, rng_seed, difficulty, size)`` whatever ``workers`` is: the work is cut
    into fixed chunks of 16 puzzles, each with its own ``SeedSequence(rng_seed).spawn`` child seed,
    and chunks are concatenated in order. ``workers=None`` uses every CPU; ``workers=1`` runs in
    this process (no pool). ``mp_context`` picks the start method (default: the platform's).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    difficulty_range(difficulty)  # validate before starting processes
    counts = [min(_CHUNK, n - i) for i in range(0, n, _CHUNK)]
    seeds = np.random.SeedSequence(rng_seed).spawn(len(counts))
    jobs = [(s, c, difficulty, size) for s, c in zip(seeds, counts)]
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if workers == 1 or len(jobs) <= 1:
        parts = [_gen_chunk(j) for j in jobs]
    else:
        ctx = multiprocessing.get_context(mp_context)
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            parts = list(pool.map(_gen_chunk, jobs))
    cells = size * size
    if not parts:
        empty = np.zeros((0, cells), np.uint8)
        return GeneratedSudoku(empty, empty.copy(), np.zeros(0, np.int32), np.zeros(0, np.int32))
    return GeneratedSudoku(*(np.concatenate([p[i] for p in parts]) for i in range(4)))
