"""Puzzle tasks (Sudoku, Maze, ARC): parse -> tokens -> decode -> check -> render, plus generators.

numpy + stdlib only (runs on lean Jetson installs). Entry points::

    task = get_task("sudoku")            # or ("sudoku", size=4), ("maze", size=30), ("arc")
    puzzles = task.parse_file("puzzles.txt")
    verdict = task.check(puzzles[0], answer_tokens)
    task = task_from_metadata(checkpoint.task)   # rebuild from stored metadata

See :mod:`hrm.tasks.base` for the shared conventions and :mod:`hrm.tasks.dataset` for the official
dataset folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hrm.errors import ConfigError
from hrm.tasks.arc import ArcTask
from hrm.tasks.base import Puzzle, Task, Verdict
from hrm.tasks.maze import MazeTask
from hrm.tasks.sudoku import SudokuTask

__all__ = ["Puzzle", "Verdict", "Task", "SudokuTask", "MazeTask", "ArcTask", "TASKS", "get_task", "task_from_metadata",
           "check_task_fits", "describe_task", "task_mismatch"]

#: name -> constructor taking the task's params as keywords
TASKS: dict[str, Callable[..., Task]] = {"sudoku": SudokuTask, "maze": MazeTask, "arc": ArcTask}


def get_task(name: str, **params: Any) -> Task:
    """Build a task by name: ``"sudoku"`` (``size`` 9 or 4), ``"maze"`` (``size`` 4..30, default
    30) or ``"arc"`` (no params). Unknown names or params raise ConfigError."""
    key = str(name).lower()
    if key not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    try:
        return TASKS[key](**params)
    except TypeError as e:
        raise ConfigError(f"task {key!r}: bad parameters {params!r} ({e})") from None
    except ValueError as e:
        raise ConfigError(f"task {key!r}: {e}") from None


def task_from_metadata(meta: Mapping[str, Any]) -> Task:
    """Rebuild a task from :meth:`Task.metadata` output and verify the stored shapes still match.

    A checkpoint or manifest whose ``seq_len``/``vocab_size``/``grid``/``token_map`` disagree with
    the task this code builds would silently mis-tokenise, so any difference is a ConfigError
    naming the field.
    """
    if not isinstance(meta, Mapping):
        raise ConfigError(f"task metadata must be an object, got {type(meta).__name__}")
    if "name" not in meta:
        raise ConfigError("task metadata: missing field 'name'")
    params = meta.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"task metadata: field 'params' must be an object, got {params!r}")
    task = get_task(meta["name"], **params)
    built = task.metadata()
    for key in ("seq_len", "vocab_size", "grid", "token_map"):
        if key in meta and _jsonish(meta[key]) != _jsonish(built[key]):
            raise ConfigError(
                f"task metadata: field {key!r} is {meta[key]!r} but task {task.name!r} "
                f"with params {dict(params)!r} has {built[key]!r}"
            )
    return task


def describe_task(meta: Mapping[str, Any]) -> str:
    """'sudoku 9x9', 'maze 30x30', 'arc 30x30': how messages name a task."""
    h, w = meta.get("grid", ("?", "?"))
    return f"{meta.get('name', '?')} {h}x{w}"


def task_mismatch(meta: Mapping[str, Any], config: Any) -> list[str]:
    """The one rule of whether a task fits a model: the same ``seq_len`` (the puzzles it parses are what
    the model reads) and the same ``vocab_size`` (every token the model can answer decodes). Returns the
    sizes in which they disagree (``['seq_len 81 (task) vs 16 (model)']``), empty when the task fits."""
    built = task_from_metadata(meta).metadata()
    return [f"{key} {built[key]} (task) vs {getattr(config, key)} (model)" for key in ("seq_len", "vocab_size")
            if int(built[key]) != int(getattr(config, key))]


def check_task_fits(meta: Mapping[str, Any], config: Any, where: str) -> Task:
    """The task a checkpoint or manifest records must fit its model (:func:`task_mismatch`). A 9x9 Sudoku
    task (81 cells) on a seq-16 model would parse puzzles the model cannot read, so it is refused here,
    where it is stored, naming both values."""
    try:
        task = task_from_metadata(meta)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    bad = task_mismatch(meta, config)
    if bad:
        raise ConfigError(f"{where}: task {describe_task(task.metadata())} does not fit the model ({', '.join(bad)})")
    return task


def _jsonish(v: Any) -> Any:
    """Normalise tuples to lists so metadata read back from JSON compares equal."""
    if isinstance(v, (list, tuple)):
        return [_jsonish(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonish(x) for k, x in v.items()}
    return v
