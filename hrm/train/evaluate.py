"""Held-out evaluation: exact and token accuracy under fixed halting and under ACT.

One :func:`hrm.model.solve` pass per batch in ``fixed`` mode with ``trace=True`` gives every
segment's prediction and q values; the ACT result of a row is its prediction at the first segment
where the model's halt rule fires (``q_halt > q_continue``, TRM: ``q_halt > 0``), or the cap. Rows never influence each other in ``solve``, so this is
exactly what ``solve(halting="act")`` returns, at half the cost of running both modes.
"""

from __future__ import annotations

import torch

from hrm.halting import DEFAULT_HALT_RULE, halts
from hrm.model import RecursiveModel, solve
from hrm.train.arrays import PuzzleArrays
from hrm.train.losses import valid_mask


def act_halt_segments(q_halt: torch.Tensor, q_continue: torch.Tensor, rule: str = DEFAULT_HALT_RULE) -> torch.Tensor:
    """[B, M] per-segment q values -> [B] 1-based segment where ACT halts under ``rule`` (M if it never does)."""
    stop = halts(rule, q_halt, q_continue).clone()
    stop[:, -1] = True
    return stop.float().argmax(dim=1) + 1  # argmax returns the first maximum


def _scores(pred: torch.Tensor, labels: torch.Tensor, ignore_label_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    mask = valid_mask(labels, ignore_label_id)
    right = (pred == labels) & mask
    counts = mask.sum(-1)
    return right.sum(-1) == counts, right.sum(-1).float() / counts.clamp_min(1)


@torch.no_grad()
def evaluate(model: RecursiveModel, data: PuzzleArrays, batch_size: int = 256, device: torch.device | str = "cpu",
             max_segments: int | None = None, ignore_label_id: int | None = 0) -> dict[str, float]:
    """Metrics over ``data``: ``exact_fixed``, ``token_fixed``, ``exact_act``, ``token_act``,
    ``segments_act`` (mean), ``q_halt_accuracy`` (sign of q_halt vs the fixed answer being right)."""
    sums = dict(exact_fixed=0.0, token_fixed=0.0, exact_act=0.0, token_act=0.0, segments_act=0.0, q_halt_accuracy=0.0)
    n = len(data)
    for start in range(0, n, batch_size):
        tokens = torch.from_numpy(data.inputs[start:start + batch_size]).to(device)
        ids = torch.from_numpy(data.puzzle_ids[start:start + batch_size]).to(device)
        labels = torch.from_numpy(data.labels[start:start + batch_size]).to(device).long()
        out = solve(model, tokens, ids, halting="fixed", max_segments=max_segments, trace=True)
        exact, token = _scores(out.predictions, labels, ignore_label_id)
        seg = act_halt_segments(out.q_halt, out.q_continue, model.config.halt_rule)
        trace = torch.stack(out.trace, dim=1)  # [B, M, S]
        act_pred = trace[torch.arange(trace.shape[0], device=trace.device), seg - 1]
        exact_a, token_a = _scores(act_pred, labels, ignore_label_id)
        sums["exact_fixed"] += float(exact.sum())
        sums["token_fixed"] += float(token.sum())
        sums["exact_act"] += float(exact_a.sum())
        sums["token_act"] += float(token_a.sum())
        sums["segments_act"] += float(seg.sum())
        sums["q_halt_accuracy"] += float(((out.q_halt[:, -1] >= 0) == exact).sum())
    metrics = {k: v / max(n, 1) for k, v in sums.items()}
    metrics["count"] = float(n)
    return metrics

