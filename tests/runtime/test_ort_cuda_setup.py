"""The ORT backend's CUDA set-up on a CPU box, with a stand-in onnxruntime: DLLs are preloaded before the
first CUDA session, and an ort-contrib bf16 variant is refused on an onnxruntime-gpu without the bf16
MultiHeadAttention kernel."""

from __future__ import annotations

import sys
import types

import pytest

from hrm.runtime.backends.base import BackendError


def _fake_ort(version: str, log: list):
    ort = types.ModuleType("onnxruntime")
    ort.__version__ = version
    ort.get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    ort.preload_dlls = lambda: log.append("preload")

    def session(*a, **k):
        log.append("session")
        raise RuntimeError("stop here")
    ort.InferenceSession = session
    ort.SessionOptions = lambda: types.SimpleNamespace(add_session_config_entry=lambda *a: None)
    ort.GraphOptimizationLevel = types.SimpleNamespace(ORT_ENABLE_ALL=99, ORT_ENABLE_BASIC=1, ORT_DISABLE_ALL=0)
    return ort


def _activate(deploy, precision, monkeypatch, version="1.31.1"):
    import hrm.runtime.backends.ort as ort_backend
    from hrm.runtime.backends.buffered import HostMemory
    from hrm.runtime.backends.ort import OrtBackend
    from hrm.runtime.deployment import load_deployment

    log: list = []
    monkeypatch.setitem(sys.modules, "onnxruntime", _fake_ort(version, log))
    monkeypatch.setattr(ort_backend, "cuda_memory", lambda: type("M", (HostMemory,), {"stream": types.SimpleNamespace(ptr=1)})())
    b = OrtBackend(load_deployment(deploy), precision, "cuda")
    with pytest.raises(BackendError) as info:
        b.activate()
    return log, str(info.value)


def test_dlls_are_preloaded_before_the_first_cuda_session(tiny_deploy, monkeypatch):
    log, msg = _activate(tiny_deploy, "fp32", monkeypatch)
    assert log[:2] == ["preload", "session"] and "stop here" in msg


def test_contrib_bf16_needs_an_onnxruntime_gpu_with_bf16_attention(tiny_deploy, monkeypatch):
    from hrm.manifest import load_manifest
    from hrm.runtime.backends.ort import ORT_CONTRIB_BF16_CUDA, _require_contrib_bf16

    var = types.SimpleNamespace(ops="ort-contrib", state_dtype="bfloat16")
    need = ".".join(map(str, ORT_CONTRIB_BF16_CUDA))
    with pytest.raises(BackendError, match=rf"needs onnxruntime-gpu >= {need}.*this is 1\.23\.2"):
        _require_contrib_bf16(types.SimpleNamespace(__version__="1.23.2"), var, "bf16")
    _require_contrib_bf16(types.SimpleNamespace(__version__=need + ".0"), var, "bf16")
    _require_contrib_bf16(types.SimpleNamespace(__version__="1.18.0"), types.SimpleNamespace(
        ops="standard", state_dtype="bfloat16"), "bf16")  # standard graphs have no MultiHeadAttention
    assert load_manifest(tiny_deploy, verify=False)  # the fixture is untouched
