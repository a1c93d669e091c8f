"""Full-size (27M parameters, official dims) export + validation: minutes on 2 CPU cores, so slow.

Runs only when asked for: ``pytest -m slow tests/export`` or ``HRM_RUN_SLOW=1``.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def want_slow(request):
    if "slow" not in (request.config.getoption("markexpr") or "") and os.environ.get("HRM_RUN_SLOW", "0") == "0":
        pytest.skip("full-size export takes minutes; run with -m slow or HRM_RUN_SLOW=1")


def test_full_size_sudoku_export(want_slow, tmp_path):
    from helpers import random_tensors

    from hrm.checkpoint import save_checkpoint
    from hrm.config import HRMConfig
    from hrm.export import export_deployment
    from hrm.manifest import load_manifest

    cfg = HRMConfig(seq_len=81, vocab_size=11)
    ckpt = save_checkpoint(tmp_path / "sudoku.safetensors", cfg, random_tensors(cfg),
                           task={"name": "sudoku", "grid": [9, 9], "seq_len": 81, "vocab_size": 11, "params": {"size": 9}})
    report = export_deployment(ckpt, tmp_path / "deploy", precisions="fp32,bf16")
    assert report.passed
    fp32 = report.validation["fp32"]
    assert max(g["max_rel"] for g in fp32["graphs"].values()) < 1e-5  # measured ~1.4e-6
    assert fp32["chain"]["max_rel"] < 1e-4 and fp32["chain"]["prediction_agreement"] == 1.0
    sizes = {(r.precision, r.kind): r.bytes for r in report.graphs}
    assert 50 * 2**20 < sizes[("fp32", "l_step")] < 56 * 2**20
    assert 25 * 2**20 < sizes[("bf16", "l_step")] < 28 * 2**20
    load_manifest(tmp_path / "deploy", verify=True)
