"""Exponential moving average of the weights (the official TRM recipe's ``ema: True``, ``ema_rate`` 0.999).

Why: TRM's paper runs evaluate and save the EMA copy, not the raw weights; on small data the average
is what generalises (upstream ``models/ema.py``). After every optimizer step
``shadow = (1 - mu) * param + mu * shadow``. Like upstream, the puzzle embedding is left out: there it
is a buffer trained by its own sparse sign-SGD, not a parameter, so its live value is what gets saved.

:meth:`EMA.applied` swaps the shadow into the model for an evaluation or a checkpoint and restores
the live weights afterwards, bit for bit, so training continues exactly where it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

#: Parameters upstream does not average (a buffer there, see the module docstring).
EXCLUDED = ("puzzle_emb.weights",)


class EMA:
    """Shadow copies of a model's trainable parameters, updated after each optimizer step."""

    def __init__(self, model: nn.Module, rate: float = 0.999) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"ema rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.shadow = {n: p.detach().clone() for n, p in self._params(model)}

    @staticmethod
    def _params(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in model.named_parameters() if p.requires_grad and n not in EXCLUDED)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``shadow = (1 - rate) * param + rate * shadow`` (upstream's order of operations)."""
        for name, p in self._params(model):
            self.shadow[name] = (1.0 - self.rate) * p.detach() + self.rate * self.shadow[name]

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model with the shadow weights loaded; the live weights are restored on exit."""
        live = {}
        with torch.no_grad():
            for name, p in self._params(model):
                live[name] = p.detach().clone()
                p.copy_(self.shadow[name])
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in self._params(model):
                    p.copy_(live[name])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the shadow weights into ``model`` for good (end of training)."""
        for name, p in self._params(model):
            p.copy_(self.shadow[name])

    def state_dict(self) -> dict[str, object]:
        return {"rate": self.rate, "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        shadow = state["shadow"]
        if set(shadow) != set(self.shadow):  # type: ignore[arg-type]
            raise ValueError(f"EMA state has parameters {sorted(shadow)} but the model {sorted(self.shadow)}")  # type: ignore[arg-type]
        self.rate = float(state["rate"])  # type: ignore[arg-type]
        self.shadow = {k: v.to(self.shadow[k].device) for k, v in shadow.items()}  # type: ignore[union-attr]
