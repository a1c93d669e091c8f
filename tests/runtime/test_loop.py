"""The runtime loop (ORT and torch backends) reproduces hrm.model.solve: answers, segments, q values."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from hrm.model import solve  # noqa: E402
from deploy_helpers import assert_same_solves  # noqa: E402
from hrm.runtime import Session  # noqa: E402
from hrm.runtime.backends.options import OrtOptions  # noqa: E402


def reference(model, tokens, ids, halting, max_segments=None, trace=False):
    return solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting=halting,
                 max_segments=max_segments, trace=trace)


@pytest.fixture(scope="module")
def ort3(tiny_deploy):
    with Session(tiny_deploy, backend="ort", batch=3, options=OrtOptions(threads=1)) as s:  # 16 puzzles -> 6 chunks, the last padded
        yield s


@pytest.mark.parametrize("halting", ["fixed", "act"])
@pytest.mark.parametrize("max_segments", [None, 6])
def test_ort_loop_equals_pytorch_solve(ort3, tiny_model, batch16, halting, max_segments):
    tokens, ids = batch16
    ref = reference(tiny_model, tokens, ids, halting, max_segments)
    res = ort3.solve(tokens, puzzle_ids=ids, halting=halting, max_segments=max_segments)
    np.testing.assert_array_equal(np.stack([r.answer_tokens for r in res]), ref.predictions.numpy())
    np.testing.assert_array_equal([r.segments for r in res], ref.segments.numpy())
    for i, r in enumerate(res):
        k = r.segments
        np.testing.assert_allclose(r.q_halt, ref.q_halt[i, :k].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(r.q_continue, ref.q_continue[i, :k].numpy(), rtol=1e-4, atol=1e-5)
        assert np.isnan(ref.q_halt[i, k:].numpy()).all()


def test_fixed_runs_exactly_the_cap(ort3, batch16, tiny_cfg):
    tokens, ids = batch16
    assert [r.segments for r in ort3.solve(tokens, puzzle_ids=ids, halting="fixed")] == [tiny_cfg.halt_max_steps] * 16
    beyond = tiny_cfg.halt_max_steps + 3
    assert {r.segments for r in ort3.solve(tokens[:4], puzzle_ids=ids[:4], halting="fixed", max_segments=beyond)} == {beyond}
    assert {r.segments for r in ort3.solve(tokens[:4], puzzle_ids=ids[:4], halting="fixed", max_segments=1)} == {1}


def test_act_halts_per_row(ort3, batch16, tiny_cfg):
    tokens, ids = batch16
    res = ort3.solve(tokens, puzzle_ids=ids, halting="act")
    segs = [r.segments for r in res]
    assert len(set(segs)) >= 3, segs  # rows of one batch halt at different segments
    for r in res:
        assert 1 <= r.segments <= tiny_cfg.halt_max_steps
        halted_early = r.segments < tiny_cfg.halt_max_steps
        assert (r.q_halt[-1] > r.q_continue[-1]) or not halted_early
        assert all(h <= c for h, c in zip(r.q_halt[:-1], r.q_continue[:-1]))  # did not halt before


def test_act_cap_above_trained_is_honoured(ort3, batch16, tiny_model, tiny_cfg):
    tokens, ids = batch16
    cap = tiny_cfg.halt_max_steps * 2
    ref = reference(tiny_model, tokens, ids, "act", cap)
    res = ort3.solve(tokens, puzzle_ids=ids, halting="act", max_segments=cap)
    np.testing.assert_array_equal([r.segments for r in res], ref.segments.numpy())
    assert max(r.segments for r in res) <= cap


def test_trace_is_the_answer_per_segment(ort3, tiny_model, batch16):
    tokens, ids = batch16
    ref = reference(tiny_model, tokens[:5], ids[:5], "act", trace=True)
    res = ort3.solve(tokens[:5], puzzle_ids=ids[:5], halting="act", trace=True)
    for i, r in enumerate(res):
        assert len(r.trace) == r.segments
        np.testing.assert_array_equal(r.trace[-1], r.answer_tokens)
        for s, step in enumerate(r.trace):
            np.testing.assert_array_equal(step, ref.trace[s][i].numpy())


def test_torch_backend_equals_solve(tiny_deploy, tiny_model, batch16):
    tokens, ids = batch16
    ref = reference(tiny_model, tokens, ids, "act")
    with Session(tiny_deploy, backend="torch", batch=5) as s:  # weights from the manifest's source, sha-checked
        res = s.solve(tokens, puzzle_ids=ids, halting="act")
    np.testing.assert_array_equal(np.stack([r.answer_tokens for r in res]), ref.predictions.numpy())
    np.testing.assert_array_equal([r.segments for r in res], ref.segments.numpy())


def test_results_carry_verdicts_and_timings(ort3, tiny_cfg):
    from hrm.tasks import get_task

    task = get_task("sudoku", size=4)
    puzzles = task.generate(3, np.random.default_rng(0))
    res = ort3.solve(puzzles, halting="act")
    for p, r in zip(puzzles, res):
        assert r.source == p.source and r.verdict is not None
        assert r.answer.shape == (4, 4)
        assert r.correct == r.verdict.correct
        assert set(r.timings) == {"latency", "queue", "per_segment"} and r.timings["latency"] > 0
        d = r.to_dict()
        assert d["segments"] == r.segments and len(d["q_halt"]) == r.segments


def test_bad_arguments_are_refused(ort3, tiny_deploy):
    with pytest.raises(ValueError, match="halting"):
        ort3.solve(np.ones((1, 16), np.int32), halting="sometimes")
    with pytest.raises(ValueError, match="max_segments"):
        ort3.solve(np.ones((1, 16), np.int32), max_segments=0)
    with pytest.raises(ValueError, match="puzzle id 7 outside"):
        ort3.solve(np.ones((1, 16), np.int32), puzzle_ids=[7])
    with pytest.raises(ValueError, match="tokens"):
        ort3.solve(np.ones((1, 12), np.int32))


def test_fused_segment_graph_equals_step_graphs(tiny_deploy, batch16):
    from hrm.runtime.deployment import load_deployment

    if "segment" not in load_deployment(tiny_deploy).variant("fp32").graphs:
        pytest.skip("this export has no fused segment graph (exporter without --segment)")
    tokens, ids = batch16
    with Session(tiny_deploy, batch=4, options=OrtOptions(threads=1, fused=True)) as fused, Session(tiny_deploy, batch=4, options=OrtOptions(threads=1)) as steps:
        assert_same_solves(fused, steps, tokens, ids, max_segments=5, rtol=1e-5, atol=1e-6)


def test_halt_rule_comes_from_the_manifest(tiny_deploy, batch16, tmp_path):
    """A deployment whose manifest says ``q_halt > 0`` (TRM's rule) halts by that rule, not HRM's."""
    import json
    import shutil

    from hrm.halting import halts
    from hrm.manifest import seal

    tokens, ids = batch16
    with Session(tiny_deploy, backend="ort", batch=4, options=OrtOptions(threads=1)) as s:
        hrm_rule = s.solve(tokens, puzzle_ids=ids, halting="act", max_segments=6)
    dep = tmp_path / "rule"
    shutil.copytree(tiny_deploy, dep)
    manifest = json.loads((dep / "manifest.json").read_text())
    assert manifest["recurrence"]["halt_rule"] == "q_halt > q_continue"
    manifest["recurrence"]["halt_rule"] = "q_halt > 0"
    (dep / "manifest.json").write_text(json.dumps(seal(manifest)))  # a tool's deliberate rewrite
    with Session(dep, backend="ort", batch=4, options=OrtOptions(threads=1)) as s:
        trm_rule = s.solve(tokens, puzzle_ids=ids, halting="act", max_segments=6)
    for a, b in zip(hrm_rule, trm_rule):
        # the q values of a segment do not depend on the rule; where each row stops does
        k = min(a.segments, b.segments)
        np.testing.assert_array_equal(a.q_halt[:k], b.q_halt[:k])
        stops = [halts("q_halt > 0", q, c) for q, c in zip(b.q_halt, b.q_continue)]
        assert b.segments == (stops.index(True) + 1 if True in stops[:6] else 6)
    assert [a.segments for a in hrm_rule] != [b.segments for b in trm_rule]


def test_unknown_halt_rule_is_refused(tiny_deploy, tmp_path):
    import json
    import shutil

    from hrm.errors import ManifestError
    from hrm.manifest import seal
    from hrm.runtime import load_deployment

    dep = tmp_path / "bad"
    shutil.copytree(tiny_deploy, dep)
    manifest = json.loads((dep / "manifest.json").read_text())
    manifest["recurrence"]["halt_rule"] = "q_halt > 1"
    (dep / "manifest.json").write_text(json.dumps(seal(manifest)))
    with pytest.raises(ManifestError, match="halt_rule"):
        load_deployment(dep)
