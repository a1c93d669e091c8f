"""Training-time ACT: the persistent carry, row replacement, halting with exploration, Q targets.

This is the official ``HierarchicalReasoningModel_ACTV1.forward`` (and TRM's
``TinyRecursiveReasoningModel_ACTV1.forward``) in training mode, split so each rule can be tested on
its own:

1. :func:`refill` - rows that halted last step get a fresh puzzle and the initial state
   (H_init / L_init), their step counter back to 0. Rows still running keep their puzzle and state:
   that is *deep supervision*, one optimizer step per segment, the state carried (detached) from
   one step to the next. Upstream draws a full new batch every step and keeps only the rows of
   halted slots (the rest of that batch is skipped); we draw exactly as many puzzles as slots
   halted, so every puzzle of an epoch is used.
2. :func:`act_step` - one segment with the truncated gradient (``model.segment(..., truncated_grad=True)``:
   HRM's 1-step gradient, TRM's last H cycle), then, without gradient, the halting decision under the
   model's halt rule and, unless the model has ``no_ACT_continue`` (TRM), the Q-learning target from an
   extra forward segment, as upstream does (no replay buffer, no target network; the large batch plays
   the role of many parallel environments, cf. PQN). With ``no_ACT_continue`` q_halt is trained on
   exact correctness only and no extra segment runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hrm.halting import DEFAULT_HALT_RULE, halts
from hrm.model import RecursiveModel
from hrm.train.losses import q_continue_target
from hrm.train.stream import PuzzleStream


@dataclass
class TrainCarry:
    """What persists across training steps, one row per batch slot."""

    z_H: torch.Tensor  # [B, S+P, D] forward dtype, detached
    z_L: torch.Tensor
    steps: torch.Tensor  # [B] int32 segments run on the current puzzle
    halted: torch.Tensor  # [B] bool: the slot takes a new puzzle at the next refill
    inputs: torch.Tensor  # [B, S] int32
    labels: torch.Tensor  # [B, S] int32 (raw tokens, 0 = ignore)
    puzzle_ids: torch.Tensor  # [B] int32


def empty_carry(model: RecursiveModel, batch_size: int, device: torch.device | str) -> TrainCarry:
    """Every slot halted, so the first :func:`refill` fills the whole batch (as upstream)."""
    z_H, z_L = model.initial_state(batch_size, device)
    S = model.config.seq_len
    return TrainCarry(
        z_H=z_H, z_L=z_L,
        steps=torch.zeros(batch_size, dtype=torch.int32, device=device),
        halted=torch.ones(batch_size, dtype=torch.bool, device=device),
        inputs=torch.zeros(batch_size, S, dtype=torch.int32, device=device),
        labels=torch.zeros(batch_size, S, dtype=torch.int32, device=device),
        puzzle_ids=torch.zeros(batch_size, dtype=torch.int32, device=device),
    )


def load_rows(model: RecursiveModel, carry: TrainCarry, rows: torch.Tensor, inputs: np.ndarray, labels: np.ndarray,
              puzzle_ids: np.ndarray) -> None:
    """Put new puzzles into slots ``rows`` and reset their state and step count (in place)."""
    device = carry.inputs.device
    carry.inputs[rows] = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.int32)).to(device)
    carry.labels[rows] = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int32)).to(device)
    carry.puzzle_ids[rows] = torch.from_numpy(np.ascontiguousarray(puzzle_ids, dtype=np.int32)).to(device)
    carry.z_H[rows] = model.H_init.to(carry.z_H.dtype)
    carry.z_L[rows] = model.L_init.to(carry.z_L.dtype)
    carry.steps[rows] = 0
    carry.halted[rows] = False


def refill(model: RecursiveModel, carry: TrainCarry, stream: PuzzleStream) -> int:
    """Replace every halted row with the stream's next puzzle; returns how many were replaced."""
    rows = torch.nonzero(carry.halted).squeeze(-1)
    n = int(rows.numel())
    if n:
        load_rows(model, carry, rows, *stream.take(n))
    return n


@dataclass
class StepOutput:
    """One training segment's outputs (logits/q with grad) and the no-grad ACT bookkeeping."""

    logits: torch.Tensor  # [B, S, V]
    q_halt: torch.Tensor  # [B] fp32
    q_continue: torch.Tensor  # [B] fp32
    target_q_continue: torch.Tensor | None  # [B] in (0, 1); None when ACT is off (halt_max_steps 1)
    halted: torch.Tensor  # [B] bool, after this segment
    steps: torch.Tensor  # [B] int32, after this segment


def halting_decision(steps: torch.Tensor, q_halt: torch.Tensor, q_continue: torch.Tensor, halt_max_steps: int,
                     exploration_prob: float, generator: torch.Generator | None = None,
                     rule: str = DEFAULT_HALT_RULE) -> torch.Tensor:
    """Official training halting: halt at ``halt_max_steps`` or when the halt ``rule`` fires
    (:func:`hrm.halting.halts`), but with probability ``exploration_prob`` a row first draws a minimum
    step count in [2, halt_max_steps] and cannot halt before it (so the Q head sees the value of
    thinking longer)."""
    is_last = steps >= halt_max_steps
    if halt_max_steps <= 1:
        return is_last
    halted = is_last | halts(rule, q_halt, q_continue)
    device = steps.device
    explore = torch.rand(steps.shape, generator=generator, device=device) < exploration_prob
    min_steps = torch.randint(2, halt_max_steps + 1, steps.shape, generator=generator, device=device)
    min_steps = torch.where(explore, min_steps, torch.zeros_like(min_steps))
    return halted & (steps >= min_steps)


def act_step(model: RecursiveModel, carry: TrainCarry, generator: torch.Generator | None = None) -> StepOutput:
    """One segment for every slot with the truncated gradient; updates ``carry`` in place (detached)."""
    c = model.config
    x = model.embed(carry.inputs, carry.puzzle_ids)
    z_H, z_L, logits, q_halt, q_continue = model.segment(carry.z_H, carry.z_L, x, truncated_grad=True)
    carry.z_H, carry.z_L = z_H.detach(), z_L.detach()
    with torch.no_grad():
        steps = carry.steps + 1
        halted = halting_decision(steps, q_halt, q_continue, c.halt_max_steps, c.halt_exploration_prob, generator,
                                  c.halt_rule)
        target = None
        if c.halt_max_steps > 1 and not c.no_ACT_continue:
            # Value of continuing = best value one segment later, read off an extra forward pass.
            *_, next_q_halt, next_q_continue = model.segment(carry.z_H, carry.z_L, x.detach())
            target = q_continue_target(next_q_halt, next_q_continue, steps >= c.halt_max_steps)
        carry.steps, carry.halted = steps, halted
    return StepOutput(logits, q_halt, q_continue, target, halted, steps)
