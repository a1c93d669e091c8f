"""The tiny HRM / TRM and random weights: one definition for the tests, ``hrm-bench --random-*`` and smoke checks.

:data:`TINY` is a 4x4-Sudoku-shaped model (hidden 64, 2+2 layers, N=T=2, 4 segments, 0.26M parameters)
small enough for sub-second CPU runs; :func:`random_tensors` gives any config official-named weights
from the PyTorch model's own initialisation (torch imported on call), with a random Q head instead of the
"never halt" init, so ACT rows halt at different segments, and a non-zero puzzle embedding, so puzzle
ids matter. Tests build their fixtures from these (``tests/helpers.py``), so a benchmark of the tiny
model measures exactly the model the tests prove.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrm.config import HRMConfig

TINY = dict(seq_len=16, vocab_size=6, num_puzzle_identifiers=3, H_cycles=2, L_cycles=2, H_layers=2, L_layers=2,
            hidden_size=64, num_heads=4, expansion=2.0, puzzle_emb_ndim=64, halt_max_steps=4,
            forward_dtype="float32")

#: The TRM twin of :data:`TINY`: one 2-layer network, N=3, T=2, a 4-position puzzle prefix, q_halt > 0
#: halting (attention + RoPE; ``mlp_t=True, pos_encodings="none"`` for the MLP one).
TINY_TRM = dict(TINY, arch="trm", H_layers=0, H_cycles=3, L_cycles=2, puzzle_emb_len=4, no_ACT_continue=True)


def tiny_config(**changes: Any) -> HRMConfig:
    """:data:`TINY` with ``changes`` applied, validated."""
    return HRMConfig(**{**TINY, **changes}).validate()


def tiny_trm_config(**changes: Any) -> HRMConfig:
    """:data:`TINY_TRM` with ``changes`` applied, validated."""
    return HRMConfig(**{**TINY_TRM, **changes}).validate()


def random_tensors(config: HRMConfig, seed: int = 0, q_scale: float = 0.5) -> dict[str, np.ndarray]:
    """Official-named random weights for ``config`` (same ``seed``, same bits)."""
    import torch

    from hrm.model import build_model

    torch.manual_seed(seed)
    t = build_model(config).numpy_tensors()
    rng = np.random.default_rng(seed)
    t["q_head.weight"] = (rng.standard_normal(t["q_head.weight"].shape) * q_scale
                          / np.sqrt(config.hidden_size)).astype(np.float32)
    t["q_head.bias"] = np.array([0.0, 0.1], dtype=np.float32)
    if "puzzle_emb.weights" in t:
        t["puzzle_emb.weights"] = (rng.standard_normal(t["puzzle_emb.weights"].shape) * 0.1).astype(np.float32)
    return t
