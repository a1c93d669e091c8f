"""Engine compatibility refusal: a pure rule over manifest records, tested without TensorRT or a GPU."""

from __future__ import annotations

import pytest

from hrm.errors import EngineMismatchError, ManifestError
from hrm.manifest import EngineEntry
from hrm.runtime.engine_check import LocalTensorRT, check_engines, engine_incompatibility, rebuild_command

H100 = LocalTensorRT("tensorrt", "10.8.0.43", "9.0", "NVIDIA H100")


def entry(flavour="tensorrt", version="10.8.0.43", cc="9.0", **options) -> EngineEntry:
    return EngineEntry("l_step", "fp16/l_step.engine", "0" * 64, flavour, version, "NVIDIA H100", cc, options)


def test_same_build_and_gpu_is_accepted():
    assert engine_incompatibility(entry(), H100) is None
    assert engine_incompatibility(entry(version="10.8.0.40"), H100) is None  # build number differs only
    assert engine_incompatibility(entry(cc="90"), H100) is None
    assert engine_incompatibility(entry(cc="sm_90"), H100) is None


@pytest.mark.parametrize("e, words", [
    (entry(flavour="tensorrt_rtx", version="1.7.1"), ["tensorrt_rtx", "tensorrt"]),
    (entry(version="10.3.0.26"), ["10.3.0.26", "10.8.0.43"]),
    (entry(version="11.0.0"), ["11.0.0"]),
    (entry(cc="8.7"), ["8.7", "9.0", "NVIDIA H100"]),
    (entry(version="10.9.0", version_compatible=True), ["version-compatible", "10.9.0"]),
    (entry(version="9.2.0", version_compatible=True), ["same major"]),
    (entry(flavour="tensorrt_rtx", version="1.7.1", cc="TensorRT-RTX default targets"), ["tensorrt_rtx"]),
])
def test_mismatch_is_refused_with_reason(e, words):
    why = engine_incompatibility(e, H100)
    assert why is not None
    for w in words:
        assert w in why


def test_compatibility_options():
    assert engine_incompatibility(entry(version="10.3.0", version_compatible=True), H100) is None
    assert engine_incompatibility(entry(cc="8.6", hardware_compatibility="ampere_plus"), H100) is None
    turing = LocalTensorRT("tensorrt", "10.8.0", "7.5")
    assert engine_incompatibility(entry(version="10.8.0", cc="8.6", hardware_compatibility="ampere_plus"), turing)
    rtx = LocalTensorRT("tensorrt_rtx", "1.7.1.116", "8.9")
    assert engine_incompatibility(entry("tensorrt_rtx", "1.7.1", "8.6", compute_capabilities=["8.6", "8.9"]), rtx) is None
    assert engine_incompatibility(entry("tensorrt_rtx", "1.7.1", "8.9,12.0"), rtx) is None
    assert "8.6,12.0" in engine_incompatibility(entry("tensorrt_rtx", "1.7.1", "8.6,12.0"), rtx)
    # RTX default targets are 8.6 / 8.9 / 12.0 (manifests before the real list was recorded say so in words)
    assert engine_incompatibility(entry("tensorrt_rtx", "1.7.1", "8.6,8.9,12.0"), rtx) is None
    assert engine_incompatibility(entry("tensorrt_rtx", "1.7.1", "TensorRT-RTX default targets"), rtx) is None
    for other in ("9.0", "8.7", "11.0", "10.0", "8.0"):  # Hopper, Orin, Thor, datacenter Blackwell, A100
        gpu = LocalTensorRT("tensorrt_rtx", "1.7.1", other)
        assert "no Hopper, Orin, Thor or datacenter Blackwell" in engine_incompatibility(
            entry("tensorrt_rtx", "1.7.1", "TensorRT-RTX default targets"), gpu)


@pytest.mark.parametrize("recorded", ["unknown", "current", "", "N/A"])
def test_unknown_recorded_capability_is_refused_not_let_through(recorded):
    """A record that names no readable capability proves nothing: refused with the reason."""
    for local, flavour in ((H100, "tensorrt"), (LocalTensorRT("tensorrt_rtx", "1.7.1", "8.9"), "tensorrt_rtx")):
        why = engine_incompatibility(entry(flavour, local.version, recorded), local)
        assert why is not None and "not readable" in why and local.compute_capability in why
    # hardware-compatible engines need no recorded capability
    assert engine_incompatibility(entry(cc="unknown", hardware_compatibility="ampere_plus"), H100) is None


def test_unreadable_local_capability_is_refused():
    assert "not readable" in engine_incompatibility(entry(), LocalTensorRT("tensorrt", "10.8.0.43", "N/A"))


def test_check_engines_names_every_file_and_the_rebuild_command():
    bad = [entry(cc="8.7"), EngineEntry("heads", "fp16/heads.engine", "0" * 64, "tensorrt", "10.3.0", "", "9.0")]
    with pytest.raises(EngineMismatchError) as info:
        check_engines(bad, H100, "deploy/sudoku", "fp16")
    msg = str(info.value)
    assert "fp16/l_step.engine" in msg and "fp16/heads.engine" in msg
    assert rebuild_command("deploy/sudoku", "fp16") in msg
    check_engines([entry()], H100, "deploy/sudoku", "fp16")  # no error


def _with_engines(tiny_deploy, tmp_path, cc: str):
    """A copy of the deployment whose fp32 variant lists (garbage) engines built for ``cc``."""
    from deploy_helpers import copy_deployment

    from hrm.io import sha256_file
    from hrm.manifest import STEP_GRAPHS, load_manifest

    d = copy_deployment(tiny_deploy, tmp_path / "d")
    man = load_manifest(d, verify=False)
    for kind in STEP_GRAPHS:
        rel = f"v1/fp32/{kind}.engine"
        (d / rel).write_bytes(b"not an engine")
        man.variants["fp32"].engines[kind] = EngineEntry(kind, rel, sha256_file(d / rel), "tensorrt", "10.3.0.26",
                                                         "Jetson Orin", cc)
    man.save()
    return d


def test_trt_backend_refuses_before_loading(tiny_deploy, tmp_path, monkeypatch):
    """Manifest-level: the backend compares records with the local facts before any engine byte is read."""
    import hrm.runtime.backends.trt as trt_backend
    from hrm.runtime import Session

    d = _with_engines(tiny_deploy, tmp_path, cc="8.7")
    monkeypatch.setattr(trt_backend, "detect_local", lambda flavour: H100)
    with pytest.raises(EngineMismatchError) as info:
        Session(d, backend="trt", device="cuda").activate()
    msg = str(info.value)
    assert "built with tensorrt 10.3.0.26, this machine has 10.8.0.43" in msg
    assert "hrm-export --checkpoint" in msg and "--precision fp32,fp16 --engine --force" in msg


def test_trt_backend_without_engines_says_how_to_build(tiny_deploy, monkeypatch):
    import hrm.runtime.backends.trt as trt_backend
    from hrm.runtime import Session

    monkeypatch.setattr(trt_backend, "detect_local", lambda flavour: H100)
    with pytest.raises(ManifestError, match="no TensorRT engines .* build them with: hrm-export .* --engine"):
        Session(tiny_deploy, backend="trt", device="cuda").activate()


def test_trt_backend_is_cuda_only(tiny_deploy):
    from hrm.runtime import Session

    with pytest.raises(ValueError, match="CUDA only"):
        Session(tiny_deploy, backend="trt", device="cpu")
