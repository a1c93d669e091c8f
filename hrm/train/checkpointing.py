"""last/best checkpoints of a run, in our format (``hrm.checkpoint.save_checkpoint``, atomic).

The task metadata gets a ``training`` record (seed, command, data provenance, step, eval metrics) so a
shipped checkpoint says how it was made; ``hrm.tasks.task_from_metadata`` ignores the extra key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrm.checkpoint import save_checkpoint
from hrm.model import RecursiveModel


class Checkpointer:
    """Writes last/best checkpoints in our format with the task metadata (+ provenance)."""

    def __init__(self, out: Path, dtype: str, task_meta: dict[str, Any], best_metric: str) -> None:
        self.out, self.dtype, self.task_meta, self.best_metric = out, dtype, task_meta, best_metric
        self.best_value = -1.0
        self.best_eval: dict[str, float] | None = None

    @property
    def last(self) -> Path:
        return self.out / "last.safetensors"

    @property
    def best(self) -> Path:
        return self.out / "best.safetensors"

    def save(self, model: RecursiveModel, metrics: dict[str, float], step: int) -> bool:
        """Save last (always) and best (when improved); returns whether best improved."""
        tensors = model.numpy_tensors()
        meta = {**self.task_meta, "training": {**self.task_meta.get("training", {}), "step": step,
                                               "eval": metrics}}
        save_checkpoint(self.last, model.config, tensors, task=meta, dtype=self.dtype)
        improved = metrics[self.best_metric] > self.best_value
        if improved:
            self.best_value, self.best_eval = metrics[self.best_metric], dict(metrics, step=step)
            save_checkpoint(self.best, model.config, tensors, task=meta, dtype=self.dtype)
        return improved
