"""The scripts under benchmarks/ still run and measure what their results claim (on the tiny model)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ort_contrib_profile_separates_the_fused_ops(tmp_path, monkeypatch):
    """``cpu-contrib-profile.json``'s claim: the contrib l_step runs attention as one MultiHeadAttention
    kernel where the standard one spells out Softmax, and the per-op times account for the kernel time."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    monkeypatch.setenv("HRM_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "profile.json"
    _load("ort_contrib_profile").main(["--shape", "tiny", "--rounds", "1", "--reps", "2", "--out", str(out)])
    doc = json.loads(out.read_text())
    std, contrib = doc["standard"], doc["ort-contrib"]
    assert "Softmax" in std["per_op_ms"] and "MultiHeadAttention" not in std["per_op_ms"]
    assert "MultiHeadAttention" in contrib["per_op_ms"] and "Softmax" not in contrib["per_op_ms"]
    assert "SkipSimplifiedLayerNormalization" in contrib["per_op_ms"]
    for r in (std, contrib):
        assert sum(r["per_op_ms"].values()) == pytest.approx(r["kernels_ms"], abs=0.02)
        assert 0 < r["matmul_fraction"] <= r["matmul_and_attention_fraction"] <= 1
    assert doc["command"].endswith("--shape tiny --rounds 1 --reps 2 --out " + str(out))
