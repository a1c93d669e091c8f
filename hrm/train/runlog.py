"""Run records: ``metrics.jsonl`` (one JSON object per line, appended as training goes) and
``run.json`` (config, data provenance, environment, final result), so every number a README quotes
can be traced to the command and seed that produced it."""

from __future__ import annotations

import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

from hrm.io import write_text_atomic


def _clean(value: Any) -> Any:
    """JSON-safe: numpy/torch scalars to Python, NaN/inf to None, paths to str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class RunLog:
    """Appends metric records to ``<out>/metrics.jsonl``; rewrites ``<out>/run.json`` atomically.

    ``resume_step``: a resumed run keeps the records up to that step (later ones were written by the
    interrupted piece and will be written again) and the earlier ``run.json``."""

    def __init__(self, out: Path, resume_step: int | None = None) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.metrics_path = out / "metrics.jsonl"
        self.run: dict[str, Any] = {}
        kept: list[str] = []
        if resume_step is not None:
            if self.metrics_path.is_file():
                kept = [line for line in self.metrics_path.read_text().splitlines()
                        if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            run_json = out / "run.json"
            if run_json.is_file():
                self.run = json.loads(run_json.read_text())
        write_text_atomic(self.metrics_path, "".join(line + "\n" for line in kept))

    def records(self) -> list[dict[str, Any]]:
        """The metric records written so far (a resumed run's history)."""
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    def metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(_clean(record)) + "\n")

    def update_run(self, **fields: Any) -> None:
        self.run.update(fields)
        write_text_atomic(self.out / "run.json", json.dumps(_clean(self.run), indent=2) + "\n")


def environment() -> dict[str, Any]:
    import numpy
    import torch

    env = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
           "numpy": numpy.__version__, "argv": sys.argv}
    if torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name()
    return env
