"""Training metrics as upstream reports them, accumulated on the device between log lines.

Accuracies count only rows that *halted* this step (their answer is final), as ``ACTLossHead``
does; losses are per batch row (sum / batch size), as ``pretrain.py`` divides them. Keeping the
sums on the device avoids a host sync every step.
"""

from __future__ import annotations

import torch

from hrm.train.act import StepOutput
from hrm.train.losses import ACTLoss


class TrainMeter:
    KEYS = ("count", "token_accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss",
            "q_continue_loss", "rows")

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(self.KEYS), dtype=torch.float64, device=self.device)
        self.n_steps = 0

    @torch.no_grad()
    def add(self, out: StepOutput, loss: ACTLoss) -> None:
        h = out.halted
        vals = torch.stack([
            h.sum(),
            (loss.token_accuracy * h).sum(),
            (loss.seq_correct & h).sum(),
            (((out.q_halt >= 0) == loss.seq_correct) & h).sum(),
            (out.steps * h).sum(),
            loss.lm, loss.q_halt, loss.q_continue,
            torch.tensor(h.shape[0], device=h.device),
        ]).to(torch.float64)
        self.sums += vals
        self.n_steps += 1

    def state_dict(self) -> dict:
        return {"sums": self.sums.clone(), "n_steps": self.n_steps}

    def load_state_dict(self, state: dict) -> None:
        self.sums = state["sums"].to(self.device)
        self.n_steps = int(state["n_steps"])

    def summary(self) -> dict[str, float]:
        """Means over the window; resets the meter."""
        s = dict(zip(self.KEYS, self.sums.tolist()))
        count, rows = max(s["count"], 1.0), max(s["rows"], 1.0)
        out = {
            "token_accuracy": s["token_accuracy"] / count,
            "exact_accuracy": s["exact_accuracy"] / count,
            "q_halt_accuracy": s["q_halt_accuracy"] / count,
            "mean_steps": s["steps"] / count,
            "lm_loss": s["lm_loss"] / rows,
            "q_halt_loss": s["q_halt_loss"] / rows,
            "q_continue_loss": s["q_continue_loss"] / rows,
            "halted_per_step": s["count"] / max(self.n_steps, 1),
        }
        self.reset()
        return out
