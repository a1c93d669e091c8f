"""Target naming, expansion of --backends, and skip reasons (a stub deployment: no files needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hrm.bench import targets as T
from hrm.bench.analysis import reference_names
from hrm.bench.options import Budget
from hrm.bench.phases import throughput_puzzles
from hrm.runtime.backends.options import OrtOptions


def stub_deployment(precisions=("fp32",), graphs=("embed", "l_step", "h_step", "heads", "segment"), engines=(),
                    ops="standard", aliases=()):
    variant = SimpleNamespace(graphs={g: None for g in graphs}, engines={e: None for e in engines}, ops=ops,
                              files={g: None for g in graphs if g not in aliases})
    return SimpleNamespace(precisions=list(precisions), variant=lambda p: variant)


def test_names():
    assert T.make_target("ort", "cpu", "fp32").name == "ort-cpu/fp32"
    assert T.make_target("ort-fused", "cuda", "fp16").name == "ort-cuda-fused/fp16"
    assert T.make_target("ort-graph", "cuda", "fp16").name == "ort-cuda-graph/fp16"
    assert T.make_target("trt-graph", "cuda", "bf16").name == "trt-cuda-graph/bf16"
    assert T.make_target("torch-eager", "cpu", "fp32").name == "torch-eager-cpu/fp32"
    assert T.make_target("torch-eager-graph", "cuda", "fp32").name == "torch-eager-cuda-graph/fp32"
    assert T.make_target("torch-compile-graph", "cuda", "bf16").name == "torch-compile-cuda-graph/bf16"
    assert T.make_target("ort", "cpu", "fp32", threads=3).options == OrtOptions(threads=3).for_device("cpu")
    assert T.make_target("ort-graph", "cuda", "fp32", threads=3).options == OrtOptions(cuda_graph=True).for_device("cuda")
    # the fused segment graph replayed as one CUDA graph per segment, on both graph op sets
    fused_graph = OrtOptions(fused=True, cuda_graph=True).for_device("cuda")
    assert T.make_target("ort-fused-graph", "cuda", "fp16").name == "ort-cuda-fused-graph/fp16"
    assert T.make_target("ort-fused-graph", "cuda", "fp16").options == fused_graph
    contrib = T.make_target("ort-contrib-fused-graph", "cuda", "fp16")
    assert contrib.name == "ort-cuda-contrib-fused-graph/fp16" and contrib.ops == "ort-contrib"
    assert contrib.options == fused_graph
    assert T.make_target("ort-contrib", "cpu", "fp32").name == "ort-cpu-contrib/fp32"
    assert T.make_target("ort-contrib-fused", "cpu", "fp32", threads=2).name == "ort-cpu-contrib-fused/fp32"
    assert T.make_target("ort-contrib-graph", "cuda", "fp16").name == "ort-cuda-contrib-graph/fp16"
    assert T.make_target("ort-contrib-fused", "cpu", "fp32", threads=2).options == OrtOptions(threads=2, fused=True).for_device("cpu")
    assert [T.make_target(k, "cuda", "fp32").ops for k in ("ort", "ort-contrib-graph", "trt", "torch-eager")] == [
        "standard", "ort-contrib", "standard", None]


def test_plan_expands_backends_per_device():
    names = [t.name for t in T.plan(stub_deployment(), ["cpu", "cuda"], ["ort", "trt", "torch", "torch-compile"],
                                    ["fp32"])]
    assert names == ["ort-cpu/fp32", "ort-cpu-fused/fp32", "ort-cpu-contrib/fp32", "ort-cpu-contrib-fused/fp32",
                     "trt-cpu/fp32", "torch-eager-cpu/fp32", "torch-compile-cpu/fp32",
                     "ort-cuda/fp32", "ort-cuda-fused/fp32", "ort-cuda-graph/fp32", "ort-cuda-fused-graph/fp32",
                     "ort-cuda-contrib/fp32", "ort-cuda-contrib-fused/fp32", "ort-cuda-contrib-graph/fp32",
                     "ort-cuda-contrib-fused-graph/fp32", "trt-cuda/fp32",
                     "trt-cuda-graph/fp32", "torch-eager-cuda/fp32", "torch-eager-cuda-graph/fp32",
                     "torch-compile-cuda-graph/fp32"]
    only_std = [t.name for t in T.plan(stub_deployment(), ["cpu"], ["ort"], ["fp32"], ops=("standard",))]
    assert only_std == ["ort-cpu/fp32", "ort-cpu-fused/fp32"]
    with pytest.raises(ValueError, match="unknown backend"):
        T.kinds_for("onnx", "cpu")


def test_skip_reasons():
    dep = stub_deployment(precisions=("fp32",), graphs=("embed", "l_step", "h_step", "heads"))
    reasons = {t.name: t.skip for t in T.plan(dep, ["cpu"], ["ort", "trt"], ["fp32", "fp16"])}
    assert reasons["ort-cpu/fp32"] is None
    assert "no fused 'segment' graph" in reasons["ort-cpu-fused/fp32"]
    assert "no fp16 variant" in reasons["ort-cpu/fp16"]
    assert "CUDA only" in reasons["trt-cpu/fp32"]


def test_each_ops_runs_on_its_own_deployment():
    std, contrib = stub_deployment(), stub_deployment(ops="ort-contrib", graphs=("embed", "l_step", "h_step", "heads"))
    both = {t.name: t.skip for t in T.plan(std, ["cpu"], ["ort", "torch"], ["fp32"],
                                           ops_deployments={"standard": std, "ort-contrib": contrib})}
    assert both["ort-cpu/fp32"] is None and both["ort-cpu-contrib/fp32"] is None
    assert "no fused 'segment' graph" in both["ort-cpu-contrib-fused/fp32"]  # read from the contrib deployment
    alone = {t.name: t.skip for t in T.plan(contrib, ["cpu"], ["ort", "torch"], ["fp32"])}  # a contrib directory
    assert alone["ort-cpu-contrib/fp32"] is None and alone["torch-eager-cpu/fp32"] is None
    assert "no standard deployment in this run" in alone["ort-cpu/fp32"]


def test_trt_needs_engines(monkeypatch):
    monkeypatch.setitem(T._CACHE, "cuda", None)  # pretend there is a GPU
    monkeypatch.setitem(T._CACHE, "trt", None)  # and TensorRT
    t = T.make_target("trt-graph", "cuda", "fp16")
    assert "no TensorRT engines" in T.unavailable(t, stub_deployment(precisions=("fp16",)))
    with_engines = stub_deployment(precisions=("fp16",), engines=("embed", "l_step", "h_step", "heads"))
    assert T.unavailable(t, with_engines) is None
    contrib = stub_deployment(precisions=("fp16",), ops="ort-contrib")
    assert "standard graphs only" in T.unavailable(t, contrib)
    trm = stub_deployment(precisions=("fp16",), engines=("embed", "l_step", "heads"), aliases=("h_step",))
    assert T.unavailable(t, trm) is None  # TRM: h_step runs the l_step engine


def test_cuda_targets_say_why_when_there_is_no_gpu(monkeypatch):
    monkeypatch.setitem(T._CACHE, "cuda", "no CUDA device (test)")
    for kind in ("ort", "ort-graph", "trt", "torch-eager-graph", "torch-compile-graph"):
        assert T.unavailable(T.make_target(kind, "cuda", "fp32"), stub_deployment()) == "no CUDA device (test)"


def test_reference_names():
    refs = reference_names("ort-cuda-graph/fp16", "fp16", "cuda")
    assert refs == {"torch-eager-fp32": "torch-eager-cuda/fp32", "torch-eager": "torch-eager-cuda/fp16",
                    "torch-compile": "torch-compile-cuda-graph/fp16"}
    assert reference_names("torch-eager-cpu/fp32", "fp32", "cpu") == {"torch-compile": "torch-compile-cpu/fp32"}
    assert reference_names("ort-cuda-contrib-graph/fp16", "fp16", "cuda")["ort-standard"] == "ort-cuda-graph/fp16"
    assert "ort-standard" not in reference_names("ort-cpu-fused/fp32", "fp32", "cpu")


def test_throughput_puzzles_are_whole_waves():
    b = Budget(throughput_cap_s=1.0, max_waves=4, min_reps=3)
    assert throughput_puzzles(64, 10.0, 16, b) == 256  # 0.16 s a wave: 6 would fit, max_waves is 4
    assert throughput_puzzles(64, 30.0, 16, b) == 128  # 0.48 s a wave: 2 fit
    assert throughput_puzzles(64, 1.0, 16, b) == 256  # cheap: max_waves waves
    assert throughput_puzzles(64, 1000.0, 16, b) == 64  # slow: still one full wave
    assert throughput_puzzles(1, 100.0, 4, b) == 3  # batch 1: at least min_reps puzzles
    assert throughput_puzzles(1, 0.01, 4, b) == 64  # at most max_waves * 16
    for B, ms in ((8, 3.3), (5, 0.7), (7, 50.0)):
        assert throughput_puzzles(B, ms, 4, b) % B == 0
    assert throughput_puzzles(4, None, 4, b) == 4


def test_int8_runs_on_ort_cpu_only():
    """int8 rows: ONNX Runtime on the CPU; every other backend/device is skipped naming why."""
    dep = stub_deployment(precisions=("fp32", "int8"))
    reasons = {t.name: t.skip for t in T.plan(dep, ["cpu", "cuda"], ["ort", "trt", "torch"], ["int8"],
                                               ops=("standard",))}
    assert reasons["ort-cpu/int8"] is None and reasons["ort-cpu-fused/int8"] is None
    skipped = [n for n in reasons if n not in ("ort-cpu/int8", "ort-cpu-fused/int8")]
    assert skipped and all("ort-on-CPU path only" in reasons[n] for n in skipped), reasons
