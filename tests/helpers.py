"""Builders shared by tests: official-layout checkpoints; the tiny model and its random weights are
:mod:`hrm.tiny`'s (re-exported here for the tests' imports).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.config import HRMConfig
from hrm.tiny import random_tensors, tiny_config  # noqa: F401

MODELS = Path(__file__).resolve().parents[1] / "models"  # the repo's bundled models (and proxies/)


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
