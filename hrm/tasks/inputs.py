"""Command-line inputs (puzzle strings, files, stdin) -> every puzzle plus every rejected record.

A user running a file of 1000 puzzles wants the 999 good ones solved and the bad one named, so
inputs go through :meth:`hrm.tasks.base.Task.parse_records`: one pass per input, one item per record
(a puzzle or the error naming its line), nothing dropped and no cap. Bytes are decoded leniently
(:func:`hrm.tasks.base.decode_text`; stdin through :func:`~hrm.tasks.base.read_stream`): a byte that is
not UTF-8, on stdin as in a file, fails the record it sits in, never the whole input. (ARC's inputs, read
as tasks by :mod:`hrm.tasks.arc_inputs`, use the same readers.)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

from hrm.errors import ParseError
from hrm.tasks.base import Puzzle, Record, raise_first, read_stream, read_text, split_lines

__all__ = ["Inputs", "read_inputs", "parse_records", "input_parser", "TokenLines"]

_PATHLIKE = re.compile(r"[\\/]|\.(txt|csv|json|npy|npz|tsv|md)$", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass
class Inputs:
    """Everything read from the command line: the puzzles and the rejected records, each in input order."""

    puzzles: list[Puzzle] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


def parse_records(task: Any, text: str, source: str) -> list[Record]:
    """``task.parse_records`` with the one failure a parser cannot catch itself turned into a record
    error: Python's recursion limit (JSON nested thousands deep)."""
    try:
        return list(task.parse_records(text, source))
    except RecursionError:
        return [ParseError(source, None, "input nested too deeply to parse")]


def input_parser(deployment: Any) -> Any:
    """What parses a deployment's inputs (``hrm-run``'s arguments, ``hrm-serve``'s request bodies): its task,
    or :class:`TokenLines` when it was exported without one."""
    task = deployment.task
    return task if task is not None else TokenLines(deployment.config.seq_len, deployment.config.vocab_size)


def read_inputs(task: Any, items: Sequence[str], stdin: TextIO | None = None) -> Inputs:
    """Parse every item: '-' = stdin, an existing path = a file, anything else = puzzle text."""
    out = Inputs()
    for n, item in enumerate(items, start=1):
        if item == "-":
            if stdin is None:
                out.errors.append(ParseError("<stdin>", None, "no standard input"))
                continue
            text, source = read_stream(stdin), "<stdin>"
        elif os.path.exists(item):
            if os.path.isdir(item):
                out.errors.append(ParseError(item, None, "is a directory, expected a puzzle file"))
                continue
            try:
                text, source = read_text(item), str(Path(item))
            except ParseError as exc:
                out.errors.append(exc)
                continue
        elif _PATHLIKE.search(item) and "\n" not in item:
            out.errors.append(ParseError(item, None, "no such file"))
            continue
        else:
            text, source = item, f"<arg {n}>"
        for record in parse_records(task, text, source):
            (out.errors if isinstance(record, ParseError) else out.puzzles).append(record)
    return out


class TokenLines:
    """Stand-in task for deployments without task metadata: one puzzle per line, ``seq_len`` integer
    tokens separated by spaces or commas (``#`` starts a comment). No decode/check beyond the tokens."""

    name = "tokens"

    def __init__(self, seq_len: int, vocab_size: int) -> None:
        self.seq_len, self.vocab_size = seq_len, vocab_size

    def parse(self, text: str, source: str = "<string>") -> list[Puzzle]:
        return raise_first(self.parse_records(text, source))

    def parse_records(self, text: str, source: str = "<string>") -> list[Record]:
        out: list[Record] = []
        for lineno, raw in enumerate(split_lines(text), start=1):
            s = raw.split("#", 1)[0].strip()
            if s:
                out.append(self._line(s, source, lineno))
        return out

    def _line(self, s: str, source: str, lineno: int) -> Record:
        parts = [p for p in re.split(r"[\s,]+", s) if p]
        bad = next((p for p in parts if not _INTEGER.fullmatch(p)), None)
        if bad is not None:
            return ParseError(source, lineno, f"expected integer tokens, found {bad[:30]!r}")
        if len(parts) != self.seq_len:
            return ParseError(source, lineno, f"expected {self.seq_len} tokens, found {len(parts)}")
        toks = [int(p) for p in parts]
        out_of_range = next((t for t in toks if not 0 <= t < self.vocab_size), None)
        if out_of_range is not None:
            return ParseError(source, lineno, f"token {out_of_range} outside the vocabulary [0, {self.vocab_size})")
        return Puzzle(np.array(toks, np.int32), None, f"{source}:{lineno}")

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens)

    def render(self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False) -> str:
        cells = [str(int(t)) + ("*" if highlight is not None and highlight[i] else "") for i, t in enumerate(tokens)]
        return " ".join(cells)
