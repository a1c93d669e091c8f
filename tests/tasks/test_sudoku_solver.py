"""Solver and generator, judged by independent oracles written here (plain sets, no bitmasks)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm.tasks.sudoku_gen import (
    augment,
    difficulty_bucket,
    difficulty_range,
    generate_dataset,
    generate_one,
)
from hrm.tasks.sudoku_solver import (
    count_solutions,
    propagate_only,
    random_solution,
    rate,
    solve,
)

HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
EASY = "003020600900305001001806400008102900700000008006708200002609500800203009005010300"
EASY_SOLUTION = "483921657967345821251876493548132976729564138136798245372689514814253769695417382"


def digits(s: str) -> np.ndarray:
    return np.array([0 if ch == "." else int(ch) for ch in s]).reshape(9, 9)


# -- independent oracles -------------------------------------------------------------------------


def _candidates(g: list[list[int]], r: int, c: int, n: int) -> set[int]:
    b = int(round(n**0.5))
    used = set(g[r]) | {g[i][c] for i in range(n)}
    br, bc = r - r % b, c - c % b
    used |= {g[i][j] for i in range(br, br + b) for j in range(bc, bc + b)}
    return set(range(1, n + 1)) - used


def oracle_count(grid: np.ndarray, limit: int = 2) -> int:
    """Plain backtracking (fewest-candidates cell first), counting solutions up to ``limit``."""
    g = [list(map(int, row)) for row in np.asarray(grid)]
    n = len(g)

    def rec(limit: int) -> int:
        best = None
        for r in range(n):
            for c in range(n):
                if g[r][c] == 0:
                    cands = _candidates(g, r, c, n)
                    if best is None or len(cands) < len(best[2]):
                        best = (r, c, cands)
        if best is None:
            return 1
        r, c, cands = best
        total = 0
        for d in sorted(cands):
            g[r][c] = d
            total += rec(limit - total)
            g[r][c] = 0
            if total >= limit:
                break
        return total

    for r in range(n):
        for c in range(n):
            d = g[r][c]
            if d:
                g[r][c] = 0
                if d not in _candidates(g, r, c, n):
                    return 0
                g[r][c] = d
    return rec(limit)


def oracle_valid_solution(sol: np.ndarray, puzzle: np.ndarray) -> bool:
    s = np.asarray(sol)
    n = s.shape[0]
    b = int(round(n**0.5))
    full = set(range(1, n + 1))
    units = [set(s[r]) for r in range(n)] + [set(s[:, c]) for c in range(n)]
    units += [set(s[i:i + b, j:j + b].reshape(-1)) for i in range(0, n, b) for j in range(0, n, b)]
    keeps = bool(np.all((puzzle == 0) | (puzzle == s)))
    return all(u == full for u in units) and keeps


def oracle_singles(grid: np.ndarray) -> np.ndarray:
    """Naked + hidden singles with explicit candidate sets, until nothing changes."""
    g = np.array(grid)
    n = g.shape[0]
    b = int(round(n**0.5))
    units = [[(r, c) for c in range(n)] for r in range(n)] + [[(r, c) for r in range(n)] for c in range(n)]
    units += [[(i + di, j + dj) for di in range(b) for dj in range(b)] for i in range(0, n, b) for j in range(0, n, b)]
    changed = True
    while changed:
        changed = False
        cands = {(r, c): _candidates(g.tolist(), r, c, n) for r in range(n) for c in range(n) if g[r, c] == 0}
        for (r, c), cs in cands.items():
            if len(cs) == 1:
                g[r, c] = cs.pop()
                changed = True
                break
        if changed:
            continue
        for u in units:
            for d in range(1, n + 1):
                if any(g[r, c] == d for r, c in u):
                    continue
                places = [(r, c) for r, c in u if g[r, c] == 0 and d in cands[(r, c)]]
                if len(places) == 1:
                    g[places[0]] = d
                    changed = True
                    break
            if changed:
                break
    return g


# -- solver --------------------------------------------------------------------------------------


def test_solver_solves_known_puzzles() -> None:
    sol = solve(digits(EASY))
    assert sol is not None and "".join(map(str, sol.reshape(-1))) == EASY_SOLUTION
    hard = digits(HARD)
    r = rate(hard)
    assert r.solutions == 1
    assert r.guesses > 20 and 0 < r.backtracks <= r.guesses
    assert oracle_valid_solution(np.array(r.solution).reshape(9, 9), hard)


def test_easy_puzzle_needs_no_guess() -> None:
    r = rate(digits(EASY))
    assert (r.solutions, r.guesses, r.backtracks) == (1, 0, 0)
    assert (propagate_only(digits(EASY)) > 0).all()
    assert (propagate_only(digits(HARD)) == 0).any()


def test_counts_multiple_and_zero_solutions() -> None:
    assert count_solutions(np.zeros((9, 9), int)) == 2
    assert count_solutions(np.zeros((4, 4), int), limit=1000) == 288  # all 4x4 Sudoku grids
    g = digits(EASY)
    g[0, 0] = 3  # duplicates the 3 at (0, 2)
    assert count_solutions(g) == 0 and solve(g) is None and propagate_only(g) is None
    # no duplicate givens, but no solution either (cell (0,0) has no candidate left)
    g = np.zeros((4, 4), int)
    g[0, 1], g[0, 2], g[1, 0], g[2, 0] = 1, 2, 3, 4
    assert count_solutions(g) == 0 == oracle_count(g)


def test_solver_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        rate(np.zeros(80, int))
    with pytest.raises(ValueError):
        rate(np.full(81, 10))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), keep=st.floats(0.0, 1.0))
def test_counts_agree_with_oracle_4x4(seed: int, keep: float) -> None:
    rng = np.random.default_rng(seed)
    sol = np.array(random_solution(rng, box=2)).reshape(4, 4)
    assert oracle_valid_solution(sol, np.zeros((4, 4), int))
    puzzle = np.where(rng.random((4, 4)) < keep, sol, 0)
    assert count_solutions(puzzle, limit=50) == oracle_count(puzzle, limit=50)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_counts_agree_with_oracle_9x9(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sol = np.array(random_solution(rng)).reshape(9, 9)
    assert oracle_valid_solution(sol, np.zeros((9, 9), int))
    puzzle = np.where(rng.random((9, 9)) < 0.45, sol, 0)
    assert count_solutions(puzzle) == oracle_count(puzzle)
    r = rate(puzzle, limit=1)
    assert oracle_valid_solution(np.array(r.solution).reshape(9, 9), puzzle)


def test_propagation_matches_oracle() -> None:
    for p in (EASY, HARD):
        assert np.array_equal(propagate_only(digits(p)), oracle_singles(digits(p)))


# -- generator -----------------------------------------------------------------------------------


def test_difficulty_buckets() -> None:
    assert [difficulty_bucket(g) for g in (0, 1, 5, 6, 300)] == ["0", "1-5", "1-5", "6+", "6+"]
    assert difficulty_range("easy") == (0, 0) == difficulty_range("0")
    assert difficulty_range("medium") == (1, 5) == difficulty_range("1-5")
    assert difficulty_range("hard") == (6, None) == difficulty_range("6+")
    assert difficulty_range("any") == (0, None)
    assert difficulty_range((3, 9)) == (3, 9)
    for bad in ("extreme", (5, 2), (-1, None), 7):
        with pytest.raises(ValueError):
            difficulty_range(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        difficulty_bucket(-1)


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_generated_puzzles_are_unique_and_in_bucket(difficulty: str) -> None:
    rng = np.random.default_rng(7)
    lo, hi = difficulty_range(difficulty)
    for _ in range(3):
        p, s, g, b = generate_one(rng, difficulty)
        assert p.shape == s.shape == (9, 9)
        assert oracle_valid_solution(s, p)
        assert oracle_count(p) == 1
        assert lo <= g and (hi is None or g <= hi)
        assert rate(p).guesses == g  # the reported difficulty is the solver's rating
        if difficulty == "easy":
            assert np.array_equal(oracle_singles(p), s)  # solvable by propagation alone
        else:
            assert (oracle_singles(p) == 0).any()  # needs at least one guess
        # minimal: every clue is needed
        clue = tuple(np.argwhere(p > 0)[rng.integers((p > 0).sum())])
        q = p.copy()
        q[clue] = 0
        if difficulty != "easy":
            assert oracle_count(q) == 2


def test_generator_reaches_high_guess_counts() -> None:
    p, s, g, _ = generate_one(np.random.default_rng(3), (20, None))
    assert g >= 20 and oracle_count(p) == 1


def test_generator_4x4_and_impossible_targets() -> None:
    rng = np.random.default_rng(0)
    p, s, g, _ = generate_one(rng, "easy", size=4)
    assert p.shape == (4, 4) and g == 0 and oracle_count(p) == 1
    with pytest.raises(RuntimeError, match="could not generate"):
        generate_one(rng, "hard", size=4, max_tries=5)
    with pytest.raises(ValueError):
        generate_one(rng, "easy", size=6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([4, 9]))
def test_augment_preserves_validity(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    box = 2 if size == 4 else 3
    sol = np.array(random_solution(rng, box)).reshape(size, size)
    puzzle = np.where(rng.random((size, size)) < 0.4, sol, 0)
    p2, s2 = augment(puzzle, sol, rng)
    assert p2.dtype == puzzle.dtype
    assert oracle_valid_solution(s2, p2)
    assert (p2 == 0).sum() == (puzzle == 0).sum()
    assert sorted(np.bincount(p2.reshape(-1), minlength=size + 1)[1:]) == sorted(
        np.bincount(puzzle.reshape(-1), minlength=size + 1)[1:]
    )


def test_augment_uses_every_symmetry() -> None:
    """Track two givens sharing row 1 (columns 1 and 5, digits 1 and 2) through many draws."""
    rng = np.random.default_rng(1)
    sol = np.array(random_solution(rng)).reshape(9, 9)
    puzzle = np.zeros((9, 9), int)
    puzzle[0, 0], puzzle[0, 4] = sol[0, 0], sol[0, 4]
    seen = {"same row": 0, "same column": 0, "digit changed": 0, "band moved": 0, "row in band moved": 0}
    for _ in range(60):
        p2, s2 = augment(puzzle, sol, rng)
        (r1, c1), (r2, c2) = np.argwhere(p2 > 0)
        assert (r1 == r2) != (c1 == c2)  # still share exactly one unit type
        line = r1 if r1 == r2 else c1
        seen["same row" if r1 == r2 else "same column"] += 1
        seen["digit changed"] += set(p2[p2 > 0]) != {sol[0, 0], sol[0, 4]}
        seen["band moved"] += line // 3 != 0
        seen["row in band moved"] += line % 3 != 0
        assert np.array_equal(p2[p2 > 0], s2[p2 > 0])
    assert all(v > 0 for v in seen.values()), seen


def test_generate_dataset_is_deterministic_and_parallel() -> None:
    a = generate_dataset(20, rng_seed=5, difficulty="easy", workers=1)
    b = generate_dataset(20, rng_seed=5, difficulty="easy", workers=2)
    assert len(a) == 20 and a.inputs.shape == (20, 81) and a.inputs.dtype == np.uint8
    for f in ("inputs", "labels", "guesses", "backtracks"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert a.buckets() == {"0": 20, "1-5": 0, "6+": 0}
    assert a.inputs.min() >= 1 and a.labels.min() >= 2 and a.labels.max() <= 10
    grids = a.inputs.astype(int) - 1
    assert all(oracle_count(g.reshape(9, 9)) == 1 for g in grids[:5])
    c = generate_dataset(20, rng_seed=6, difficulty="easy", workers=1)
    assert not np.array_equal(a.inputs, c.inputs)
    assert len(generate_dataset(0, rng_seed=1, workers=2)) == 0
    with pytest.raises(ValueError):
        generate_dataset(3, rng_seed=1, difficulty="nope")
