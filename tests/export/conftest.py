"""Fixtures for the exporter tests: one full export of the tiny model, shared by the test modules."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_ckpt_path):
    """(report, out_dir): fp32/fp16/bf16 + fused segment of the tiny model, validated."""
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("export") / "deploy"
    report = export_deployment(tiny_ckpt_path, out, precisions="fp32,fp16,bf16", segment=True)
    return report, out


@pytest.fixture(scope="session")
def official_export(tmp_path_factory, official_ckpt_path):
    """(report, out_dir): the official-layout checkpoint fixture, all precisions, validated."""
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("export-official") / "deploy"
    report = export_deployment(official_ckpt_path, out, precisions="fp32,fp16,bf16")
    return report, out
