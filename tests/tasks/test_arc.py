"""ARC: JSON validation (per task), canvas encoding/crop against the official rules, augmentations, voting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hrm.errors import ParseError
from hrm.tasks import get_task
from hrm.tasks.arc import ArcRecord, crop, encode_grid, encode_pair, load_arc_json, render_side_by_side
from hrm.tasks.arc_augment import (
    DIHEDRAL_INVERSE,
    IDENTITY,
    Augmentation,
    dihedral,
    inverse_dihedral,
    random_augmentations,
    random_color_perm,
)
from hrm.tasks.arc_vote import ArcVoter, Candidate, pass_at_k, vote

TASK = {
    "train": [
        {"input": [[1, 0], [0, 0]], "output": [[0, 1], [0, 0]]},
        {"input": [[0, 0, 3]], "output": [[3, 0, 0]]},
    ],
    "test": [
        {"input": [[5, 0, 0], [0, 6, 0]], "output": [[0, 0, 5], [0, 6, 0]]},
        {"input": [[7]], "output": [[7]]},
    ],
}

grids = hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 30), st.integers(1, 30)),
    elements=st.integers(0, 9),
)
perms = st.permutations(list(range(1, 10))).map(lambda p: (0, *p))


# -- oracles: the official semantics, written out cell by cell --------------------------------------


def oracle_canvas(grid: np.ndarray, r0: int = 0, c0: int = 0) -> np.ndarray:
    h, w = grid.shape
    out = np.zeros((30, 30), np.int64)
    for r in range(30):
        for c in range(30):
            if r0 <= r < r0 + h and c0 <= c < c0 + w:
                out[r, c] = grid[r - r0, c - c0] + 2
            elif r == r0 + h and c0 <= c < c0 + w:
                out[r, c] = 1  # row below the grid, grid columns only
            elif c == c0 + w and r0 <= r < r0 + h:
                out[r, c] = 1  # column right of the grid, grid rows only
    return out.reshape(-1)


def oracle_crop(tokens: np.ndarray) -> np.ndarray:
    g = np.asarray(tokens).reshape(30, 30)
    best, size, width = 0, (0, 0), 30
    for rows in range(1, 31):
        for c in range(width):
            if not 2 <= g[rows - 1, c] <= 11:
                width = c
                break
        if rows * width > best:
            best, size = rows * width, (rows, width)
    return g[: size[0], : size[1]] - 2


OFFICIAL_DIHEDRAL = {
    0: lambda a: a,
    1: lambda a: np.rot90(a, 1),
    2: lambda a: np.rot90(a, 2),
    3: lambda a: np.rot90(a, 3),
    4: np.fliplr,
    5: np.flipud,
    6: lambda a: a.T,
    7: lambda a: np.fliplr(np.rot90(a, 1)),
}


# -- parsing -------------------------------------------------------------------------------------


def test_token_map_is_official() -> None:
    t = get_task("arc")
    tm = t.token_map()
    assert tm["<pad>"] == 0 and tm["<eos>"] == 1 and tm["0"] == 2 and tm["9"] == 11 and len(tm) == 12
    assert (t.seq_len, t.vocab_size, t.grid_shape) == (900, 12, (30, 30))


def test_parse_task_file(tmp_path) -> None:
    f = tmp_path / "007bbfb7.json"
    f.write_text(json.dumps(TASK))
    t = get_task("arc")
    ps = t.parse_file(f)
    assert len(ps) == 2 and [p.source for p in ps] == [f"{f}:test[0]", f"{f}:test[1]"]
    p = ps[0]
    assert p.meta["task_id"] == "007bbfb7" and p.meta["test_index"] == 0 and p.puzzle_id == 0
    assert len(p.meta["train"]) == 2 and p.meta["train"][1][1].tolist() == [[3, 0, 0]]
    assert np.array_equal(p.tokens, oracle_canvas(np.array(TASK["test"][0]["input"])))
    assert np.array_equal(t.decode(p.label), np.array(TASK["test"][0]["output"]))
    assert t.check(p, p.label).correct is True
    assert t.render(p.tokens) == "5 0 0\n0 6 0"


def test_parse_multi_task_and_hidden_outputs() -> None:
    hidden = {"train": TASK["train"], "test": [{"input": [[1, 2]]}]}
    t = get_task("arc")
    ps = t.parse(json.dumps({"aaa": TASK, "bbb": hidden}), "challenges.json")
    assert [p.source for p in ps] == [
        "challenges.json:aaa/test[0]", "challenges.json:aaa/test[1]", "challenges.json:bbb/test[0]"
    ]
    assert ps[2].label is None and ps[2].meta["output"] is None
    v = t.check(ps[2], encode_grid([[1, 2]]))
    assert v.valid and v.correct is None and v.reason == "1x2 grid"


def _bad(path: str, value) -> dict:
    task = json.loads(json.dumps(TASK))
    obj = task
    keys = path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if k.isdigit() else obj[k]
    last = keys[-1]
    if value is KeyError:
        del obj[last]
    else:
        obj[int(last) if last.isdigit() else last] = value
    return task


@pytest.mark.parametrize(
    "task, message",
    [
        (_bad("train.1.input", [[1, 2], [3]]), "train[1].input: row 2 has 1 cells, row 1 has 2 (ragged grid)"),
        (_bad("test.0.output", [[1, 10]]), "test[0].output: row 1, column 2: 10 is not a colour 0-9"),
        (_bad("train.0.input", [[1, True]]), "train[0].input: row 1, column 2: True is not a colour 0-9"),
        (_bad("train.0.input", [[1.5]]), "train[0].input: row 1, column 1: 1.5 is not a colour 0-9"),
        (_bad("train.0.input", [[0] * 31]), "train[0].input: row 1 has 31 cells, expected 1 to 30"),
        (_bad("train.0.input", [[0]] * 31), "train[0].input: 31 rows, at most 30"),
        (_bad("train.0.input", []), "train[0].input: empty grid"),
        (_bad("train.0.input", [[]]), "train[0].input: row 1 has 0 cells"),
        (_bad("train.0.input", "1,2"), "train[0].input: expected a list of rows, got str"),
        (_bad("train.1.output", KeyError), "train[1]: missing 'output'"),
        (_bad("test.0.input", KeyError), "test[0]: missing 'input'"),
        (_bad("test", KeyError), "missing 'test'"),
        (_bad("test", []), "'test' is empty"),
        (_bad("train.0", [1, 2]), "train[0]: expected an object with 'input' and 'output'"),
    ],
)
def test_malformed_task_names_file_and_pair(task: dict, message: str) -> None:
    with pytest.raises(ParseError) as ei:
        get_task("arc").parse(json.dumps(task), "t.json")
    assert ei.value.source == "t.json" and message in ei.value.message, str(ei.value)


def test_malformed_multi_task_names_the_task() -> None:
    with pytest.raises(ParseError, match=r"t.json:\d+: task bbb: train\[1\].input: row 2"):
        get_task("arc").parse(json.dumps({"aaa": TASK, "bbb": _bad("train.1.input", [[1, 2], [3]])}), "t.json")


def test_parse_records_refuses_bad_tasks_and_keeps_the_others() -> None:
    """Contract C2: one item per record; a bad task is one ParseError naming task, pair, field and the
    line where the task starts; the good tasks around it still give their puzzles."""
    big = [[0] * 31] * 2
    tasks = {"aaa": TASK, "bbb": _bad("test.0.input", big), "ccc": _bad("train.0.output", [[1, 12]]),
             "ddd": _bad("train.1.input", [[1, 2], [3]]), "eee": {"train": "x", "test": []}, "fff": TASK}
    text = json.dumps(tasks, indent=1)
    items = get_task("arc").parse_records(text, "c.json")
    kinds = [type(x).__name__ for x in items]
    assert kinds == ["Puzzle", "Puzzle", "ParseError", "ParseError", "ParseError", "ParseError", "Puzzle", "Puzzle"]
    errs = [x for x in items if isinstance(x, ParseError)]
    assert [e.message.split(":")[0] for e in errs] == ["task bbb", "task ccc", "task ddd", "task eee"]
    assert "test[0].input: row 1 has 31 cells" in errs[0].message
    assert "train[0].output: row 1, column 2: 12 is not a colour 0-9" in errs[1].message
    assert "train[1].input: row 2 has 1 cells, row 1 has 2 (ragged grid)" in errs[2].message
    assert "'train' must be a list of pairs" in errs[3].message
    lines = text.split("\n")
    for e, tid in zip(errs, ["bbb", "ccc", "ddd", "eee"]):
        assert lines[e.line - 1].strip().startswith(f'"{tid}"'), (e.line, tid)
    assert [p.meta["task_id"] for p in items if not isinstance(p, ParseError)] == ["aaa", "aaa", "fff", "fff"]
    # broken JSON: one error with its line; parse() keeps raising the first error
    (bad,) = get_task("arc").parse_records('{"a": {"train": [],\n "test": [}}', "b.json")
    assert bad.line == 2 and "invalid JSON" in bad.message
    with pytest.raises(ParseError, match="task bbb"):
        get_task("arc").parse(text, "c.json")


def test_invalid_json_names_line_and_column() -> None:
    text = '{\n  "train": [\n    {"input": [[1, 2]], "output": [[1 2]]}\n  ]\n}'
    with pytest.raises(ParseError) as ei:
        get_task("arc").parse(text, "broken.json")
    assert ei.value.line == 3 and "invalid JSON" in ei.value.message and "column 39" in ei.value.message
    with pytest.raises(ParseError, match="expected an ARC task"):
        get_task("arc").parse("[1, 2]", "x.json")


# -- canvas --------------------------------------------------------------------------------------


def test_canvas_marker_layout_exact() -> None:
    g = np.array([[3, 4, 5], [6, 7, 8]])
    c = encode_grid(g).reshape(30, 30)
    assert c[:2, :3].tolist() == [[5, 6, 7], [8, 9, 10]]
    assert c[2, :3].tolist() == [1, 1, 1] and c[:2, 3].tolist() == [1, 1]
    assert c[2, 3] == 0  # the corner stays PAD
    assert c.sum() == 5 + 6 + 7 + 8 + 9 + 10 + 5
    full = encode_grid(np.zeros((30, 30), int))
    assert (full == 2).all()  # no room for markers
    c = encode_grid(np.ones((30, 2), int)).reshape(30, 30)
    assert (c[:, 2] == 1).all() and (c[:, 3:] == 0).all()
    with pytest.raises(ValueError):
        encode_grid(g, offset=(29, 0))


@settings(max_examples=60, deadline=None)
@given(g=grids, data=st.data())
def test_canvas_matches_official_and_crop_inverts(g: np.ndarray, data) -> None:
    r0 = data.draw(st.integers(0, 30 - g.shape[0]))
    c0 = data.draw(st.integers(0, 30 - g.shape[1]))
    assert np.array_equal(encode_grid(g, (r0, c0)), oracle_canvas(g, r0, c0))
    tokens = encode_grid(g)
    assert np.array_equal(crop(tokens), g)
    assert np.array_equal(get_task("arc").decode(tokens), g)


@settings(max_examples=60, deadline=None)
@given(tokens=hnp.arrays(np.int64, 900, elements=st.integers(0, 11)))
def test_crop_matches_official_on_arbitrary_canvases(tokens: np.ndarray) -> None:
    assert np.array_equal(crop(tokens), oracle_crop(tokens))


def test_crop_examples() -> None:
    t = np.zeros((30, 30), int)
    assert crop(t).shape == (0, 0)
    t[:3, :4] = 2
    t[1, 2] = 1  # an end marker inside: widths 4, 2, 2 -> areas 4, 4, 6
    assert crop(t.reshape(-1)).shape == (3, 2)
    one = np.zeros((1, 1), int)
    (p,) = get_task("arc").puzzles_from_records([ArcRecord("x", (), ((one, one),))])
    v = get_task("arc").check(p, np.zeros(900, int))
    assert not v.valid and v.correct is False and "no grid" in v.reason


def test_encode_pair_translation_like_the_train_split() -> None:
    a, b = np.ones((3, 5), int), np.ones((7, 2), int)
    ta, tb = encode_pair(a, b)
    assert np.array_equal(ta, oracle_canvas(a)) and np.array_equal(tb, oracle_canvas(b))
    rng = np.random.default_rng(0)
    offsets = set()
    for _ in range(50):
        ta, tb = encode_pair(a, b, rng)
        (r0, c0) = np.argwhere(ta.reshape(30, 30) >= 2)[0]
        (r1, c1) = np.argwhere(tb.reshape(30, 30) >= 2)[0]
        assert (r0, c0) == (r1, c1) and r0 <= 30 - 7 and c0 <= 30 - 5
        offsets.add((int(r0), int(c0)))
    assert len(offsets) > 10


# -- augmentation --------------------------------------------------------------------------------


def test_dihedral_numbering_matches_official() -> None:
    a = np.arange(6).reshape(2, 3)
    for tid in range(8):
        assert np.array_equal(dihedral(a, tid), OFFICIAL_DIHEDRAL[tid](a))
        assert np.array_equal(dihedral(dihedral(a, tid), DIHEDRAL_INVERSE[tid]), a)
    assert DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)
    with pytest.raises(ValueError):
        dihedral(a, 8)


@settings(max_examples=120, deadline=None)
@given(g=grids, tid=st.integers(0, 7), perm=perms)
def test_augmentations_invert_exactly(g: np.ndarray, tid: int, perm: tuple) -> None:
    """Every one of the 8 transforms with random colour permutations: the inverse maps back exactly,
    and the name round-trips (what the vote relies on)."""
    aug = Augmentation(tid, perm)
    t = aug.apply(g)
    # colours map first, then the transform, as the official builder does
    assert np.array_equal(t, OFFICIAL_DIHEDRAL[tid](np.array(perm)[g]))
    assert np.array_equal(aug.invert(t), g)
    assert np.array_equal(inverse_dihedral(dihedral(g, tid), tid), g)
    assert ((t == 0) == (OFFICIAL_DIHEDRAL[tid](g) == 0)).all()  # colour 0 stays 0
    # the official notebook's inverse: argsort of the name's digits, inverse dihedral
    suffix = aug.name("abc123").split("_")[-2:] if not aug.is_identity else ["t0", "0123456789"]
    official = np.argsort([int(c) for c in suffix[1]])[OFFICIAL_DIHEDRAL[DIHEDRAL_INVERSE[int(suffix[0][1:])]](t)]
    assert np.array_equal(official, g)
    assert Augmentation.parse(aug.name("abc123")) == ("abc123", aug)
    assert Augmentation.parse(aug.name("my_task_2")) == ("my_task_2", aug)  # ids with underscores


def test_random_color_perm_fixes_black() -> None:
    rng = np.random.default_rng(0)
    ps = [random_color_perm(rng) for _ in range(50)]
    assert all(p[0] == 0 and sorted(p) == list(range(10)) for p in ps)
    assert len(set(ps)) == 50
    with pytest.raises(ValueError, match="permutation of 0..9"):
        Augmentation(0, (0, 1, 2))
    with pytest.raises(ValueError, match="keeps colour 0"):
        Augmentation(0, (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(ValueError, match="0..7"):
        Augmentation(8)


def test_random_augmentations_are_distinct_like_the_official_builder() -> None:
    """Augmented tasks that coincide (a symmetric, one-colour task) are dropped: the builder keeps only
    distinct puzzles, so such a task gets fewer than asked."""
    rng = np.random.default_rng(0)
    (rec,) = load_arc_json(json.dumps(TASK), "x.json")
    augs = random_augmentations([*rec.train, *rec.test], 30, rng)
    assert len(augs) == 30 and len(set(augs)) == 30 and IDENTITY not in augs
    plain = np.zeros((3, 3), int)
    plain[1, 1] = 1  # symmetric under all 8 transforms: only the 9 recolourings of the centre differ
    augs = random_augmentations([(plain, plain)], 30, np.random.default_rng(0))
    assert len(augs) == 8 and len({a.apply(plain).tobytes() for a in augs}) == 8


def test_aug_names_like_the_official_builder() -> None:
    perm = (0, 3, 1, 2, 4, 5, 6, 7, 8, 9)
    assert Augmentation(5, perm).name("007bbfb7") == "007bbfb7_t5_0312456789"
    assert Augmentation(5, perm).suffix == "t5_0312456789"
    assert Augmentation.parse("007bbfb7") == ("007bbfb7", IDENTITY) and IDENTITY.name("007bbfb7") == "007bbfb7"


def test_augment_record_and_invert_predictions() -> None:
    (rec,) = load_arc_json(json.dumps(TASK), "x.json")
    a = Augmentation(1, (0, 9, 8, 7, 6, 5, 4, 3, 2, 1))
    aug = rec.augmented(a)
    assert aug.task_id == "x_t1_0987654321"
    for (i, o), (ai, ao) in zip(rec.train + rec.test, aug.train + aug.test):
        assert np.array_equal(a.invert(ai), i)
        assert np.array_equal(a.invert(ao), o)
    assert aug.to_json()["test"][1] == {"input": [[3]], "output": [[3]]}


# -- voting --------------------------------------------------------------------------------------


def test_vote_ranks_by_count_then_mean_sigmoid_q() -> None:
    a, b, c = np.zeros((1, 1), int), np.ones((1, 1), int), np.full((2, 1), 2)
    ranked = vote([(a, 0.0), (b, 3.0), (a, -4.0), (c, 9.0), (b, -3.0), (c, -9.0)])
    # a: 2 votes, mean sigmoid (0.5 + 0.018)/2; b: 2 votes, mean 0.5; c: 2 votes, 0.5
    assert [int(x.count) for x in ranked] == [2, 2, 2]
    assert ranked[-1].grid.tolist() == [[0]]
    ranked = vote([(a, 0.0), (b, 5.0), (a, 0.0)])
    assert ranked[0].grid.tolist() == [[0]] and ranked[0].count == 2 and ranked[1].count == 1
    assert ranked[0].mean_q == pytest.approx(0.5) and ranked[1].mean_q == pytest.approx(1 / (1 + np.exp(-5)))
    # same count: higher mean sigmoid(q) wins
    ranked = vote([(a, -1.0), (b, 1.0)])
    assert ranked[0].grid.tolist() == [[1]]
    ranked = vote([(a, 0.2), (b, 0.9)], q_is_logit=False)
    assert ranked[0].mean_q == pytest.approx(0.9)
    # the same grid stored with another dtype is the same vote
    assert len(vote([(a.astype(np.uint8), 0.0), (a, 0.0)])) == 1


def test_pass_at_k_needs_every_test_input() -> None:
    x, y, z = np.zeros((1, 1), int), np.ones((1, 1), int), np.full((1, 1), 2)
    cand = lambda *gs: [Candidate(g, 1, 0.5) for g in gs]  # noqa: E731
    tasks = {
        "t1": [(cand(x, y), x)],  # solved at k=1
        "t2": [(cand(y, x), x)],  # solved at k=2
        "t3": [(cand(x), x), (cand(z, y), y)],  # second test only at k=2
        "t4": [(cand(y, z), x)],  # never
    }
    assert pass_at_k(tasks, ks=(1, 2, 10)) == {1: 0.25, 2: 0.75, 10: 0.75}
    assert pass_at_k({}, ks=(1,)) == {1: 0.0}


def test_voter_end_to_end_with_augmented_runs() -> None:
    (rec,) = load_arc_json(json.dumps(TASK), "x.json")
    rng = np.random.default_rng(0)
    voter = ArcVoter()
    for k, (inp, out) in enumerate(rec.test):
        for j in range(6):
            a = Augmentation(int(rng.integers(8)), random_color_perm(rng))
            name = a.name(rec.task_id)
            seen_in, right, wrong = a.apply(inp), a.apply(out), a.apply(np.full_like(out, 4))
            # test 0: 3 right + 3 wrong, the wrong ones are more confident -> right only at k=2
            # test 1: always right
            pred = right if (k == 1 or j % 2 == 0) else wrong
            q = -1.0 if pred is right and k == 0 else 2.0
            voter.add_tokens(name, encode_grid(seen_in), encode_grid(pred), q)
    r0 = voter.ranked("x", rec.test[0][0])
    assert [c.count for c in r0] == [3, 3] and r0[0].grid.tolist() == [[4, 4, 4], [4, 4, 4]]
    assert voter.ranked("x", rec.test[1][0])[0].count == 6
    assert voter.ranked("x", np.zeros((3, 3), int)) == []
    assert voter.score([rec]) == {1: 0.0, 2: 1.0}
    hidden = ArcRecord("x", rec.train, ((rec.test[0][0], None),))
    with pytest.raises(ValueError, match="no output"):
        voter.score([hidden])


def test_generate_synthetic_tasks_are_consistent() -> None:
    t = get_task("arc")
    for p in t.generate(5, np.random.default_rng(0)):
        rule = p.meta["rule"]
        for i, o in p.meta["train"]:
            assert np.array_equal(rule.apply(i), o)
        assert np.array_equal(rule.apply(p.meta["input"]), t.decode(p.label))
        assert t.check(p, p.label).correct


def test_render_canvas_color_and_highlight() -> None:
    t = get_task("arc")
    tokens = encode_grid([[1, 2], [3, 4]])
    mask = np.zeros(900, bool)
    mask[1] = True
    assert t.render(tokens, highlight=mask) == "1 2*\n3 4"
    canvas = t.render(tokens, canvas=True).splitlines()
    assert len(canvas) == 30 and canvas[0].startswith("1 2 $ . .") and canvas[2].startswith("$ $ .")
    assert "\x1b[97;48;2;0;116;217m1 " in t.render(tokens, color=True)
    assert t.render(np.zeros(900, int)) == "(empty grid)"


def test_render_side_by_side_aligns_titled_grids() -> None:
    text = render_side_by_side([("input", np.arange(6).reshape(2, 3)), ("attempt 1", np.ones((3, 1), int)),
                                ("expected", None), ("none", np.zeros((0, 0), int))])
    assert text.split("\n") == ["input   attempt 1   expected   none",
                                 "0 1 2   1           -          (empty grid)",
                                 "3 4 5   1", "        1"]
    coloured = render_side_by_side([("in", np.zeros((1, 2), int)), ("out", np.ones((1, 1), int))], color=True)
    assert coloured.count("\x1b[0m") == 3 and coloured.split("\n")[0] == "in     out"
