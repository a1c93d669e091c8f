"""hrm-run: every accepted input format parses; each malformed input is named with its line,
the exit code is non-zero, and the other inputs are still solved and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")

from hrm.cli.run import main  # noqa: E402
from hrm.tasks import get_task  # noqa: E402

S4 = get_task("sudoku", size=4)


def digits(tokens) -> str:
    return "".join("." if t <= 1 else str(t - 1) for t in np.asarray(tokens))


@pytest.fixture(scope="module")
def sudokus():
    return S4.generate(3, np.random.default_rng(3))


def run(deploy, *args, input=None):
    result = CliRunner().invoke(main, [str(deploy), "--batch", "4", *map(str, args)], input=input)
    return result


def records(output: str) -> tuple[list[dict], list[dict], dict]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    res = [d for d in lines if "segments" in d]
    errs = [d for d in lines if "error" in d]
    summary = next(d["summary"] for d in lines if "summary" in d)
    return res, errs, summary


def test_every_sudoku_format(tiny_deploy, tmp_path, sudokus):
    a, b, c = sudokus
    q, sol = digits(a.tokens), digits(a.label)
    (tmp_path / "lines.txt").write_text(f"# comment\n{q}\n\n{digits(b.tokens)} {digits(b.label)}\n")
    (tmp_path / "grid.txt").write_text("\n".join(
        " ".join(digits(c.tokens)[r * 4:(r + 1) * 4][:2]) + " | " + " ".join(digits(c.tokens)[r * 4 + 2:(r + 1) * 4])
        + ("\n----+----" if r == 1 else "") for r in range(4)) + "\n")
    (tmp_path / "official.csv").write_text(f"source,q,a,rating\nx,{q},{sol},0\ny,{digits(b.tokens)},{digits(b.label)},1\n")
    r = run(tiny_deploy, "--json", q, tmp_path / "lines.txt", tmp_path / "grid.txt", tmp_path / "official.csv")
    assert r.exit_code == 0, r.output
    res, errs, summary = records(r.output)
    assert not errs
    assert [d["source"] for d in res] == ["<arg 1>:1", f"{tmp_path}/lines.txt:2", f"{tmp_path}/lines.txt:4",
                                          f"{tmp_path}/grid.txt:1", f"{tmp_path}/official.csv:2",
                                          f"{tmp_path}/official.csv:3"]
    assert summary["total"] == 6 and summary["rejected"] == 0
    # a labelled input gets a correctness verdict, an unlabelled one does not
    assert res[0]["correct"] is None and res[2]["correct"] in (True, False)
    for d in res:
        assert len(d["answer"]) == 4 and d["segments"] >= 1 and d["valid"] in (True, False)


def test_stdin_dash_and_piped(tiny_deploy, sudokus):
    text = "\n".join(digits(p.tokens) for p in sudokus) + "\n"
    for args in (["-"], []):
        r = run(tiny_deploy, "--json", *args, input=text)
        assert r.exit_code == 0, r.output
        res, _, _ = records(r.output)
        assert [d["source"] for d in res] == ["<stdin>:1", "<stdin>:2", "<stdin>:3"]


@pytest.mark.parametrize("bad, line, words", [
    ("1..x............", 2, "bad character 'x'"),
    ("1....", 2, "expected 16 cells, found 5"),
    ("11..............", 2, "givens conflict"),
    ("a,b,c", 2, "CSV row has 3 fields"),
])
def test_malformed_line_is_named_and_others_still_solved(tiny_deploy, tmp_path, sudokus, bad, line, words):
    good = [digits(p.tokens) for p in sudokus]
    f = tmp_path / "mixed.txt"
    f.write_text(f"{good[0]}\n{bad}\n{good[1]}\n")
    r = run(tiny_deploy, "--json", f, good[2])
    assert r.exit_code == 1
    res, errs, summary = records(r.output)
    assert [e["line"] for e in errs] == [line] and words in errs[0]["error"] and errs[0]["source"] == str(f)
    assert [d["source"] for d in res] == [f"{f}:1", f"{f}:3", "<arg 2>:1"]
    assert summary["rejected"] == 1 and summary["total"] == 3
    assert f"{f}:{line}: " in r.output  # human-readable line on stderr too (mixed into output by CliRunner)


def test_broken_grid_and_missing_file(tiny_deploy, tmp_path, sudokus):
    grid = tmp_path / "grid.txt"
    grid.write_text("1 . | . .\n. . | . .\n\n. . | . 4\n")
    r = run(tiny_deploy, "--json", grid, tmp_path / "nope.txt", digits(sudokus[0].tokens))
    assert r.exit_code == 1
    res, errs, _ = records(r.output)
    assert [(e["source"], e["line"]) for e in errs[:2]] == [(str(grid), 1), (str(grid), 4)]  # each grid at its start
    assert "has 2 rows, expected 4 (blank line at line 3)" in errs[0]["error"]
    assert errs[2]["source"] == str(tmp_path / "nope.txt") and "no such file" in errs[2]["error"]
    assert len(res) == 1


def test_human_output_trace_and_summary(tiny_deploy, sudokus):
    q = digits(sudokus[0].tokens)
    r = run(tiny_deploy, "--trace", "--halting", "fixed", "--max-segments", "3", "--no-color", q)
    assert r.exit_code == 0, r.output
    out = r.output
    assert "<arg 1>:1: " in out and "3 segments" in out
    assert out.count("segment 1:") == 1 and "segment 3:" in out and "cells changed" in out
    assert "*" in out  # changed cells are marked
    assert "solved 0 / valid" in out and "/ total 1 | mean segments 3.00 | p50 latency" in out


def test_no_input_on_a_terminal_is_a_usage_error(tiny_deploy, monkeypatch):
    import sys

    class Tty:
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stdin", Tty())
    from hrm.cli import run as run_mod

    with pytest.raises(SystemExit) as info:
        run_mod.main([str(tiny_deploy)], standalone_mode=True)
    assert info.value.code == 2


def _deploy_for(task, tmp_path_factory, name):
    from deploy_helpers import export
    from helpers import random_tensors, tiny_config

    from hrm.checkpoint import save_checkpoint

    cfg = tiny_config(seq_len=task.seq_len, vocab_size=task.vocab_size, hidden_size=32, num_heads=2,
                      puzzle_emb_ndim=32, H_layers=1, L_layers=1, halt_max_steps=2)
    d = tmp_path_factory.mktemp(name)
    ckpt = save_checkpoint(d / "m.safetensors", cfg, random_tensors(cfg, seed=1), task=task.metadata())
    return export(ckpt, d / "deploy")


def test_maze_grids_and_csv(tmp_path_factory, tmp_path):
    maze = get_task("maze", size=5)
    d = _deploy_for(maze, tmp_path_factory, "maze")
    ps = maze.generate(2, np.random.default_rng(0))
    drawn = "\n\n".join(maze.render(p.tokens) for p in ps) + "\n"
    (tmp_path / "mazes.txt").write_text(drawn)
    flat = ["".join(maze.render(p.tokens).split("\n")) for p in ps]
    sols = ["".join(maze.render(p.label).split("\n")) for p in ps]
    (tmp_path / "mazes.csv").write_text(f"source,q,a,rating\nm0,{flat[0]},{sols[0]},0\n")
    (tmp_path / "bad.txt").write_text("#####\n#S  #\n#  G#\n")
    r = run(d, "--json", tmp_path / "mazes.txt", tmp_path / "mazes.csv", tmp_path / "bad.txt")
    assert r.exit_code == 1
    res, errs, _ = records(r.output)
    assert len(res) == 3 and res[2]["correct"] in (True, False)
    assert len(errs) == 1 and errs[0]["source"] == str(tmp_path / "bad.txt") and errs[0]["line"] is not None


def test_arc_json(tmp_path_factory, tmp_path):
    arc = get_task("arc")
    d = _deploy_for(arc, tmp_path_factory, "arc")
    task_json = {"train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]}],
                 "test": [{"input": [[2, 0], [0, 2]], "output": [[0, 2], [2, 0]]}, {"input": [[3]]}]}
    (tmp_path / "t1.json").write_text(json.dumps(task_json))
    (tmp_path / "broken.json").write_text('{"train": [], "test": [{"input": [[1, 2]]}\n')
    r = run(d, "--json", "--max-segments", "1", tmp_path / "t1.json", tmp_path / "broken.json")
    assert r.exit_code == 1
    lines = [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]
    (task,) = [x for x in lines if "task_id" in x]  # ARC: one line per task (the official procedure)
    assert task["task_id"] == "t1" and len(task["tests"]) == 2
    assert task["tests"][0]["pass@1"] in (True, False) and task["tests"][1]["pass@1"] is None
    errs = [x for x in lines if "error" in x]
    assert errs[0]["source"] == str(tmp_path / "broken.json") and errs[0]["line"] is not None


def test_torch_backend_through_the_cli(tiny_deploy, sudokus):
    pytest.importorskip("torch")
    q = digits(sudokus[0].tokens)
    a = records(run(tiny_deploy, "--json", "--backend", "torch", q).output)[0]
    b = records(run(tiny_deploy, "--json", q).output)[0]
    assert a[0]["answer_tokens"] == b[0]["answer_tokens"] and a[0]["segments"] == b[0]["segments"]
