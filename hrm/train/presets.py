"""Named training recipes. Two are meant for one H100 in about 8-10 minutes each (``sudoku9``,
``maze``; throughput measured there, accuracy not); the ``*-tiny`` ones run on 2 CPU cores in a few
minutes and show the code path end to end (``sudoku4-tiny``: ~97% exact on held-out 4x4 puzzles).

Size rule for shipped models: the fp16 checkpoint must stay under 15 MB, i.e. about 7M parameters.
With ``hidden_size`` 256, expansion 4 (SwiGLU width 768) a block has 0.85M parameters, so 4+4 layers
is 6.8M.
"""

from __future__ import annotations

import copy
from typing import Any

from hrm.errors import ConfigError
from hrm.train.config import TrainConfig

_GPU_ARCH = dict(hidden_size=256, num_heads=4, H_layers=4, L_layers=4, H_cycles=2, L_cycles=2, expansion=4.0,
                 pos_encodings="rope", halt_exploration_prob=0.1)
# One H100, ~9 min: the budget ends the run (cosine to 0.1 follows the clock), bf16 activations.
_GPU_RUN = dict(steps=8000, lr=3e-4, lr_warmup_steps=300, lr_min_ratio=0.1, weight_decay=0.1, puzzle_emb_lr=3e-4,
                eval_every=1000, log_every=50, time_budget=540.0, ckpt_dtype="fp16")

# CPU: D128 learned positions learn 4x4 Sudoku ~2x faster per step than D64 or RoPE (measured); lr 2e-3
# and above stalls with learned positions, 1e-3 is safe.
_TINY_ARCH = dict(hidden_size=128, num_heads=4, H_layers=2, L_layers=2, H_cycles=2, L_cycles=2, expansion=2.0,
                  pos_encodings="learned")

PRESETS: dict[str, dict[str, Any]] = {
    "sudoku9": dict(
        _GPU_RUN, task="sudoku", size=9, difficulty="any", n_train=20000, n_eval=1000,
        arch=dict(_GPU_ARCH, halt_max_steps=12), batch_size=768, eval_batch_size=1000, out="runs/sudoku9",
    ),
    "maze": dict(
        _GPU_RUN, task="maze", size=15, n_train=30000, n_eval=1000,
        arch=dict(_GPU_ARCH, halt_max_steps=8), batch_size=384, eval_batch_size=500, out="runs/maze",
    ),
    "sudoku4-tiny": dict(
        task="sudoku", size=4, n_train=5000, n_eval=256,
        arch=dict(_TINY_ARCH, halt_max_steps=4),
        steps=2000, batch_size=64, lr=1e-3, lr_min_ratio=0.1, lr_warmup_steps=50, puzzle_emb_lr=1e-3,
        eval_every=200, eval_batch_size=256, log_every=25, device="cpu", out="runs/sudoku4-tiny",
    ),
    "maze-tiny": dict(
        task="maze", size=7, n_train=5000, n_eval=256,
        arch=dict(_TINY_ARCH, halt_max_steps=4),
        steps=1500, batch_size=64, lr=1e-3, lr_warmup_steps=50, puzzle_emb_lr=1e-3, eval_every=200,
        eval_batch_size=256, log_every=25, device="cpu", out="runs/maze-tiny",
    ),
}


def preset_config(name: str | None, **overrides: Any) -> TrainConfig:
    """``TrainConfig`` from preset ``name`` (or the defaults for None) with ``overrides`` on top;
    ``arch`` overrides are merged field by field."""
    if name is not None and name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    base = TrainConfig(preset=name, **(copy.deepcopy(PRESETS[name]) if name else {}))
    return base.replace(**overrides).validate()
