"""Turn command-line inputs (puzzle strings, files, stdin) into puzzles plus per-line errors.

Why not just ``task.parse``: a task's parser stops at the first malformed line, but a user running
a file of 1000 puzzles wants the 999 good ones solved and the bad one named. :func:`parse_lenient`
re-parses with the failing line (or the multi-line puzzle around it) blanked out, so line numbers
stay put, collecting one :class:`hrm.errors.ParseError` per bad puzzle, until the rest parses.
Broken JSON (ARC) fails as a whole, still naming its line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

from hrm.errors import ParseError

MAX_ERRORS_PER_INPUT = 200
_PATHLIKE = re.compile(r"[\\/]|\.(txt|csv|json|npy|npz|tsv|md)$", re.IGNORECASE)


@dataclass
class Inputs:
    """Everything read from the command line, in order."""

    puzzles: list[Any] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


def parse_lenient(task: Any, text: str, source: str) -> tuple[list[Any], list[ParseError]]:
    """Parse ``text``; on an error at a known line, drop what is broken and retry (see module doc).

    What gets dropped depends on the paragraph (block of non-blank lines) around the bad line: if
    some other line of it parses on its own (one puzzle per line, CSV rows), only the bad line is
    blanked; if none does, it is a multi-line puzzle (a grid, a maze) and the whole paragraph goes,
    so one broken grid yields one error, not a cascade. A JSON document is parsed once: blanking lines
    of broken JSON would only produce follow-on errors.
    """
    per_record = getattr(task, "parse_records", None)
    if per_record is not None:  # contract C2: the task reports one item per record itself (ARC)
        items = per_record(text, source)
        return ([x for x in items if not isinstance(x, ParseError)], [x for x in items if isinstance(x, ParseError)])
    lines = text.split("\n")
    errors: list[ParseError] = []
    alone: dict[int, bool] = {}
    single_document = text.lstrip()[:1] in ("{", "[")

    def parses_alone(i: int) -> bool:
        if i not in alone:
            try:
                task.parse(lines[i - 1], source)
                alone[i] = True
            except ParseError:
                alone[i] = False
        return alone[i]

    while True:
        try:
            return list(task.parse("\n".join(lines), source)), errors
        except ParseError as exc:
            errors.append(exc)
            line = exc.line
            if single_document or line is None or not (1 <= line <= len(lines)) or len(errors) >= MAX_ERRORS_PER_INPUT:
                return [], errors
            block = _paragraph(lines, line)
            line_oriented = not block or any(parses_alone(i) for i in block)
            drop = [line] if line_oriented else [line, *block]
            if all(not lines[i - 1] for i in drop):  # nothing left to drop: give up on this input
                return [], errors
            for i in drop:
                lines[i - 1] = ""


def _paragraph(lines: list[str], line: int) -> list[int]:
    """1-based numbers of the non-blank lines adjacent to ``line`` (its paragraph), excluding it."""
    out = []
    i = line - 1
    while i >= 1 and lines[i - 1].strip():
        out.append(i)
        i -= 1
    i = line + 1
    while i <= len(lines) and lines[i - 1].strip():
        out.append(i)
        i += 1
    return sorted(out)


def read_inputs(task: Any, items: Sequence[str], stdin: TextIO | None = None) -> Inputs:
    """Parse every item: '-' = stdin, an existing path = a file, anything else = puzzle text."""
    out = Inputs()
    for n, item in enumerate(items, start=1):
        if item == "-":
            if stdin is None:
                out.errors.append(ParseError("<stdin>", None, "no standard input"))
                continue
            text, source = stdin.read(), "<stdin>"
        elif os.path.exists(item):
            if os.path.isdir(item):
                out.errors.append(ParseError(item, None, "is a directory, expected a puzzle file"))
                continue
            try:
                from hrm.tasks.base import read_text

                text, source = read_text(item), str(Path(item))
            except ParseError as exc:
                out.errors.append(exc)
                continue
        elif _PATHLIKE.search(item) and "\n" not in item:
            out.errors.append(ParseError(item, None, "no such file"))
            continue
        else:
            text, source = item, f"<arg {n}>"
        puzzles, errors = parse_lenient(task, text, source)
        out.puzzles.extend(puzzles)
        out.errors.extend(errors)
    return out


class TokenLines:
    """Stand-in task for deployments without task metadata: one puzzle per line, ``seq_len`` integer
    tokens separated by spaces or commas. No decode/check beyond the tokens themselves."""

    name = "tokens"

    def __init__(self, seq_len: int, vocab_size: int) -> None:
        self.seq_len, self.vocab_size = seq_len, vocab_size

    def parse(self, text: str, source: str = "<string>") -> list[Any]:
        from hrm.tasks.base import Puzzle

        out = []
        for lineno, raw in enumerate(text.split("\n"), start=1):
            s = raw.split("#", 1)[0].strip()
            if not s:
                continue
            parts = [p for p in re.split(r"[\s,]+", s) if p]
            try:
                toks = [int(p) for p in parts]
            except ValueError:
                raise ParseError(source, lineno, f"expected integer tokens, found {s[:30]!r}") from None
            if len(toks) != self.seq_len:
                raise ParseError(source, lineno, f"expected {self.seq_len} tokens, found {len(toks)}")
            bad = [t for t in toks if not 0 <= t < self.vocab_size]
            if bad:
                raise ParseError(source, lineno, f"token {bad[0]} outside the vocabulary [0, {self.vocab_size})")
            out.append(Puzzle(np.array(toks, np.int32), None, f"{source}:{lineno}"))
        return out

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens)

    def render(self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False) -> str:
        cells = [str(int(t)) + ("*" if highlight is not None and highlight[i] else "") for i, t in enumerate(tokens)]
        return " ".join(cells)
