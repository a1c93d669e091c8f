"""Warm start (``--init-from``): a run that begins from a checkpoint's weights.

Why: GPU leases are short (minutes) and not guaranteed, so a model may need several of them; each
lease continues from the best checkpoint the last one brought back. Only the weights travel (our
fp16 checkpoint, under the 16 MB a lease returns per file): AdamW's moments restart from zero and the
LR warm-up runs again, which costs a few hundred steps, not the progress.

The architecture is the checkpoint's. Training-time fields may change (``halt_max_steps``,
``halt_exploration_prob``, the activation dtype); any other ``--arch`` value, and the data's
sequence length, vocabulary, puzzle identifiers and task, must match it, or the run stops before
it starts with both values named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrm.config import HRMConfig
from hrm.errors import ConfigError

#: HRMConfig fields a warm-started run may set differently from the checkpoint it starts from.
RUN_TIME_FIELDS = ("halt_max_steps", "halt_exploration_prob", "forward_dtype")


def warm_start_config(ckpt: Any, arch: dict[str, Any], seq_len: int, vocab_size: int,
                      num_puzzle_identifiers: int, forward_dtype: str, task_meta: dict[str, Any]) -> HRMConfig:
    """The run's HRMConfig: the checkpoint's, with the run-time fields of ``arch`` applied.

    Raises :class:`ConfigError` naming the field when ``arch`` or the data disagree with the checkpoint."""
    src = Path(str(ckpt.source)).name
    config: HRMConfig = ckpt.config
    for name, value in arch.items():
        if name in RUN_TIME_FIELDS:
            continue
        have = getattr(config, name)
        same = (float(value) == have) if isinstance(have, float) else (int(value) == have) if isinstance(have, int) \
            else (value == have)
        if not same:
            raise ConfigError(f"--init-from {src}: arch field '{name}' is {have!r} in the checkpoint but {value!r} "
                              "in this run (preset or --arch); a warm start keeps the checkpoint's architecture")
    for name, value in (("seq_len", seq_len), ("vocab_size", vocab_size),
                        ("num_puzzle_identifiers", num_puzzle_identifiers)):
        if getattr(config, name) != value:
            raise ConfigError(f"--init-from {src}: the checkpoint has {name} {getattr(config, name)}, "
                              f"the training data {value}")
    task = ckpt.task or {}
    if task and task_meta and (task.get("name"), task.get("params")) != (task_meta.get("name"), task_meta.get("params")):
        raise ConfigError(f"--init-from {src}: the checkpoint was trained on {task.get('name')} {task.get('params')}, "
                          f"the data is {task_meta.get('name')} {task_meta.get('params')}")
    changes = {k: arch[k] for k in RUN_TIME_FIELDS if k in arch and k != "forward_dtype"}
    return config.replace(forward_dtype=forward_dtype, **changes)


def provenance(ckpt: Any) -> dict[str, Any]:
    """What the checkpoint's metadata records about the warm start (path, sha256, its own training)."""
    training = (ckpt.task or {}).get("training") or {}
    return {"path": str(ckpt.source), "sha256": ckpt.sha256, "steps": training.get("steps"),
            "command": training.get("command")}
