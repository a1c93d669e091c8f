"""CUDA paths: runtime.gpu primitives, the ORT CUDA execution provider, ORT CUDA graphs.

Skipped (with the reason) where there is no GPU / no onnxruntime-gpu. On a GPU machine run:
    pytest tests/runtime/test_gpu.py tests/runtime/test_trt.py -v -rs
"""

from __future__ import annotations

import numpy as np
import pytest

from hrm.runtime.gpu import device_count
from hrm.runtime.backends.options import OrtOptions

pytestmark = pytest.mark.skipif(device_count() == 0, reason="no CUDA device (or no CUDA runtime / driver) here")


def test_copies_pinned_memory_and_graph_capture():
    from hrm.runtime.gpu import Cudart, CudaGraph, DeviceBuffer, PinnedArray, Stream, probe

    cc = Cudart.get().compute_capability()
    assert cc.count(".") == 1 and all(p.isdigit() for p in cc.split("."))
    info = probe()
    assert info.available and info.compute_capability == cc and info.name and info.driver and info.runtime
    s = Stream()
    a, b = DeviceBuffer(4096), DeviceBuffer(4096)
    host = np.arange(1024, dtype=np.float32)
    pinned = PinnedArray((1024,), np.float32)
    try:
        s.h2d(a.ptr, host)
        s.d2d(b.ptr, a.ptr, 4096)
        s.d2h(pinned.array, b.ptr)
        s.synchronize()
        np.testing.assert_array_equal(pinned.array, host)
        # a captured graph replays its copies: a -> b, reading a's *current* contents at launch
        g = CudaGraph(s, lambda: s.d2d(b.ptr, a.ptr, 4096))
        s.h2d(a.ptr, host * 2)
        g.launch()
        s.d2h(pinned.array, b.ptr)
        s.synchronize()
        np.testing.assert_array_equal(pinned.array, host * 2)
        g.free()
    finally:
        pinned.free()
        a.free()
        b.free()
        s.free()


def _cuda_ep() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


needs_ort_cuda = pytest.mark.skipif(not _cuda_ep(), reason="onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")


@needs_ort_cuda
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_ort_cuda_equals_cpu_and_reference(tiny_deploy, tiny_model, batch16, cuda_graph):
    torch = pytest.importorskip("torch")
    from hrm.model import solve
    from hrm.runtime import Session

    tokens, ids = batch16
    with Session(tiny_deploy, backend="ort", device="cuda", batch=4, options=OrtOptions(cuda_graph=cuda_graph)) as gpu, \
            Session(tiny_deploy, backend="ort", device="cpu", batch=4) as cpu:
        for halting in ("fixed", "act"):
            ref = solve(tiny_model, torch.from_numpy(tokens), torch.from_numpy(ids), halting=halting)
            g = gpu.solve(tokens, puzzle_ids=ids, halting=halting)
            c = cpu.solve(tokens, puzzle_ids=ids, halting=halting)
            np.testing.assert_array_equal(np.stack([r.answer_tokens for r in g]), ref.predictions.numpy())
            np.testing.assert_array_equal([r.segments for r in g], ref.segments.numpy())
            np.testing.assert_array_equal([r.segments for r in g], [r.segments for r in c])
            for rg, rc in zip(g, c):
                np.testing.assert_allclose(rg.q_halt, rc.q_halt, rtol=1e-3, atol=1e-4)


@needs_ort_cuda
def test_ort_cuda_scheduler_matches_alone(tiny_deploy, batch16):
    from hrm.runtime import Scheduler, Session
    from hrm.tasks.base import Puzzle

    tokens, ids = batch16
    puzzles = [Puzzle(tokens[i], None, f"p{i}", int(ids[i])) for i in range(16)]
    with Session(tiny_deploy, backend="ort", device="cuda", batch=4) as s:
        alone = [s.solve([p], halting="act")[0] for p in puzzles]  # same batch size (4), padded
        sched = Scheduler(s, 4, halting="act")
        futs = [sched.submit(p) for p in puzzles[::-1]]
        sched.run_until_idle()
    for f, a in zip(futs[::-1], alone):
        r = f.result(timeout=0)
        np.testing.assert_array_equal(r.answer_tokens, a.answer_tokens)
        assert r.segments == a.segments and r.q_halt == a.q_halt


@needs_ort_cuda
def test_ort_cuda_fp16_parity_gates(tiny_deploy):
    pytest.importorskip("torch")
    from hrm.evaluation.datasets import load_puzzles
    from hrm.runtime.deployment import load_deployment
    from hrm.evaluation.parity import run_parity

    dep = load_deployment(tiny_deploy)
    rep = run_parity(dep, load_puzzles("generated", dep, n=16), backend="ort", device="cuda",
                     precisions=("fp32", "fp16"), batch=8)
    assert rep.passed, [g for g in rep.gates if not g.passed]
