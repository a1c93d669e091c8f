"""The TRM in PyTorch (inner model of the official ``TinyRecursiveReasoningModel_ACTV1``).

One network ``net`` (kept under its official name ``L_level``, ``L_layers`` post-norm blocks, attention or
``mlp_t``) performs both updates: z_L = net(z_L + (z_H + x~)) and z_H = net(z_H + z_L). States keep HRM's
names (z_H is the answer y, z_L the latent z), so every layer above treats both families alike. In
training the gradient runs through the whole last H cycle (official ``trm.py``: H_cycles - 1 cycles
under no_grad, then one with grad).
"""

from __future__ import annotations

import torch

from hrm.config import HRMConfig
from hrm.model.base import RecursiveModel
from hrm.model.layers import ReasoningModule


class TRM(RecursiveModel):
    """Tiny Recursive Model: one shared ``net`` (``L_level``) for both state updates."""

    arch = "trm"

    def build_stacks(self, config: HRMConfig) -> None:
        self.L_level = ReasoningModule(config, config.L_layers)

    @property
    def net(self) -> ReasoningModule:
        """The paper's name for the one network."""
        return self.L_level

    def l_step(self, z_L: torch.Tensor, z_H: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Latent update: z = net(z + (y + x~))."""
        return self.L_level(z_L, z_H + x, self._cos_sin)

    def h_step(self, z_H: torch.Tensor, z_L: torch.Tensor) -> torch.Tensor:
        """Answer update with the same network: y = net(y + z)."""
        return self.L_level(z_H, z_L, self._cos_sin)

    @property
    def grad_l_steps(self) -> int:
        """The whole last H cycle: all L_cycles l_steps and its h_step."""
        return self.config.L_cycles
