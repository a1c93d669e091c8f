"""Exact Sudoku solver: bitmask constraint propagation + MRV backtracking, pure Python.

Why this design: generation calls the solver ~80 times per puzzle (once per clue removal), so the
hot path must avoid numpy's per-call overhead on tiny arrays. A board is a Python ``list`` of
candidate bitmasks (bit ``d-1`` set = digit ``d`` still possible); copying it for a branch is one
list slice. Propagation applies the two classic rules until nothing changes:

* naked single - a cell with one candidate removes it from its 20 peers;
* hidden single - a digit with one possible place in a row/column/box goes there.

The search picks the cell with the fewest candidates (MRV, ties -> lowest index, so it is
deterministic) and tries its digits in increasing order.

Difficulty. ``guesses`` counts tentative assignments made at branch points; ``backtracks`` counts
those that led to a contradiction (their subtree held no solution). :func:`rate` runs the search to
completion (limit 2 solutions), so for a unique puzzle the whole tree is explored and the numbers do
not depend on luck in value order: they are a property of the puzzle (invariant under digit
relabelling). ``guesses == 0`` means propagation alone solves the puzzle.

Works for any box size ``b`` (``n = b*b``): 4x4 (b=2) and 9x9 (b=3) are the ones used.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "Geometry",
    "geometry",
    "Rating",
    "solve",
    "count_solutions",
    "rate",
    "propagate_only",
    "random_solution",
    "grid_to_masks",
]


@dataclass(frozen=True)
class Geometry:
    """Precomputed index tables for an ``n x n`` board with ``b x b`` boxes."""

    box: int
    n: int
    cells: int
    full: int  # mask with all n digit bits set
    units: tuple[tuple[int, ...], ...]  # rows, then columns, then boxes (3n units)
    peers: tuple[tuple[int, ...], ...]  # per cell, the other cells sharing a unit (20 for 9x9)
    popcount: tuple[int, ...]  # popcount of every mask < 2**n
    low_digit: tuple[int, ...]  # mask -> digit of its lowest set bit (1-based); 0 for mask 0
    unit_getters: tuple[Callable[[list[int]], tuple[int, ...]], ...]  # fetch a unit's masks in C


@cache
def geometry(box: int) -> Geometry:
    """Tables for box size ``box`` (2 -> 4x4, 3 -> 9x9), cached."""
    if box < 2 or box > 5:
        raise ValueError(f"box size must be 2..5, got {box}")
    n = box * box
    rows = [tuple(r * n + c for c in range(n)) for r in range(n)]
    cols = [tuple(r * n + c for r in range(n)) for c in range(n)]
    boxes = [
        tuple((br * box + i) * n + bc * box + j for i in range(box) for j in range(box))
        for br in range(box)
        for bc in range(box)
    ]
    units = tuple(rows + cols + boxes)
    peers = []
    for cell in range(n * n):
        ps: set[int] = set()
        for u in units:
            if cell in u:
                ps.update(u)
        ps.discard(cell)
        peers.append(tuple(sorted(ps)))
    pc = tuple(bin(m).count("1") for m in range(1 << n))
    low = tuple(((m & -m).bit_length()) if m else 0 for m in range(1 << n))
    getters = tuple(operator.itemgetter(*u) for u in units)
    return Geometry(box, n, n * n, (1 << n) - 1, units, tuple(peers), pc, low, getters)


@dataclass(frozen=True)
class Rating:
    """Result of an exhaustive (up to ``limit``) search.

    ``solutions``: number found, capped at the limit. ``solution``: the first one (digits, list of
    length n*n) or None. ``guesses`` / ``backtracks``: see the module docstring.
    """

    solutions: int
    solution: list[int] | None
    guesses: int
    backtracks: int


def grid_to_masks(grid: Sequence[int], geo: Geometry) -> list[int] | None:
    """Digits (0 = blank) -> propagated candidate masks, or None if the givens contradict.

    Candidates of blank cells are computed from per-row/column/box "used" masks in one pass
    (cheaper than eliminating every given from its 20 peers), then propagation takes over.
    """
    n, box, full = geo.n, geo.box, geo.full
    if len(grid) != geo.cells:
        raise ValueError(f"expected {geo.cells} cells, got {len(grid)}")
    rows = [0] * n
    cols = [0] * n
    boxes = [0] * n
    cand = [full] * geo.cells
    i = 0
    for r in range(n):
        br = (r // box) * box
        for c in range(n):
            d = grid[i]
            if d:
                if not 1 <= d <= n:
                    raise ValueError(f"cell {i} has digit {d}, expected 0..{n}")
                bit = 1 << (d - 1)
                b = br + c // box
                if (rows[r] | cols[c] | boxes[b]) & bit:
                    return None  # the same digit twice in one unit
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
                cand[i] = bit
            i += 1
    queue = []
    i = 0
    for r in range(n):
        br = (r // box) * box
        for c in range(n):
            if not grid[i]:
                m = full & ~(rows[r] | cols[c] | boxes[br + c // box])
                if not m:
                    return None
                cand[i] = m
                if not m & (m - 1):
                    queue.append(i)
            i += 1
    if not _propagate(cand, queue, geo):
        return None
    return cand


def _propagate(cand: list[int], queue: list[int], geo: Geometry) -> bool:
    """Apply naked and hidden singles in place until a fixpoint. False on contradiction.

    ``queue`` holds cells that became single-valued and whose digit has not been removed from their
    peers yet.
    """
    peers = geo.peers
    units = geo.units
    getters = geo.unit_getters
    full = geo.full
    while True:
        while queue:
            c = queue.pop()
            m = cand[c]
            notm = ~m
            for p in peers[c]:
                pm = cand[p]
                if pm & m:
                    pm &= notm
                    if not pm:
                        return False
                    cand[p] = pm
                    if not pm & (pm - 1):
                        queue.append(p)
        # hidden singles
        for u, get in zip(units, getters):
            once = 0
            twice = 0
            placed = 0
            for m in get(cand):
                twice |= once & m
                once |= m
                if not m & (m - 1):
                    placed |= m
            if once != full:
                return False  # some digit has no place left in this unit
            singles = once & ~twice & ~placed
            if singles:
                for c in u:
                    m = cand[c]
                    s = m & singles
                    if s:
                        if s & (s - 1):
                            return False  # this cell is the only place for two digits
                        cand[c] = s
                        queue.append(c)
        if not queue:
            return True


class _Search:
    """Depth-first search with counters; with ``rng`` the digit order of every branch is shuffled."""

    __slots__ = ("geo", "limit", "guesses", "backtracks", "found", "first", "rng")

    def __init__(self, geo: Geometry, limit: int, rng: np.random.Generator | None = None) -> None:
        self.geo = geo
        self.limit = limit
        self.guesses = 0
        self.backtracks = 0
        self.found = 0
        self.first: list[int] | None = None
        self.rng = rng

    def run(self, cand: list[int]) -> bool:
        """Explore ``cand`` (already propagated). Returns True when a solution lies below this node."""
        geo = self.geo
        pc = geo.popcount
        best = -1
        best_k = geo.n + 1
        for i, m in enumerate(cand):
            k = pc[m]
            if 1 < k < best_k:
                best, best_k = i, k
                if k == 2:
                    break
        if best < 0:
            self.found += 1
            if self.first is None:
                self.first = [geo.low_digit[m] for m in cand]
            return True
        m = cand[best]
        bits = []
        while m:
            b = m & -m
            bits.append(b)
            m ^= b
        if self.rng is not None:
            self.rng.shuffle(bits)
        any_found = False
        for b in bits:
            self.guesses += 1
            child = cand[:]
            child[best] = b
            if _propagate(child, [best], geo) and self.run(child):
                any_found = True
            else:
                self.backtracks += 1
            if self.found >= self.limit:
                break
        return any_found


def _geo_for(grid: Sequence[int]) -> Geometry:
    cells = len(grid)
    box = round(cells ** 0.25)
    if box**4 != cells:
        raise ValueError(f"a Sudoku has b**4 cells (16, 81, ...), got {cells}")
    return geometry(box)


def _flat(grid: Sequence[int] | np.ndarray) -> list[int]:
    return [int(x) for x in np.asarray(grid).reshape(-1)]


def _candidates(grid: Sequence[int] | np.ndarray) -> tuple[Geometry, list[int] | None]:
    """The grid's geometry and its propagated candidate masks (None on a contradiction)."""
    flat = _flat(grid)
    geo = _geo_for(flat)
    return geo, grid_to_masks(flat, geo)


def rate(grid: Sequence[int] | np.ndarray, limit: int = 2) -> Rating:
    """Search exhaustively for up to ``limit`` solutions of ``grid`` (digits, 0 = blank, any shape).

    The default ``limit=2`` answers "is it unique?" and gives the difficulty counters.
    """
    geo, cand = _candidates(grid)
    if cand is None:
        return Rating(0, None, 0, 0)
    s = _Search(geo, limit)
    s.run(cand)
    return Rating(s.found, s.first, s.guesses, s.backtracks)


def count_solutions(grid: Sequence[int] | np.ndarray, limit: int = 2) -> int:
    """Number of solutions of ``grid``, counting stops at ``limit``."""
    return rate(grid, limit).solutions


def solve(grid: Sequence[int] | np.ndarray) -> np.ndarray | None:
    """First solution of ``grid`` as an int array of the input's shape, or None if it has none."""
    arr = np.asarray(grid)
    geo, cand = _candidates(arr)
    if cand is None:
        return None
    s = _Search(geo, 1)
    s.run(cand)
    if s.first is None:
        return None
    return np.asarray(s.first, dtype=np.int64).reshape(arr.shape)


def propagate_only(grid: Sequence[int] | np.ndarray) -> np.ndarray | None:
    """Fill what naked/hidden singles force; None on contradiction. Blank cells stay 0.

    A result with no zeros means the puzzle needs no guess (difficulty bucket "0").
    """
    arr = np.asarray(grid)
    geo, cand = _candidates(arr)
    if cand is None:
        return None
    pc = geo.popcount
    out = [geo.low_digit[m] if pc[m] == 1 else 0 for m in cand]
    return np.asarray(out, dtype=np.int64).reshape(arr.shape)


def random_solution(rng: np.random.Generator, box: int = 3) -> list[int]:
    """A random complete grid (flat list of digits): the search with a shuffled digit order per branch."""
    geo = geometry(box)
    s = _Search(geo, 1, rng=rng)
    s.run([geo.full] * geo.cells)
    assert s.first is not None
    return s.first
