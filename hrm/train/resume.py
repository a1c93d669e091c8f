"""Exact resume: everything a run needs to continue as if it had never stopped (``--resume RUN_DIR``).

Why: long CPU runs are done in pieces (a shared box, a lease that ends, ``--pause-at``), and a piece
must not change the result. Next to its checkpoints a run keeps ``resume.pt`` (written atomically at
every evaluation, at a pause and at the end) with the live weights, the optimizer states, the EMA
shadow, the step (which is the LR schedule's position, together with the budget clock's seconds), the
data stream's position and RNG, the halting RNG, the persistent ACT carry and the metric window. On
CPU with the same thread count a resumed run reproduces the uninterrupted run's loss curve bit for bit
(tested). The checkpoints themselves stay plain weights (our safetensors format).

The run's config is the saved one; a resumed run may only change what does not define the run
(:data:`RESUMABLE_CHANGES`): run control, and the step or time budget to extend it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from hrm.errors import ConfigError
from hrm.io import atomic_path
from hrm.train.config import TrainConfig

RESUME_FILE = "resume.pt"
FORMAT = "hrm-deploy-train-state"
FORMAT_VERSION = 1
#: TrainConfig fields a resumed run may set differently from the run it continues.
RESUMABLE_CHANGES = ("resume", "pause_at", "progress", "command", "steps", "time_budget", "cpu_budget", "threads")
#: Set by the resume itself: ``out`` is the folder being resumed (a relative path recorded by the first
#: piece may point elsewhere from another working directory).
_SET_BY_RESUME = ("out",)


def resume_path(run: str | Path) -> Path:
    """``RUN_DIR/resume.pt`` (or ``run`` itself when it names the file)."""
    run = Path(run)
    return run if run.suffix == ".pt" else run / RESUME_FILE


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write the training state atomically (torch.save of tensors and plain Python values)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_state(run: str | Path) -> dict[str, Any]:
    """Read ``resume.pt``; a missing or foreign file is a one-line :class:`ConfigError`."""
    path = resume_path(run)
    if not path.is_file():
        raise ConfigError(f"--resume {run}: {path} not found (a run writes it at each evaluation; "
                          "was this run started by a version without resume, or is the path wrong?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable training state ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path}: not an hrm-deploy training state (format {state.get('format')!r})")
    if state.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: training state format_version {state.get('format_version')!r} is not "
                          f"supported (this hrm-deploy reads {FORMAT_VERSION})")
    return state


def check_config(saved: dict[str, Any], cfg: TrainConfig, where: str) -> None:
    """Refuse a resume whose config differs from the saved run's in a field that defines the run."""
    now = cfg.to_dict()
    for name, value in saved.items():
        if name in RESUMABLE_CHANGES or name in _SET_BY_RESUME or name not in now:
            continue
        if now[name] != value:
            raise ConfigError(f"--resume {where}: field '{name}' is {now[name]!r} but the run being resumed has "
                              f"{value!r}; a resumed run keeps its config (it may change {list(RESUMABLE_CHANGES)})")


def resume_config(run: str | Path, **overrides: Any) -> TrainConfig:
    """The config of the run in ``run`` with ``overrides`` (only :data:`RESUMABLE_CHANGES`) and
    ``resume`` set: what ``hrm-train --resume RUN_DIR`` trains with (no pause unless one is given)."""
    bad = sorted(set(overrides) - set(RESUMABLE_CHANGES))
    if "out" in overrides:
        raise ConfigError(f"--resume {run}: --out cannot be given; a resumed run continues in its own folder")
    if bad:
        raise ConfigError(f"--resume {run}: {bad} cannot change when resuming (the run keeps its config; "
                          f"changeable: {list(RESUMABLE_CHANGES)})")
    saved = load_state(run)["config"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    overrides.setdefault("pause_at", None)  # the pause that ended the last piece is spent
    overrides["out"] = str(resume_path(run).parent)
    return dataclasses.replace(cfg, **overrides, resume=str(run)).validate()
