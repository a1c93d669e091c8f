"""Fixtures for the reliability tests: the tiny random HRM exported once (fp32, no validation)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def rel_deploy(tmp_path_factory, tiny_ckpt_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("reliability") / "tiny"
    export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False)
    return out


@pytest.fixture(scope="session")
def rel_tokens(tiny_cfg):
    rng = np.random.default_rng(3)
    return rng.integers(1, tiny_cfg.vocab_size, (12, tiny_cfg.seq_len)).astype(np.int32)
