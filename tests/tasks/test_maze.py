"""MazeTask: formats, generator labels (checked by an independent BFS), checker verdicts."""

from __future__ import annotations

import csv
import io
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.maze import generate_maze

MAZE = [  # 6x6, one shortest route of 7 steps from S (1,1) to G (6,4)... drawn with o
    "S#    ",
    "o# ## ",
    "o#  # ",
    "o## # ",
    "oooo# ",
    "###G##",
]


def text(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def oracle_bfs(rows: list[str]) -> int:
    """Steps from S to G over non-wall cells (independent of the package)."""
    n = len(rows)
    start = next((r, c) for r in range(n) for c in range(n) if rows[r][c] == "S")
    dist = {start: 0}
    q = deque([start])
    while q:
        r, c = q.popleft()
        if rows[r][c] == "G":
            return dist[(r, c)]
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < n and 0 <= nc < n and rows[nr][nc] != "#" and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                q.append((nr, nc))
    return -1


def oracle_is_path(rows: list[str]) -> bool:
    """'o' cells + S + G form a simple chain S..G: S and G have one chain neighbour, o cells two."""
    n = len(rows)
    on = {(r, c) for r in range(n) for c in range(n) if rows[r][c] in "oSG"}
    for r, c in on:
        k = sum((nr, nc) in on for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)))
        if k != (1 if rows[r][c] in "SG" else 2):
            return False
    return True


@pytest.fixture
def task():
    return get_task("maze", size=6)


def test_token_map_is_official() -> None:
    t = get_task("maze")
    assert t.token_map() == {"<pad>": 0, "#": 1, " ": 2, "S": 3, "G": 4, "o": 5}
    assert (t.seq_len, t.vocab_size, t.grid_shape) == (900, 6, (30, 30))
    # the official builder's char2id: CHARSET "# SGo" -> 1..5
    char2id = np.zeros(256, np.uint8)
    char2id[np.array(list(map(ord, "# SGo")))] = np.arange(5) + 1
    m = get_task("maze", size=6)
    (p,) = m.parse(text(MAZE))
    assert np.array_equal(p.label, char2id[np.frombuffer("".join(MAZE).encode(), np.uint8)])


def test_parse_path_input_gives_puzzle_and_label(task) -> None:
    (p,) = task.parse(text(MAZE), "m.txt")
    assert p.source == "m.txt:1" and p.label is not None
    assert (p.tokens == 5).sum() == 0 and (p.label == 5).sum() == 7
    assert np.array_equal(np.where(p.label == 5, 2, p.label), p.tokens)
    (bare,) = task.parse(text([r.replace("o", " ") for r in MAZE]))
    assert bare.label is None and np.array_equal(bare.tokens, p.tokens)


def test_round_trip_and_several_mazes(task) -> None:
    (p,) = task.parse(text(MAZE))
    assert task.render(p.label) == "\n".join(MAZE)
    assert task.decode(p.label)[5, 3] == "G" and task.decode(p.tokens).dtype.kind == "U"
    both = task.parse(text(MAZE) + "\n\n" + text(MAZE) + text(MAZE), "m.txt")
    assert [q.source for q in both] == ["m.txt:1", "m.txt:9", "m.txt:15"]
    assert all(q.same_as(p) for q in both)
    assert np.array_equal(task.encode(task.decode(p.label)), p.label)


def test_render_highlight(task) -> None:
    (p,) = task.parse(text(MAZE))
    lines = task.render(p.label, highlight=p.label == 5).splitlines()
    assert lines[0] == "S # " + " " * 8 and lines[1].startswith("o*# ")
    assert "\x1b[1;30;43m" in task.render(p.label, highlight=p.label == 5, color=True)
    assert "\x1b[30;42m" in task.render(p.label, color=True)


def test_official_csv(task) -> None:
    (p,) = task.parse(text(MAZE))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source", "q", "a", "rating"])
    w.writerow(["gen", "".join(MAZE).replace("o", " "), "".join(MAZE), 7])
    (c,) = task.parse(buf.getvalue(), "m.csv")
    assert c.same_as(p) and c.source == "m.csv:2" and c.meta["rating"] == "7"


@pytest.mark.parametrize(
    "rows, line, message",
    [
        (MAZE[:2] + ["o#  #"] + MAZE[3:], 1, "maze that starts here, line 3: row has 5 cells, expected 6"),
        (MAZE[:3] + ["o## #x"] + MAZE[4:], 1, "line 4: bad character 'x' at column 6"),
        (MAZE[:1] + ["o#\t## "] + MAZE[2:], 1, "line 2: bad character '\\t' at column 3"),
        (["S#   S"] + MAZE[1:], 1, "two starts (S) at line 1 and line 1"),
        (MAZE[:2] + ["o#  #S"] + MAZE[3:], 1, "two starts (S) at line 1 and line 3"),
        (MAZE[:5] + ["###G#G"], 1, "line 6: two goals (G)"),
        ([MAZE[0].replace("S", "o")] + MAZE[1:], 1, "no start (S)"),
        (MAZE[:4] + ["oo o# "] + MAZE[5:], 1, "path (o) is broken: path breaks at (5, 2)"),
        (MAZE[:4], 1, "has 4 rows, expected 6 (end of input)"),
        (MAZE[:3] + [""] + MAZE[3:], 1, "the maze that starts here has 3 rows, expected 6 (blank line at line 4"),
    ],
)
def test_malformed_inputs(task, rows: list[str], line: int, message: str) -> None:
    with pytest.raises(ParseError) as ei:
        task.parse(text(rows), "maze.txt")
    assert ei.value.line == line, str(ei.value)
    assert message in ei.value.message, str(ei.value)
    assert str(ei.value).startswith(f"maze.txt:{line}: ")


def test_malformed_second_maze_names_its_lines(task) -> None:
    bad = MAZE[:2] + ["o#  #S"] + MAZE[3:]
    with pytest.raises(ParseError) as ei:
        task.parse(text(MAZE) + "\n" + text(bad), "m.txt")
    assert ei.value.line == 8 and "two starts (S) at line 8 and line 10" in ei.value.message


def test_malformed_csv(task) -> None:
    with pytest.raises(ParseError) as ei:
        task.parse("source,q,a,rating\nx,##,##,1\n", "m.csv")
    assert ei.value.line == 2 and "expected 36 cells, found 2" in ei.value.message


def test_size_bounds() -> None:
    from hrm.errors import ConfigError

    for bad in (3, 31):
        with pytest.raises(ConfigError):
            get_task("maze", size=bad)


# -- generator -------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([4, 5, 9, 12, 30]), loops=st.floats(0.0, 0.5))
def test_generated_labels_are_shortest_paths(seed: int, size: int, loops: float) -> None:
    task = get_task("maze", size=size)
    (p,) = task.generate(1, np.random.default_rng(seed), loop_fraction=loops)
    rows = ["".join(r) for r in task.decode(p.tokens)]
    lab = ["".join(r) for r in task.decode(p.label)]
    assert sum(r.count("S") for r in rows) == 1 and sum(r.count("G") for r in rows) == 1
    assert "o" not in "".join(rows)
    d = oracle_bfs(rows)
    assert d >= 1 and d == p.meta["distance"]
    assert "".join(lab).count("o") == d - 1
    assert oracle_is_path(lab)
    assert all(a == b or (a == " " and b == "o") for a, b in zip("".join(rows), "".join(lab)))
    assert task.check(p, p.label).correct is True
    (again,) = task.parse("\n".join(lab))  # the drawn label parses back to the same puzzle
    assert again.same_as(p)


def test_generator_places_s_and_g_far_apart_and_makes_loops() -> None:
    rng = np.random.default_rng(0)
    dists, extra_routes = [], 0
    for _ in range(5):
        puzzle, label, d = generate_maze(rng, 30, loop_fraction=0.15)
        dists.append(d)
        free = int((puzzle != 1).sum())
        # a perfect maze on k*k cells has k*k + k*k - 1 free squares; loops add more
        extra_routes += free > 2 * 15 * 15 - 1
    assert min(dists) >= 30 and extra_routes == 5
    with pytest.raises(ValueError):
        generate_maze(rng, 30, loop_fraction=2.0)


# -- checker ---------------------------------------------------------------------------------

OPEN = [  # two shortest routes around the block, one longer
    "S    #",
    " ##  #",
    " ##  #",
    "    G#",
    "######",
    "######",
]


def answer(task, rows: list[str]) -> np.ndarray:
    return task.encode(rows)


def test_checker_accepts_label_and_other_shortest_path(task) -> None:
    lab = ["Sooo #", " ##o #", " ##o #", "   oG#", "######", "######"]
    (p,) = task.parse(text(lab))
    assert task.check(p, p.label) == type(task.check(p, p.label))(True, True, "shortest path, length 7")
    other = ["S    #", "o##  #", "o##  #", "ooooG#", "######", "######"]
    v = task.check(p, answer(task, other))
    assert v.valid and v.correct is False and "not the label" in v.reason


@pytest.mark.parametrize(
    "rows, reason",
    [
        (["So   #", " ##  #", " ##  #", "    G#", "######", "######"], "path breaks at (1, 2)"),
        (["S    #", " ##  #", " ##  #", "    G#", "######", "######"], "the path does not leave S at (1, 1)"),
        (["Sooo #", " ##oo#", " ## o#", "   oG#", "######", "######"], "path cells off the route"),
        (
            ["Soooo#", " ##oo#", " ##oo#", "   oG#", "######", "######"],
            "the path has 9 cells but the route from S to G needs 6 (it branches)",
        ),
        (["Sooo #", " #oo #", " ##  #", "    G#", "######", "######"], "wall at (2, 3) changed to 'o'"),
        (["Sooo #", " ##o #", " ##o #", "   oGo", "######", "######"], "wall at (4, 6) changed to 'o'"),
        (["oooo #", " ##o #", " ##o #", "   oG#", "######", "######"], "start S at (1, 1) changed to 'o'"),
        (["Sooo #", " ##o #", " ##o #", "#  oG#", "######", "######"], "free cell at (4, 1) changed to '#'"),
    ],
)
def test_checker_rejects(task, rows: list[str], reason: str) -> None:
    (p,) = task.parse(text(OPEN))
    v = task.check(p, answer(task, rows))
    assert not v.valid and v.correct is None
    assert reason in v.reason, v.reason


RING = [  # a wall block with G inside, entered from the right: short way right, long way down
    "S    #",
    " ### #",
    " #G  #",
    " ### #",
    "     #",
    "######",
]


def test_checker_rejects_non_optimal_path(task) -> None:
    (p,) = task.parse(text(RING))
    long_way = [
        "S    #",
        "o### #",
        "o#Goo#",
        "o###o#",
        "ooooo#",
        "######",
    ]
    assert oracle_is_path(long_way) and oracle_bfs(RING) == 8
    v = task.check(p, answer(task, long_way))
    assert not v.valid and v.reason == "path length 12, shortest is 8"
    short_way = ["Soooo#", " ###o#", " #Goo#", " ### #", "     #", "######"]
    v = task.check(p, answer(task, short_way))
    assert v.valid and v.correct is None and v.reason == "shortest path, length 8"


def test_checker_rejects_pad_tokens(task) -> None:
    (p,) = task.parse(text(OPEN))
    pad = p.tokens.copy()
    pad[3] = 0
    v = task.check(p, pad)
    assert not v.valid and "hold no maze symbol, first at (1, 4) (token 0)" in v.reason


def test_min_distance_rejects_short_mazes() -> None:
    task = get_task("maze", size=10)
    ps = task.generate(3, np.random.default_rng(0), min_distance=14)
    assert all(p.meta["distance"] >= 14 for p in ps)
    with pytest.raises(RuntimeError, match="distance >= 500"):
        task.generate(1, np.random.default_rng(0), min_distance=500, max_tries=3)
    with pytest.raises(TypeError):
        task.generate(1, np.random.default_rng(0), difficulty="hard")
