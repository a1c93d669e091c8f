"""Losses of the official ``ACTLossHead`` (models/losses.py): stablemax LM loss + Q-learning BCE.

Why stablemax: the paper trains with it (Prieto et al., "Grokking at the edge of numerical
stability"): ``s(x) = x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` below, normalised like a softmax.
It grows linearly instead of exponentially, which keeps late training (near 100% train accuracy)
from the float blow-ups softmax shows. Upstream computes it in float64; so do we.

Normalisation (checked against ``pretrain.py``): the LM loss is, per sequence, the mean over its
valid (non-ignored) tokens, *summed* over the batch; the Q losses are summed over the batch; the
total ``lm + 0.5 * (q_halt + q_continue)`` is divided by the global batch size before
``backward()``. :func:`act_loss` returns the batch *sum*; the trainer divides by the batch size.

Labels keep our raw tokens: ``ignore_label_id`` (0 = PAD, which the official loader maps to -100)
marks positions that neither count in the loss nor in accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = ("stablemax", "softmax")


def stablemax_s(x: torch.Tensor, epsilon: float = 1e-30) -> torch.Tensor:
    """The stablemax kernel ``s(x)``: ``x + 1`` for ``x >= 0``, ``1 / (1 - x + eps)`` otherwise."""
    return torch.where(x < 0, 1 / (1 - x + epsilon), x + 1)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(s(x) / sum(s(x)))`` along ``dim``."""
    s_x = stablemax_s(x)
    return torch.log(s_x / s_x.sum(dim=dim, keepdim=True))


def valid_mask(labels: torch.Tensor, ignore_label_id: int | None) -> torch.Tensor:
    """True where a label counts (everything when ``ignore_label_id`` is None)."""
    if ignore_label_id is None:
        return torch.ones_like(labels, dtype=torch.bool)
    return labels != ignore_label_id


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_label_id: int | None = 0) -> torch.Tensor:
    """Per-token stablemax cross-entropy in float64; 0 at ignored positions. Shape = labels.shape."""
    logprobs = log_stablemax(logits.to(torch.float64), dim=-1)
    mask = valid_mask(labels, ignore_label_id)
    safe = torch.where(mask, labels, 0).long()
    picked = torch.gather(logprobs, -1, safe.unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_label_id: int | None = 0) -> torch.Tensor:
    """Per-token softmax cross-entropy in float32; 0 at ignored positions (upstream's alternative)."""
    mask = valid_mask(labels, ignore_label_id)
    target = torch.where(mask, labels, -100).long()
    flat = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                           ignore_index=-100, reduction="none")
    return flat.view(labels.shape)


def token_loss(loss_type: str):
    """The per-token loss function for ``loss_type`` ("stablemax" as in the paper, or "softmax")."""
    if loss_type == "stablemax":
        return stablemax_cross_entropy
    if loss_type == "softmax":
        return softmax_cross_entropy
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def q_continue_target(next_q_halt: torch.Tensor, next_q_continue: torch.Tensor, is_last_step: torch.Tensor) -> torch.Tensor:
    """Bootstrapped Q target for "continue" (official ACT wrapper, no replay buffer / target net).

    Continuing is worth what the *next* segment's best action is worth, ``sigmoid(max(q_halt',
    q_continue'))``; at the last allowed step continuing means being forced to halt next, so the
    target is ``sigmoid(q_halt')``.
    """
    best = torch.where(is_last_step, next_q_halt, torch.maximum(next_q_halt, next_q_continue))
    return torch.sigmoid(best.float())


@dataclass
class ACTLoss:
    """Batch sums (divide by the batch size for the official scale) and detached correctness."""

    total: torch.Tensor  # lm + 0.5 * (q_halt + q_continue), summed over the batch
    lm: torch.Tensor
    q_halt: torch.Tensor
    q_continue: torch.Tensor
    token_accuracy: torch.Tensor  # [B] fraction of valid tokens right (detached)
    seq_correct: torch.Tensor  # [B] bool, every valid token right (the q_halt target)


def act_loss(logits: torch.Tensor, q_halt: torch.Tensor, q_continue: torch.Tensor, labels: torch.Tensor,
             target_q_continue: torch.Tensor | None = None, loss_type: str = "stablemax",
             ignore_label_id: int | None = 0) -> ACTLoss:
    """The official ACTLossHead loss for one segment of a batch.

    ``q_halt`` is trained (BCE with logits) to predict "this segment's answer is exactly right";
    ``q_continue`` towards ``target_q_continue`` when given (training with ACT), else not at all.
    """
    mask = valid_mask(labels, ignore_label_id)
    with torch.no_grad():
        counts = mask.sum(-1)
        divisor = counts.clamp_min(1)
        is_correct = mask & (logits.argmax(-1) == labels)
        seq_correct = is_correct.sum(-1) == counts
        token_accuracy = is_correct.float().sum(-1) / divisor
    per_token = token_loss(loss_type)(logits, labels, ignore_label_id)
    lm = (per_token / divisor.unsqueeze(-1)).sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(q_halt.float(), seq_correct.float(), reduction="sum")
    if target_q_continue is not None:
        q_cont_loss = F.binary_cross_entropy_with_logits(q_continue.float(), target_q_continue.float(), reduction="sum")
    else:
        q_cont_loss = torch.zeros((), device=logits.device)
    total = lm + 0.5 * (q_halt_loss + q_cont_loss)
    return ACTLoss(total, lm.detach(), q_halt_loss.detach(), q_cont_loss.detach(), token_accuracy, seq_correct)
