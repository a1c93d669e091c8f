"""TensorRT backend end to end: build engines for the tiny export, run them, compare with ORT.

Runs where ``tensorrt`` (or ``tensorrt_rtx``) imports *and* a CUDA device is present; skipped with the
reason elsewhere. The engine-compatibility refusal itself is tested without TensorRT in
test_engine_check.py.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from deploy_helpers import assert_same_solves
from hrm.runtime.gpu import device_count
from hrm.runtime.backends.options import TrtOptions


def _trt_module():
    for name in ("tensorrt", "tensorrt_rtx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


TRT = _trt_module()
pytestmark = [
    pytest.mark.trt,
    pytest.mark.skipif(TRT is None, reason="neither tensorrt nor tensorrt_rtx is importable"),
    pytest.mark.skipif(device_count() == 0, reason="TensorRT engines need a CUDA device to run; none here"),
]


@pytest.fixture(scope="module")
def trt_deploy(tiny_deploy, tmp_path_factory):
    from deploy_helpers import build_engines, copy_deployment

    d = copy_deployment(tiny_deploy, tmp_path_factory.mktemp("trt") / "d")
    build_engines(d, "fp32", TRT)
    build_engines(d, "fp16", TRT)
    return d


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_trt_fp32_equals_ort(trt_deploy, batch16, cuda_graph):
    from hrm.runtime import Session

    tokens, ids = batch16
    with Session(trt_deploy, backend="trt", device="cuda", batch=4, options=TrtOptions(cuda_graph=cuda_graph)) as t, \
            Session(trt_deploy, backend="ort", batch=4) as o:
        assert_same_solves(t, o, tokens, ids, max_segments=6, rtol=1e-3, atol=1e-3)
        assert t.backend.cuda_graph == cuda_graph  # capture worked (no silent fallback)


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_trt_batch_switching_1_4_1_4_equals_ort(trt_deploy, batch16, cuda_graph):
    """One context per (engine, batch size): going back to a batch size replays its own contexts and
    graphs, untouched by the other size (a shared context re-shaped under a captured graph is UB)."""
    from hrm.runtime import Session

    tokens, ids = batch16
    with Session(trt_deploy, backend="trt", device="cuda", options=TrtOptions(cuda_graph=cuda_graph)) as t, \
            Session(trt_deploy, backend="ort") as o:
        for batch in (1, 4, 1, 4):
            t.batch = o.batch = batch
            assert_same_solves(t, o, tokens[:8], ids[:8], max_segments=4, rtol=1e-3, atol=1e-3)
        assert t.backend.cuda_graph == cuda_graph
        if cuda_graph:  # a graph was captured, and kept, for each batch size
            for batch in (1, 4):
                assert any(k[0] == "graph" for k in t.backend._batches[batch].cache), batch


def test_trt_graph_replay_at_two_batch_sizes_is_bit_identical_to_eager(trt_deploy, batch16):
    from hrm.runtime import Session

    tokens, ids = batch16
    for batch in (1, 4):
        with Session(trt_deploy, backend="trt", device="cuda", batch=batch, options=TrtOptions(cuda_graph=True)) as g, \
                Session(trt_deploy, backend="trt", device="cuda", batch=batch,
                        options=TrtOptions(cuda_graph=False)) as e:
            a = g.solve(tokens[:8], puzzle_ids=ids[:8], halting="fixed", max_segments=5)
            b = e.solve(tokens[:8], puzzle_ids=ids[:8], halting="fixed", max_segments=5)
            assert g.backend.cuda_graph, "capture fell back to eager"
        for x, y in zip(a, b):
            assert x.q_halt == y.q_halt
            np.testing.assert_array_equal(x.answer_tokens, y.answer_tokens)


def test_trt_fused_segment_equals_steps(trt_deploy, batch16):
    from hrm.runtime import Session
    from hrm.runtime.deployment import load_deployment

    if "segment" not in load_deployment(trt_deploy).variant("fp32").engines:
        pytest.skip("no fused segment engine in this export")
    tokens, ids = batch16
    with Session(trt_deploy, backend="trt", device="cuda", batch=4, options=TrtOptions(fused=True)) as f, \
            Session(trt_deploy, backend="trt", device="cuda", batch=4) as s:
        a = f.solve(tokens, puzzle_ids=ids, halting="act")
        b = s.solve(tokens, puzzle_ids=ids, halting="act")
    assert [r.segments for r in a] == [r.segments for r in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.answer_tokens, y.answer_tokens)


def test_trt_graph_replay_is_bit_identical_to_eager(trt_deploy, batch16):
    from hrm.runtime import Session

    tokens, ids = batch16
    with Session(trt_deploy, backend="trt", device="cuda", batch=4, options=TrtOptions(cuda_graph=True)) as g, \
            Session(trt_deploy, backend="trt", device="cuda", batch=4, options=TrtOptions(cuda_graph=False)) as e:
        a = g.solve(tokens, puzzle_ids=ids, halting="fixed", max_segments=5)
        b = e.solve(tokens, puzzle_ids=ids, halting="fixed", max_segments=5)
    for x, y in zip(a, b):
        assert x.q_halt == y.q_halt
        np.testing.assert_array_equal(x.answer_tokens, y.answer_tokens)


def test_trt_fp16_runs_and_scheduler_matches_alone(trt_deploy, batch16):
    from hrm.runtime import Scheduler, Session
    from hrm.tasks.base import Puzzle

    tokens, ids = batch16
    puzzles = [Puzzle(tokens[i], None, f"p{i}", int(ids[i])) for i in range(12)]
    with Session(trt_deploy, backend="trt", device="cuda", precision="fp16", batch=4) as s:
        alone = [s.solve([p], halting="act")[0] for p in puzzles]
        sched = Scheduler(s, 4, halting="act")
        futs = [sched.submit(p) for p in puzzles]
        sched.run_until_idle()
    for f, a in zip(futs, alone):
        r = f.result(timeout=0)
        np.testing.assert_array_equal(r.answer_tokens, a.answer_tokens)
        assert r.segments == a.segments


def test_trt_refuses_a_foreign_engine_record(trt_deploy, tmp_path):
    from deploy_helpers import copy_deployment

    from hrm.errors import EngineMismatchError
    from hrm.manifest import load_manifest
    from hrm.runtime import Session

    d = copy_deployment(trt_deploy, tmp_path / "foreign")
    man = load_manifest(d, verify=False)
    man.variants["fp32"].engines["l_step"].compute_capability = "5.0"
    man.save()
    with pytest.raises(EngineMismatchError, match="compute capability 5.0"):
        Session(d, backend="trt", device="cuda").activate()
