"""Optimizers and the learning-rate schedule of the official ``pretrain.py``.

* Main weights: AdamATan2 (the ``adam-atan2`` package) when it imports and ``optimizer`` is
  "auto" or "adam_atan2", else ``torch.optim.AdamW``: same betas (0.9, 0.95) and decoupled weight
  decay; AdamATan2 only replaces Adam's ``m / (sqrt(v) + eps)`` by a scale-invariant ``atan2``.
* Puzzle embedding: its own optimizer and LR (upstream: sign-SGD with decoupled weight decay on the
  rows in the batch, ``CastedSparseEmbeddingSignSGD_Distributed``; "Adam is about sign-SGD when the
  gradient is very sparse"). Here the table is a dense parameter; rows with no gradient are left
  alone, which is what the sparse upstream version does.
* Schedule: linear warm-up, then cosine from ``lr`` to ``lr * lr_min_ratio``
  (``lr_min_ratio = 1`` -> constant, the upstream default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hrm.model import RecursiveModel

OPTIMIZERS = ("auto", "adamw", "adam_atan2")


class SignSGD(torch.optim.Optimizer):
    """Sign-SGD with decoupled weight decay, applied only to rows that received gradient."""

    def __init__(self, params, lr: float = 1e-2, weight_decay: float = 0.1) -> None:
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                rows = g.reshape(g.shape[0], -1).ne(0).any(-1) if g.ndim > 1 else g.ne(0)
                if not bool(rows.any()):
                    continue
                upd = p[rows].mul(1.0 - lr * wd).add_(torch.sign(g[rows]), alpha=-lr)
                p[rows] = upd
        return None


@dataclass
class OptimizerSet:
    """The optimizers with their base LRs, stepped together; ``note`` says what was chosen and why."""

    optimizers: list[torch.optim.Optimizer]
    base_lrs: list[float]
    note: str

    def set_lr_scale(self, scale: float) -> float:
        """Set every optimizer's LR to ``base * scale``; returns the main LR."""
        for opt, base in zip(self.optimizers, self.base_lrs):
            for group in opt.param_groups:
                group["lr"] = base * scale
        return self.base_lrs[-1] * scale

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def state_dict(self) -> list[dict]:
        return [opt.state_dict() for opt in self.optimizers]

    def load_state_dict(self, states: list[dict]) -> None:
        if len(states) != len(self.optimizers):
            raise ValueError(f"saved state has {len(states)} optimizers, this run {len(self.optimizers)}")
        for opt, state in zip(self.optimizers, states):
            opt.load_state_dict(state)


def _adam_atan2():
    try:
        from adam_atan2 import AdamATan2  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - any import failure (missing CUDA ext too) means "not available"
        return None
    return AdamATan2


def build_optimizers(model: RecursiveModel, lr: float, weight_decay: float, betas: tuple[float, float],
                     puzzle_emb_lr: float, puzzle_emb_weight_decay: float, optimizer: str = "auto") -> OptimizerSet:
    """Main optimizer over every weight but the puzzle embedding, sign-SGD over that (if any)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    puzzle = [p for n, p in model.named_parameters() if n == "puzzle_emb.weights"]
    main = [p for n, p in model.named_parameters() if n != "puzzle_emb.weights"]
    atan2 = _adam_atan2() if optimizer in ("auto", "adam_atan2") else None
    if atan2 is not None:
        main_opt: torch.optim.Optimizer = atan2(main, lr=lr, weight_decay=weight_decay, betas=betas)
        note = "AdamATan2 (adam-atan2 package)"
    else:
        main_opt = torch.optim.AdamW(main, lr=lr, weight_decay=weight_decay, betas=betas, eps=1e-8)
        note = "AdamW" + (" (adam-atan2 not importable; fell back)" if optimizer != "adamw" else "")
    opts: list[torch.optim.Optimizer] = []
    lrs: list[float] = []
    if puzzle:
        opts.append(SignSGD(puzzle, lr=puzzle_emb_lr, weight_decay=puzzle_emb_weight_decay))
        lrs.append(puzzle_emb_lr)
        note += f"; puzzle embedding: sign-SGD lr {puzzle_emb_lr:g}"
    opts.append(main_opt)
    lrs.append(lr)
    return OptimizerSet(opts, lrs, note)


def lr_scale(step: int, warmup_steps: int, total_steps: int, min_ratio: float, time_frac: float | None = None) -> float:
    """Multiplier of the base LR: linear warm-up over ``warmup_steps``, then a half cosine to
    ``min_ratio`` at ``total_steps`` (the official ``cosine_schedule_with_warmup_lr_lambda``).

    ``time_frac`` (elapsed / time budget), when given, advances the cosine at least as fast as the
    clock, so a run cut by its time budget still ends at the minimum LR.
    """
    if step < warmup_steps:
        return float(step) / max(1, warmup_steps)
    frac = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if time_frac is not None:
        frac = max(frac, time_frac)
    frac = min(max(frac, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac))
