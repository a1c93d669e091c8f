"""Fixtures for runtime tests: the tiny random HRM exported to deployment directories.

torch is pinned to one thread here: on the 2-core CI box its OpenMP pool collapses under contention
(a 64x512 linear takes 25 ms with 2 threads, 0.4 ms with one), which would make the reference the
slowest part of every test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploy_helpers import export  # noqa: E402

SUDOKU4 = {"name": "sudoku", "grid": [4, 4], "seq_len": 16, "vocab_size": 6, "params": {"size": 4}}


@pytest.fixture(scope="session", autouse=True)
def _torch_one_thread():
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_deploy(tmp_path_factory, tiny_ckpt_path):
    """fp32 + fp16 deployment of the tiny model (4x4 sudoku task metadata, source checkpoint recorded)."""
    pytest.importorskip("onnx")
    return export(tiny_ckpt_path, tmp_path_factory.mktemp("deploy") / "tiny", ("fp32", "fp16"))


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg, tiny_tensors):
    from hrm.model import HRM

    return HRM.from_tensors(tiny_cfg, tiny_tensors)


@pytest.fixture(scope="session")
def batch16(tiny_cfg):
    """16 random inputs with all three puzzle ids (ACT halts these at 1..4 segments on the tiny model)."""
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, tiny_cfg.vocab_size, (16, tiny_cfg.seq_len)).astype(np.int32)
    ids = rng.integers(0, tiny_cfg.num_puzzle_identifiers, 16).astype(np.int32)
    return tokens, ids
