"""Shared fixtures: a tiny random HRM in our format and in the official layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Tiny models run fastest on one thread; several threads per process oversubscribe CI's 2 cores
# (pytest, torch and ONNX Runtime pools would otherwise fight, 5x slower here).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Idle OpenMP workers sleep instead of spinning: with other processes on the cores, spinning made
# torch CPU steps 10-30x slower (measured). Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import random_tensors, tiny_config, write_official_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cfg():
    return tiny_config()


@pytest.fixture(scope="session")
def tiny_tensors(tiny_cfg):
    pytest.importorskip("torch")
    return random_tensors(tiny_cfg, seed=0)


@pytest.fixture(scope="session")
def tiny_ckpt_path(tmp_path_factory, tiny_cfg, tiny_tensors):
    """Our-format checkpoint of the tiny model, with 4x4 sudoku task metadata."""
    from hrm.checkpoint import save_checkpoint

    task = {"name": "sudoku", "grid": [4, 4], "seq_len": 16, "vocab_size": 6, "params": {"size": 4}}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, tiny_cfg, tiny_tensors, task=task)


@pytest.fixture(scope="session")
def official_ckpt_path(tmp_path_factory, tiny_cfg, tiny_tensors):
    """An official-layout checkpoint (step_N + all_config.yaml + dataset.json) of the tiny model."""
    pytest.importorskip("torch")
    return write_official_checkpoint(tmp_path_factory.mktemp("official"), tiny_cfg, tiny_tensors)
