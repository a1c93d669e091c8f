"""The ACT driver: repeat segments until each row halts.

Two halting modes, both from the paper/official code:
- ``fixed``: every row runs ``max_segments`` (default ``halt_max_steps``) segments; this is what the
  official evaluation does (it ignores the Q head so a batch stays in lock step).
- ``act``: a row stops after the first segment where the model's halt rule fires (``q_halt > q_continue``
  for HRM, :func:`hrm.halting.halts`); at least 1, at most
  ``max_segments``. ``max_segments`` may exceed the trained ``halt_max_steps`` (inference-time scaling).

``halting`` is a mode name (with ``max_segments``, resolved against the model's config) or a whole
:class:`hrm.halting.HaltingPolicy` (parity passes the deployment's, so both sides stop rows alike).

A halted row's answer is frozen at its halting segment; the batch keeps stepping until every row
halted, so a row's result never depends on its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hrm.halting import HALTING_MODES, HaltingPolicy  # noqa: F401 (re-exported)
from hrm.model.base import RecursiveModel


@dataclass
class SolveOutput:
    """Per-row results of :func:`solve`.

    predictions: [B, S] argmax tokens of the halting segment; segments: [B] segments used;
    q_halt / q_continue: [B, M] per segment (NaN after the row halted); trace: per segment [B, S]
    predictions when asked for; z_H_trace: per segment z_H (fp32, cpu) when asked for (parity drift).
    """

    predictions: torch.Tensor
    segments: torch.Tensor
    q_halt: torch.Tensor
    q_continue: torch.Tensor
    trace: list[torch.Tensor] | None = None
    z_H_trace: list[torch.Tensor] | None = None


@torch.no_grad()
def solve(
    model: RecursiveModel,
    tokens: torch.Tensor,
    puzzle_ids: torch.Tensor | None = None,
    halting: str | HaltingPolicy = "fixed",
    max_segments: int | None = None,
    trace: bool = False,
    keep_states: bool = False,
) -> SolveOutput:
    """Run the halting loop on a batch of puzzles and return answers, segments and q values."""
    policy = HaltingPolicy.for_config(model.config).with_(halting, max_segments)
    B = tokens.shape[0]
    device = tokens.device
    if puzzle_ids is None:
        puzzle_ids = torch.zeros(B, dtype=torch.int32, device=device)
    x = model.embed(tokens, puzzle_ids)
    z_H, z_L = model.initial_state(B, device)

    predictions = torch.zeros(tokens.shape, dtype=torch.long, device=device)
    segments = torch.zeros(B, dtype=torch.long, device=device)
    halted = torch.zeros(B, dtype=torch.bool, device=device)
    q_halts: list[torch.Tensor] = []
    q_conts: list[torch.Tensor] = []
    steps: list[torch.Tensor] | None = [] if trace else None
    states: list[torch.Tensor] | None = [] if keep_states else None

    for s in range(1, policy.max_segments + 1):
        z_H, z_L, logits, q_halt, q_continue = model.segment(z_H, z_L, x)
        pred = logits.argmax(-1)
        active = ~halted
        predictions[active] = pred[active]
        segments[active] = s
        nan = torch.full_like(q_halt, float("nan"))
        q_halts.append(torch.where(active, q_halt, nan))
        q_conts.append(torch.where(active, q_continue, nan))
        if steps is not None:
            steps.append(pred.clone())
        if states is not None:
            states.append(z_H.float().cpu())
        halted = halted | policy.stops(s, q_halt, q_continue)
        if bool(halted.all()):
            break
    return SolveOutput(predictions, segments, torch.stack(q_halts, 1), torch.stack(q_conts, 1), steps, states)
