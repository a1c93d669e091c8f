"""hrm.evaluation.accuracy / hrm-eval: exact and valid accuracy per group and halting mode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.errors import ParseError
from hrm.tasks import Puzzle
from hrm.runtime.backends.options import OrtOptions

from helpers import MODELS  # noqa: E402


def _puzzles_with_known_scores(session, n=12):
    """Random 4x4 inputs whose labels are the session's own fixed-halting answers for even rows and a
    changed answer for odd rows: exact accuracy is then exactly 1/2 overall and per group."""
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, session.config.vocab_size, (n, session.config.seq_len)).astype(np.int32)
    answers = [r.answer_tokens for r in session.solve(tokens, halting="fixed")]
    puzzles = []
    for i, (t, a) in enumerate(zip(tokens, answers)):
        label = a.copy()
        if i % 2:
            label[0] = label[0] % (session.config.vocab_size - 1) + 1  # any other non-PAD token
        puzzles.append(Puzzle(t, label, f"<test>:{i}", 0, {"bucket": "0" if i < 4 else "6+" if i >= 8 else "1-5"}))
    return puzzles


def test_scores_groups_and_modes(tiny_deploy):
    from hrm.runtime import Session
    from hrm.evaluation.accuracy import evaluate

    with Session(tiny_deploy, batch=5, options=OrtOptions(threads=1)) as s:  # 5 does not divide 12: a short last chunk
        puzzles = _puzzles_with_known_scores(s)
        rep = evaluate(s, puzzles, haltings=("fixed", "act"))
    cap = rep.meta["max_segments"]
    assert list(rep.scores) == ["all", "0", "1-5", "6+"] and rep.meta["groups"] == ["0", "1-5", "6+"]
    fixed = rep.score("all", "fixed")
    assert fixed.n == 12 and fixed.exact == pytest.approx(0.5)
    assert fixed.mean_segments == cap and fixed.max_segments == cap
    assert [rep.score(g, "fixed").n for g in ("0", "1-5", "6+")] == [4, 4, 4]
    for g in ("0", "1-5", "6+"):
        assert rep.score(g, "fixed").exact == pytest.approx(0.5)
    act = rep.score("all", "act")
    assert 1 <= act.mean_segments <= cap and act.max_segments <= cap
    # random tokens are no legal Sudoku: the checker rejects every answer
    assert fixed.valid == 0.0
    # the group means combine to the overall one
    means = [rep.score(g, "act").mean_segments * rep.score(g, "act").n for g in ("0", "1-5", "6+")]
    assert sum(means) / 12 == pytest.approx(act.mean_segments)
    d = rep.to_dict()
    assert d["scores"]["6+"]["act"]["n"] == 4 and json.dumps(d)


def test_act_answers_match_the_act_session(tiny_deploy):
    """The report's ACT numbers are the runtime's ACT run, not derived from the fixed trace."""
    from hrm.runtime import Session
    from hrm.evaluation.accuracy import evaluate, score

    with Session(tiny_deploy, batch=4, options=OrtOptions(threads=1)) as s:
        puzzles = _puzzles_with_known_scores(s, n=8)
        direct = score(s.solve(puzzles, halting="act"))
        rep = evaluate(s, puzzles, haltings=("act",), group_key=None)
    assert list(rep.scores) == ["all"] and list(rep.scores["all"]) == ["act"]
    assert rep.score("all", "act") == direct


def test_unlabelled_puzzles_have_no_exact(tiny_deploy):
    from hrm.runtime import Session
    from hrm.evaluation.accuracy import evaluate

    rng = np.random.default_rng(0)
    puzzles = [Puzzle(rng.integers(1, 6, 16), None, f"<u>:{i}") for i in range(3)]
    with Session(tiny_deploy, batch=3, options=OrtOptions(threads=1)) as s:
        rep = evaluate(s, puzzles, haltings=("fixed",))
    assert rep.score("all", "fixed").exact is None and list(rep.scores) == ["all"]
    with pytest.raises(ValueError, match="no puzzles"):
        evaluate(s, [])


def test_buckets_from_npz_and_official_folder(tiny_deploy, tmp_path):
    from hrm.evaluation.datasets import load_puzzles
    from hrm.runtime.deployment import load_deployment
    from hrm.tasks import get_task
    from hrm.tasks.dataset import write_official_split

    dep = load_deployment(tiny_deploy)
    task = get_task("sudoku", size=4)
    puzzles = task.generate(6, np.random.default_rng(1))
    inputs = np.stack([p.tokens for p in puzzles])
    labels = np.stack([p.label for p in puzzles])
    guesses = np.array([0, 1, 5, 6, 40, 0])
    want = ["0", "1-5", "1-5", "6+", "6+", "0"]

    npz = tmp_path / "d.npz"
    np.savez(npz, inputs=inputs, labels=labels, guesses=guesses)
    got = load_puzzles(str(npz), dep)
    assert [p.meta["bucket"] for p in got] == want and [p.meta["guesses"] for p in got] == guesses.tolist()

    write_official_split(tmp_path / "root", "test", inputs.astype(np.uint8), labels.astype(np.uint8), task=task)
    np.save(tmp_path / "root" / "test" / "guesses.npy", guesses)
    got = load_puzzles(str(tmp_path / "root"), dep)
    assert [p.meta["bucket"] for p in got] == want
    assert all(np.array_equal(a.tokens, b) for a, b in zip(got, inputs))

    np.savez(npz, inputs=inputs, labels=labels, guesses=guesses[:4])
    with pytest.raises(ParseError, match=r"d\.npz.*guesses.*expected 6 integer guess counts"):
        load_puzzles(str(npz), dep)
    np.save(tmp_path / "root" / "test" / "guesses.npy", -guesses - 1)
    with pytest.raises(ParseError, match="guesses.npy.*negative guess count"):
        load_puzzles(str(tmp_path / "root"), dep)


@pytest.mark.skipif(not (MODELS / "sudoku4.safetensors").is_file(), reason="bundled sudoku4 model missing")
@pytest.mark.parametrize("flags", [[], ["--fused", "--precision", "int8"]])
def test_cli_on_the_bundled_trained_model(tmp_path, monkeypatch, flags):
    """The trained 4x4 model solves generated puzzles and its Q head saves segments under ACT; the same
    holds through the fused segment graph of the int8 variant (exported from the checkpoint on the fly)."""
    from click.testing import CliRunner

    from hrm.cli.eval import main

    monkeypatch.setenv("HRM_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, [str(MODELS / "sudoku4.safetensors"), "--n", "96", "--batch", "32",
                                    "--threads", "1", "--json", str(out), *flags])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    cap = rep["meta"]["max_segments"]
    for h in ("fixed", "act"):
        s = rep["scores"]["all"][h]
        assert s["n"] == 96 and s["exact"] >= 0.9 and s["valid"] == s["exact"]  # unique solutions
    assert rep["scores"]["all"]["act"]["mean_segments"] < 0.75 * cap
    assert rep["scores"]["0"]["fixed"]["n"] == 96  # every 4x4 puzzle needs no guess
    assert "exact" in res.output and "act" in res.output
    assert rep["meta"]["precision"] == ("int8" if flags else "fp32") and rep["meta"]["fused"] is bool(flags)


@pytest.mark.skipif(not (MODELS / "sudoku4-trm.safetensors").is_file(), reason="bundled TRM missing")
def test_the_bundled_trm_solves_held_out_puzzles_and_passes_parity(tmp_path, monkeypatch):
    """The shipped TRM (mlp_t) solves held-out 4x4 puzzles (none of them in its training set), halts after
    about one segment, and its fp32 / int8 export answers as the PyTorch TRM does (hrm-parity's gates)."""
    from click.testing import CliRunner

    from hrm.cli.eval import main
    from hrm.cli.export import main as export_main
    from hrm.cli.parity import main as parity_main

    monkeypatch.setenv("HRM_BENCH_CACHE", str(tmp_path / "cache"))
    test_set = str(MODELS / "compare" / "sudoku4_test1000.npz")
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, [str(MODELS / "sudoku4-trm.safetensors"), "--dataset", test_set, "--n", "96",
                                    "--batch", "32", "--threads", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert all(rep["scores"]["all"][h]["exact"] >= 0.97 for h in ("fixed", "act"))
    assert rep["scores"]["all"]["act"]["mean_segments"] < 1.5
    dep = tmp_path / "dep"
    res = CliRunner().invoke(export_main, ["--checkpoint", str(MODELS / "sudoku4-trm.safetensors"), "--out", str(dep),
                                           "--precision", "fp32,int8"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(parity_main, [str(dep), "--precision", "fp32,int8", "--dataset", test_set, "--n", "64",
                                           "--batch", "32", "--threads", "1", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    fp32 = [c for c in report["comparisons"] if c["precision"] == "fp32"]
    assert report["passed"] and len(fp32) == 2 and all(c["answer_agreement"] == 1.0 for c in fp32)


@pytest.mark.skipif(not (MODELS / "proxies" / "m7cont.safetensors").is_file(), reason="maze proxy missing")
def test_cli_on_the_trained_maze_proxy(tmp_path, monkeypatch):
    """The CPU-trained 7x7 maze model finds the shortest path on held-out mazes (the committed set none of
    its training mazes occur in) and its Q head halts early; a maze answer is valid only if it is optimal."""
    from click.testing import CliRunner

    from hrm.cli.eval import main

    monkeypatch.setenv("HRM_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, [str(MODELS / "proxies" / "m7cont.safetensors"), "--dataset",
                                    str(MODELS / "proxies" / "maze7_test1000.npz"), "--n", "200", "--batch", "50",
                                    "--threads", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    for h in ("fixed", "act"):
        s = rep["scores"]["all"][h]
        assert s["n"] == 200 and s["exact"] >= 0.8 and s["valid"] == s["exact"], (h, s)
    assert rep["scores"]["all"]["act"]["mean_segments"] < 0.7 * rep["meta"]["max_segments"]


def test_cli_rejects_bad_halting(tmp_path):
    from click.testing import CliRunner

    from hrm.cli.eval import main

    res = CliRunner().invoke(main, [str(MODELS / "sudoku4.safetensors"), "--halting", "sometimes"])
    assert res.exit_code != 0 and "sometimes" in res.output
