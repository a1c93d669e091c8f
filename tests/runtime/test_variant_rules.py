"""The manifest's one table of which backend and device may run a variant, resolved once per Session."""

from __future__ import annotations

import pytest

from hrm.manifest import RefusedVariant, run_refusal


@pytest.mark.parametrize("precision, ops, backend, device, needle", [
    ("fp32", "standard", "ort", "cpu", None),
    ("fp16", "ort-contrib", "ort", "cuda", None),
    ("bf16", "standard", "trt", "cuda", None),
    ("fp32", "standard", "torch", "cuda:1", None),
    ("int8", "standard", "ort", "cpu", None),
    ("int8", "standard", "ort", "cuda", "CPU execution provider only"),
    ("int8", "standard", "torch", "cpu", "no PyTorch twin"),
    ("int8", "standard", "trt", "cuda", "TensorRT's int8 needs Q/DQ"),
    ("fp16", "standard", "trt", "cpu", "TensorRT runs on CUDA only"),
    ("fp32", "standard", "ort", "tpu", "ONNX Runtime runs on CPU or CUDA only"),
    ("fp16", "ort-contrib", "trt", "cuda", "TensorRT engines are built from --ops standard graphs only"),
])
def test_the_table(precision, ops, backend, device, needle):
    why = run_refusal(precision, ops, backend, device)
    assert (why is None) if needle is None else (needle in why), why


def test_resolve_names_the_manifest_and_the_fused_graph(tiny_deploy, tiny_ckpt_path, tmp_path):
    from hrm.export import export_deployment
    from hrm.manifest import load_manifest

    man = load_manifest(tiny_deploy)
    assert man.resolve("fp16", "ort", "cpu") is man.variant("fp16")
    with pytest.raises(RefusedVariant, match=r"manifest\.json: TensorRT runs on CUDA only") as info:
        man.resolve("fp32", "trt", "cpu")
    assert isinstance(info.value, ValueError)
    plain = tmp_path / "plain"
    export_deployment(tiny_ckpt_path, plain, precisions=["fp32"], validate=False, segment=False)
    with pytest.raises(RefusedVariant, match="no fused 'segment' graph; re-export with --segment"):
        load_manifest(plain).resolve("fp32", "ort", "cpu", fused=True)


def test_session_refuses_at_construction(tiny_deploy):
    """The refusal comes from Session's one resolution, before any backend library is loaded."""
    from hrm.runtime import Session

    with pytest.raises(RefusedVariant, match="TensorRT runs on CUDA only"):
        Session(tiny_deploy, backend="trt", device="cpu")
    with pytest.raises(RefusedVariant, match="ONNX Runtime runs on CPU or CUDA only"):
        Session(tiny_deploy, backend="ort", device="tpu")
