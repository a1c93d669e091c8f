"""PyTorch HRM and TRM: the reference models that export and parity checks compare against (imports torch)."""

from hrm.model.act import HALTING_MODES, SolveOutput, solve
from hrm.model.base import TORCH_DTYPES, RecursiveModel, build_model
from hrm.model.hrm import HRM
from hrm.model.trm import TRM

__all__ = ["HRM", "HALTING_MODES", "RecursiveModel", "SolveOutput", "TORCH_DTYPES", "TRM", "build_model", "solve"]
