"""Builders shared by tests: official-layout checkpoints and numpy-only random weights; the tiny HRM / TRM
and their random weights are :mod:`hrm.tiny`'s (re-exported here for the tests' imports).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.config import HRMConfig
from hrm.tiny import random_tensors, tiny_config, tiny_trm_config  # noqa: F401

MODELS = Path(__file__).resolve().parents[1] / "models"  # the repo's bundled models (and proxies/)


def numpy_random_tensors(config: HRMConfig, seed: int = 0, q_scale: float = 0.5,
                         block_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Random weights with official names from numpy alone (no torch RNG, so the same on every
    machine and torch version): N(0, 1/fan_in) linears, N(0, 1/hidden) embeddings, a random Q head,
    a non-zero puzzle embedding, and H_init / L_init rounded to bf16 as official checkpoints store them.

    ``block_scale`` shrinks the transformer blocks' weights. At 1 a random ``mlp_t`` TRM is chaotic
    (measured: a 1e-6 change of z_H grows x10-30 per segment, so ORT and PyTorch, which differ in
    summation order by ~1e-7, part after 3 segments); at 0.5 it is not (1e-5 after 4 segments), which is
    what chained-segment export checks need. Attention TRMs and HRMs are not chaotic at 1."""
    from hrm.checkpoint import expected_shapes

    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in sorted(expected_shapes(config).items()):
        if name in ("H_init", "L_init"):
            v = rng.standard_normal(shape).astype(np.float32)
            v = (v.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)  # truncate to bf16
        elif name == "q_head.bias":
            v = np.array([0.0, 0.1], dtype=np.float32)
        elif name == "q_head.weight":
            v = rng.standard_normal(shape) * q_scale / np.sqrt(shape[1])
        elif name == "puzzle_emb.weights":
            v = rng.standard_normal(shape) * 0.1
        elif name.endswith("embedding_weight"):
            v = rng.standard_normal(shape) / np.sqrt(config.hidden_size)
        else:  # [out, in] linear
            v = rng.standard_normal(shape) / np.sqrt(shape[1])
            if name.startswith(("L_level.", "H_level.")):
                v = v * block_scale
        out[name] = np.asarray(v, dtype=np.float32)
    return out



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
    names = {"hrm": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
             "trm": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"}
    arch = {"name": names[c.arch],
            "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
            "halt_exploration_prob": c.halt_exploration_prob, "halt_max_steps": c.halt_max_steps,
            "H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "H_layers": c.H_layers, "L_layers": c.L_layers,
            "hidden_size": c.hidden_size, "num_heads": c.num_heads, "expansion": c.expansion,
            "puzzle_emb_ndim": c.puzzle_emb_ndim, "pos_encodings": c.pos_encodings}
    if c.arch == "trm":  # the fields the TRM repo's config adds (all_config.yaml dumps them all)
        arch.update(forward_dtype="bfloat16", mlp_t=c.mlp_t, puzzle_emb_len=c.puzzle_emb_len or 0,
                    no_ACT_continue=c.no_ACT_continue)
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
