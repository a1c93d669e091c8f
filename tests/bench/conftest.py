"""Fixtures for hrm-bench tests: the tiny random HRM exported once (fp32 + bf16, with the fused segment graph)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_deploy(tmp_path_factory, tiny_ckpt_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("bench") / "tiny"
    export_deployment(tiny_ckpt_path, out, precisions=["fp32", "bf16"], validate=False, segment=True)
    return out
