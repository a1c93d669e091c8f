"""Training configuration: one dataclass, the named presets, and the model config derived from both.

Names follow the official ``cfg_pretrain.yaml`` where there is one (``lr``, ``lr_min_ratio``,
``lr_warmup_steps``, ``weight_decay``, ``beta1``/``beta2``, ``puzzle_emb_lr``...), so a reader of
upstream finds their way. Architecture fields live in ``arch`` as overrides of
:class:`hrm.config.HRMConfig` (official names too); the data decides ``seq_len``, ``vocab_size``
and ``num_puzzle_identifiers``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hrm.config import HRMConfig
from hrm.errors import ConfigError

#: HRMConfig fields a preset or ``--arch`` may set (the rest come from the data or the device);
#: ``arch`` is the family (``--family``).
ARCH_FIELDS = ("arch", "H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "num_heads", "expansion",
               "puzzle_emb_ndim", "pos_encodings", "rope_theta", "rms_norm_eps", "halt_max_steps",
               "halt_exploration_prob", "puzzle_emb_len", "mlp_t", "no_ACT_continue")


@dataclass
class TrainConfig:
    """Everything a training run depends on (recorded in ``run.json`` and the checkpoint)."""

    # data
    task: str = "sudoku"  # "sudoku" | "maze"
    size: int = 4  # sudoku: 4 or 9; maze: side length N
    data: str = "generated"  # "generated" or the path of an official dataset folder (train/ + test/)
    n_train: int = 2000
    n_eval: int = 256
    difficulty: str | None = None  # passed to the task generator (e.g. sudoku "mix")
    augment: bool = True  # on-the-fly symmetries (sudoku: digits/bands/stacks/transpose; maze: dihedral)
    reveal: float = 0.0  # reveal curriculum: fraction of unknown cells given away at the start (0 = off)
    reveal_until: float = 0.5  # training progress at which the revealed fraction reaches 0
    data_cache: str | None = None  # folder for generated .npz files (default: ~/.cache/hrm-deploy/data)
    gen_workers: int = 0  # processes for generation (0: one per CPU core, capped at 16)
    # model (overrides of HRMConfig fields, official names)
    arch: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # start from this checkpoint's weights (ours; its architecture is kept)
    # optimisation (official names and defaults, except steps/batch)
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    lr_min_ratio: float = 1.0
    lr_warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    optimizer: str = "auto"  # "auto" (adam-atan2 if importable, else AdamW) | "adamw" | "adam_atan2"
    loss_type: str = "stablemax"  # "stablemax" | "softmax"
    grad_clip: float | None = None  # upstream clips nothing; optional safety net for tiny runs
    #: evaluate and save an exponential moving average of the weights; None: the family's official recipe
    #: (on for TRM, off for HRM), settled by :meth:`validate`
    ema: bool | None = None
    ema_rate: float = 0.999
    # evaluation, outputs
    eval_every: int = 500
    eval_batch_size: int = 256
    log_every: int = 20
    out: str = "runs/hrm"
    ckpt_dtype: str = "fp32"  # "fp32" | "fp16" (fp16 is what we ship)
    best_metric: str = "exact_act"
    # run control
    time_budget: float | None = None  # wall-clock seconds for training + final eval + checkpoint
    cpu_budget: float | None = None  # the same in process CPU seconds (fair on a shared machine)
    resume: str | None = None  # continue the run in this folder exactly (hrm.train.resume)
    pause_at: int | None = None  # save the resumable state after this step and stop (runs in pieces)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    forward_dtype: str = "auto"  # "auto": bfloat16 on CUDA, float32 on CPU
    compile: bool = False  # torch.compile the L/H stacks (CUDA only pays off)
    threads: int | None = None  # torch CPU threads (None: torch default)
    progress: bool = True
    command: str | None = None  # the command line, recorded for reproducibility
    preset: str | None = None

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``; ``arch`` changes are merged, not replaced."""
        if "arch" in changes:
            changes["arch"] = {**self.arch, **(changes["arch"] or {})}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first bad field."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"train config: field '{name}' {why} (found {getattr(self, name)!r})")

        if self.task not in ("sudoku", "maze"):
            raise bad("task", "must be 'sudoku' or 'maze'")
        for name in ("steps", "batch_size", "n_eval", "eval_every", "eval_batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise bad(name, "must be >= 1")
        if self.data == "generated" and self.n_train < 1:
            raise bad("n_train", "must be >= 1")
        if self.ckpt_dtype not in ("fp32", "fp16"):
            raise bad("ckpt_dtype", "must be 'fp32' or 'fp16'")
        if self.loss_type not in ("stablemax", "softmax"):
            raise bad("loss_type", "must be 'stablemax' or 'softmax'")
        if self.best_metric not in ("exact_act", "exact_fixed", "token_act", "token_fixed"):
            raise bad("best_metric", "must be one of exact_act, exact_fixed, token_act, token_fixed")
        if not 0 <= self.lr_min_ratio <= 1:
            raise bad("lr_min_ratio", "must be in [0, 1]")
        if not 0 <= self.reveal < 1:
            raise bad("reveal", "must be in [0, 1)")
        if not 0 < self.reveal_until <= 1:
            raise bad("reveal_until", "must be in (0, 1]")
        for name in ("time_budget", "cpu_budget"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise bad(name, "must be > 0 seconds")
        if self.time_budget is not None and self.cpu_budget is not None:
            raise bad("cpu_budget", "and time_budget cannot both be set (pick the wall or the CPU clock)")
        if not 0.0 <= self.ema_rate < 1.0:
            raise bad("ema_rate", "must be in [0, 1)")
        if self.ema is None:
            self.ema = self.arch.get("arch", "hrm") == "trm"
        if self.pause_at is not None and int(self.pause_at) < 1:
            raise bad("pause_at", "must be >= 1")
        unknown = sorted(set(self.arch) - set(ARCH_FIELDS))
        if unknown:
            raise ConfigError(f"train config: unknown arch field(s) {unknown}; known: {list(ARCH_FIELDS)}")
        return self


def model_config(cfg: TrainConfig, seq_len: int, vocab_size: int, num_puzzle_identifiers: int,
                 forward_dtype: str) -> HRMConfig:
    """The HRMConfig of a run: HRMConfig defaults (official) < the family's official defaults (TRM:
    ``puzzle_emb_len`` 16, ``no_ACT_continue``, no H stack) < ``cfg.arch`` < the data's sizes.

    ``puzzle_emb_ndim`` follows ``hidden_size`` unless set (official ``${.hidden_size}``).
    """
    from hrm.config import TRM_DEFAULTS

    arch = dict(cfg.arch)
    if arch.get("arch") == "trm":
        arch = {**TRM_DEFAULTS, **arch}
    if "hidden_size" in arch and "puzzle_emb_ndim" not in arch:
        arch["puzzle_emb_ndim"] = arch["hidden_size"]
    return HRMConfig.from_dict({**arch, "seq_len": seq_len, "vocab_size": vocab_size,
                                "num_puzzle_identifiers": num_puzzle_identifiers,
                                "forward_dtype": forward_dtype}, source="train config arch")
