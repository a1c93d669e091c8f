"""PyTorch HRM: the reference model that export and parity checks compare against (imports torch)."""

from hrm.model.act import HALTING_MODES, SolveOutput, solve
from hrm.model.hrm import HRM, TORCH_DTYPES

__all__ = ["HRM", "HALTING_MODES", "SolveOutput", "TORCH_DTYPES", "solve"]
