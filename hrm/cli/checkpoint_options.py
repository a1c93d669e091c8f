"""The options every command that loads a checkpoint shares (``hrm-export``, ``hrm-ckpt info|convert``).

A published checkpoint usually needs none of them: :mod:`hrm.sources` finds the files, and the task and
its sizes are inferred from the config's data path (:mod:`hrm.tasks.infer`). These fill in or override
that, and are defined once here so every command spells and checks them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

CHECKPOINT_HELP = ("Our .safetensors file, an official step_N / checkpoint file, a folder as published (checkpoint "
                   "or step_N files in it or one subfolder down, all_config.yaml beside them; the latest step is "
                   "taken) or hf://owner/repo[@revision][/subpath].")


def sizing_options(fn: F) -> F:
    """Add ``--task``, ``--task-param``, ``--seq-len``, ``--dataset-json`` (see :func:`load_kwargs`)."""
    options = [
        click.option("--task", "task_name", default=None,
                     help="Task to record (sudoku, maze, arc): when the config's data path names none, or to "
                          "replace the inferred or recorded one."),
        click.option("--task-param", multiple=True, metavar="KEY=VALUE", help="Task parameter, e.g. size=9 (repeatable)."),
        click.option("--seq-len", type=click.IntRange(1), default=None,
                     help="Official checkpoints: the sequence length, when neither a dataset.json nor the data "
                          "path gives it (RoPE models)."),
        click.option("--dataset-json", type=click.Path(path_type=Path), default=None,
                     help="Official checkpoints: the dataset's dataset.json (seq_len, vocab_size, puzzle ids)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def load_kwargs(task_name: str | None, task_param: tuple[str, ...], seq_len: int | None,
                dataset_json: Path | None) -> dict[str, Any]:
    """The options as keyword arguments of :func:`hrm.checkpoint.load_checkpoint` / ``export_deployment``.
    Raises :class:`hrm.errors.ConfigError` for an unknown task or a malformed parameter."""
    from hrm.errors import ConfigError
    from hrm.tasks.infer import task_metadata

    if task_param and not task_name:
        raise ConfigError("--task-param needs --task")
    return {"seq_len": seq_len, "dataset_json": dataset_json,
            "task": task_metadata(task_name, task_param) if task_name else None}
