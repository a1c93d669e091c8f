"""Builders shared by tests: tiny random HRMs and official-layout checkpoints.

Kept as plain functions (not only fixtures) so benchmarks and scripts can build the same models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.config import HRMConfig

MODELS = Path(__file__).resolve().parents[1] / "models"  # the repo's bundled models (and proxies/)

TINY = dict(seq_len=16, vocab_size=6, num_puzzle_identifiers=3, H_cycles=2, L_cycles=2, H_layers=2, L_layers=2,
            hidden_size=64, num_heads=4, expansion=2.0, puzzle_emb_ndim=64, halt_max_steps=4,
            forward_dtype="float32")


def tiny_config(**changes) -> HRMConfig:
    """A 4x4-Sudoku-shaped HRM small enough for sub-second CPU tests."""
    return HRMConfig(**{**TINY, **changes}).validate()


def random_tensors(config: HRMConfig, seed: int = 0, q_scale: float = 0.5) -> dict[str, np.ndarray]:
    """Random weights with official names. The Q head gets random (not -5) weights so ACT rows halt
    at different segments, and the puzzle embedding is non-zero so puzzle ids matter."""
    import torch

    from hrm.model import HRM

    torch.manual_seed(seed)
    model = HRM(config)
    t = model.numpy_tensors()
    rng = np.random.default_rng(seed)
    t["q_head.weight"] = (rng.standard_normal(t["q_head.weight"].shape) * q_scale / np.sqrt(config.hidden_size)).astype(np.float32)
    t["q_head.bias"] = np.array([0.0, 0.1], dtype=np.float32)
    if "puzzle_emb.weights" in t:
        t["puzzle_emb.weights"] = (rng.standard_normal(t["puzzle_emb.weights"].shape) * 0.1).astype(np.float32)
    return t


def write_official_checkpoint(directory: Path, config: HRMConfig, tensors: dict[str, np.ndarray],
                              step: int = 1000, prefix: str = "_orig_mod.model.inner.",
                              with_dataset_json: bool = True) -> Path:
    """Write what the official ``pretrain.py`` leaves behind: ``step_N`` (torch.save of a prefixed
    state dict, bf16 H_init/L_init, fp32 weights) and ``all_config.yaml`` (+ a dataset.json)."""
    import json

    import torch
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in tensors.items():
        t = torch.from_numpy(np.asarray(v, dtype=np.float32))
        state[prefix + k] = t.to(torch.bfloat16) if k in ("H_init", "L_init") else t
    path = directory / f"step_{step}"
    torch.save(state, path)
    c = config
    arch = {"name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
            "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
            "halt_exploration_prob": c.halt_exploration_prob, "halt_max_steps": c.halt_max_steps,
            "H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "H_layers": c.H_layers, "L_layers": c.L_layers,
            "hidden_size": c.hidden_size, "num_heads": c.num_heads, "expansion": c.expansion,
            "puzzle_emb_ndim": c.puzzle_emb_ndim, "pos_encodings": c.pos_encodings}
    data_path = "data/tiny"
    cfg = {"arch": arch, "data_path": data_path, "global_batch_size": 768, "lr": 1e-4, "epochs": 20000}
    (directory / "all_config.yaml").write_text(yaml.safe_dump(cfg))
    if with_dataset_json:
        ds = directory / data_path / "test"
        ds.mkdir(parents=True, exist_ok=True)
        (ds / "dataset.json").write_text(json.dumps({
            "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": c.vocab_size,
            "seq_len": c.seq_len, "num_puzzle_identifiers": c.num_puzzle_identifiers, "total_groups": 1,
            "mean_puzzle_examples": 1.0, "sets": ["all"]}))
    return path
