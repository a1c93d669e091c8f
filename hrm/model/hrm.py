"""The HRM in PyTorch (inner model of the official ``HierarchicalReasoningModel_ACTV1``).

Two stacks: ``L_level`` updates z_L from z_L + z_H + x~, ``H_level`` updates z_H from z_H + z_L. The
shared pieces (embedding, heads, segment loop, loading) are in :mod:`hrm.model.base`.
"""

from __future__ import annotations

import torch

from hrm.config import HRMConfig
from hrm.model.base import TORCH_DTYPES, RecursiveModel  # noqa: F401 (TORCH_DTYPES re-exported)
from hrm.model.layers import ReasoningModule


class HRM(RecursiveModel):
    """Hierarchical Reasoning Model: separate H and L stacks."""

    arch = "hrm"

    def build_stacks(self, config: HRMConfig) -> None:
        self.H_level = ReasoningModule(config, config.H_layers)
        self.L_level = ReasoningModule(config, config.L_layers)

    def l_step(self, z_L: torch.Tensor, z_H: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One low-level update: z_L = L(z_L + (z_H + x~))."""
        return self.L_level(z_L, z_H + x, self._cos_sin)

    def h_step(self, z_H: torch.Tensor, z_L: torch.Tensor) -> torch.Tensor:
        """One high-level update: z_H = H(z_H + z_L)."""
        return self.H_level(z_H, z_L, self._cos_sin)

    @property
    def grad_l_steps(self) -> int:
        """The official 1-step gradient: only the last l_step (and the last h_step)."""
        return 1
