"""The task contract: what every puzzle family (Sudoku, Maze, ARC) provides to the rest of hrm-deploy.

A task turns human input into the fixed-length token sequences the model reads (``parse``), turns the
model's answer back into a grid (``decode``), judges it (``check``) and shows it (``render``). The
runtime, CLI and exporter code only against :class:`Task`, :class:`Puzzle` and :class:`Verdict`, so
adding a task never touches them. Everything here is numpy + stdlib: it must import on a lean Jetson.

Conventions shared by all tasks
-------------------------------
* Tokens are ``int32`` arrays of length ``seq_len`` laid out row-major, exactly as the official
  dataset builders lay them out (see each task's ``token_map``). Token 0 is always PAD.
* ``Puzzle.label`` keeps raw tokens. In official datasets the label value 0 (PAD) is the "ignore"
  id: consumers that compute accuracies mask ``label == 0`` (ARC labels are mostly PAD outside the
  grid; Sudoku and Maze labels never contain 0).
* Human-facing coordinates in messages are 1-based ``(row, column)``, like the line/column numbers of
  parse errors.
* ``render(..., highlight=mask)``: with ``color=False`` a highlighted cell is followed by ``*``
  instead of the usual separating space; with ``color=True`` it is drawn with ANSI SGR escape codes
  (bold black on yellow). ANSI, not rich markup, so output can go to a plain terminal; rich users can
  wrap it with ``rich.text.Text.from_ansi``.
"""

from __future__ import annotations

import abc
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from hrm.errors import ParseError

__all__ = [
    "Puzzle", "Verdict", "Task", "Record",
    "read_text", "decode_text", "split_lines", "describe_char", "raise_first", "at_record", "as_tokens",
    "check_token_values", "highlight_mask", "HIGHLIGHT_ANSI", "ANSI_RESET",
]

#: ANSI SGR used for highlighted cells when ``color=True`` (bold, black on yellow).
HIGHLIGHT_ANSI = "\x1b[1;30;43m"
ANSI_RESET = "\x1b[0m"


@dataclass(frozen=True, eq=False)
class Puzzle:
    """One model input: ``tokens`` (int32 [seq_len]) and, when known, the ``label`` (int32 [seq_len]).

    ``source`` says where it came from ("file:line", "<stdin>:3", "<generated>:5") so every later
    message can point back to the input. ``puzzle_id`` is the official puzzle identifier (0 = the
    blank identifier; ARC uses one per augmented task). ``meta`` carries task-specific extras
    (ARC demonstrations, Sudoku difficulty, dataset row...).

    Arrays are converted to contiguous read-only int32 on construction, so a Puzzle really is
    immutable. Equality is identity (``eq=False``): comparing numpy arrays field by field has no
    single truth value; use :meth:`same_as` to compare contents.
    """

    tokens: np.ndarray
    label: np.ndarray | None
    source: str
    puzzle_id: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        tokens = _frozen_int32(self.tokens, "tokens")
        object.__setattr__(self, "tokens", tokens)
        if self.label is not None:
            label = _frozen_int32(self.label, "label")
            if label.shape != tokens.shape:
                raise ValueError(f"label shape {label.shape} differs from tokens shape {tokens.shape}")
            object.__setattr__(self, "label", label)
        object.__setattr__(self, "puzzle_id", int(self.puzzle_id))

    def same_as(self, other: Puzzle) -> bool:
        """True when tokens, label and puzzle_id are equal (source and meta are ignored)."""
        if self.puzzle_id != other.puzzle_id or not np.array_equal(self.tokens, other.tokens):
            return False
        if self.label is None or other.label is None:
            return self.label is None and other.label is None
        return bool(np.array_equal(self.label, other.label))


def _frozen_int32(a: Any, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    check_token_values(arr, what)
    out = np.ascontiguousarray(arr, dtype=np.int32)
    if out is arr:
        out = out.copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Verdict:
    """The judgement of one answer.

    ``valid``: the answer obeys the task's rules on its own (a complete legal Sudoku that keeps the
    givens; a connected, optimal S->G path that leaves walls alone; a decodable ARC grid).
    ``correct``: the answer equals the label, or None when no label is known. A valid answer can be
    incorrect (a maze with two shortest paths), an invalid one never is correct.
    ``reason``: one human-readable line ("row 3 has two 7s", "path length 31, shortest is 29").
    """

    valid: bool
    correct: bool | None
    reason: str


class Task(abc.ABC):
    """A puzzle family with fixed shapes. Subclasses set the class/instance attributes below."""

    name: str
    grid_shape: tuple[int, int]
    seq_len: int
    vocab_size: int

    # -- description ---------------------------------------------------------------------------
    @abc.abstractmethod
    def token_map(self) -> dict[str, int]:
        """Symbol -> token id, exactly as the official dataset builder assigns them."""

    def params(self) -> dict[str, Any]:
        """Constructor parameters: ``get_task(self.name, **self.params())`` rebuilds this task."""
        return {}

    def metadata(self) -> dict[str, Any]:
        """JSON-able description stored in checkpoints and manifests (see ``task_from_metadata``)."""
        return {
            "name": self.name,
            "grid": [int(self.grid_shape[0]), int(self.grid_shape[1])],
            "seq_len": int(self.seq_len),
            "vocab_size": int(self.vocab_size),
            "token_map": dict(self.token_map()),
            "params": dict(self.params()),
        }

    # -- input -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, text: str, source: str = "<string>") -> list[Puzzle]:
        """Parse every puzzle in ``text`` (every accepted format is autodetected).

        Raises :class:`hrm.errors.ParseError` naming ``source``, the line and the problem (the first
        bad record's; :meth:`parse_records` reports every record instead).
        """

    def parse_records(self, text: str, source: str = "<string>") -> list[Record]:
        """One item per input record, in input order: its :class:`Puzzle` or the
        :class:`hrm.errors.ParseError` that names where it is and what is wrong. Never raises for
        bad content, so one bad record never costs a good one.

        This default treats the whole text as one record (a document format); line- and
        paragraph-oriented tasks override it with a one-pass parser that resynchronises at the next
        record boundary.
        """
        try:
            return list(self.parse(text, source))
        except ParseError as exc:
            return [exc]

    def parse_file(self, path: str | os.PathLike) -> list[Puzzle]:
        """Parse a file; puzzles' ``source`` is the path. Unreadable files raise ParseError too."""
        return self.parse(read_text(path), source=str(path))

    # -- output ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [seq_len] -> the task's grid (see the subclass for the grid's dtype)."""

    @abc.abstractmethod
    def check(self, puzzle: Puzzle, answer_tokens: np.ndarray) -> Verdict:
        """Judge the model's answer tokens for ``puzzle``."""

    @abc.abstractmethod
    def render(self, tokens: np.ndarray, *, highlight: np.ndarray | None = None, color: bool = False) -> str:
        """Plain text (or ANSI-coloured) picture of ``tokens`` for a person."""

    @abc.abstractmethod
    def generate(self, n: int, rng: np.random.Generator, **kw: Any) -> list[Puzzle]:
        """``n`` new labelled puzzles drawn with ``rng``."""

    # -- helpers for subclasses --------------------------------------------------------------------
    def _tokens(self, tokens: Any, what: str = "tokens") -> np.ndarray:
        return as_tokens(tokens, self.seq_len, what)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"


#: What :meth:`Task.parse_records` yields per input record.
Record = Puzzle | ParseError

_INT32 = np.iinfo(np.int32)


def raise_first(records: list[Record]) -> list[Puzzle]:
    """``parse`` from ``parse_records``: the puzzles, or the first record's error raised."""
    for r in records:
        if isinstance(r, ParseError):
            raise r
    return records  # type: ignore[return-value]


def at_record(error: ParseError, start: int, what: str) -> ParseError:
    """Re-anchor an error found inside a multi-line record at the record's first line (contract:
    a record error carries the line its record starts on), keeping the exact line in the message."""
    if error.line is None or error.line == start:
        return error
    return ParseError(error.source, start, f"{what} that starts here, line {error.line}: {error.message}")


def check_token_values(arr: np.ndarray, what: str = "tokens", vocab_size: int | None = None) -> None:
    """Refuse what a cast to int32 would silently change: non-integer dtypes (1.7 -> 1) and values
    outside int32 (2**33 + 2 -> 2), and with ``vocab_size`` anything outside ``[0, vocab_size)``.

    Checked on the array as given, before any cast; the message names the first bad position.
    """
    if arr.dtype == np.bool_ or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected integers, got dtype {arr.dtype}")
    if not arr.size:
        return
    lo, hi = (0, vocab_size - 1) if vocab_size is not None else (_INT32.min, _INT32.max)
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        at = pos[0] if len(pos) == 1 else pos
        value = int(arr[pos])
        where = f"[0, {vocab_size})" if vocab_size is not None else "int32"
        raise ValueError(f"{what}: token {value} at position {at} is outside {where}")


def as_tokens(tokens: Any, seq_len: int, what: str = "tokens") -> np.ndarray:
    """Validate a token vector: integer, flattenable to exactly ``seq_len`` values -> int64 [seq_len]."""
    arr = np.asarray(tokens)
    if arr.size != seq_len:
        raise ValueError(f"{what}: expected {seq_len} tokens, got {arr.size} (shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected integer tokens, got dtype {arr.dtype}")
    return arr.reshape(-1).astype(np.int64, copy=False)


def decode_text(data: bytes) -> str:
    """Bytes of any kind -> text. UTF-8 (a BOM is dropped); a byte that is not UTF-8 becomes a lone
    surrogate (``surrogateescape``), so it fails only the record it sits in, and
    :func:`describe_char` names it as the byte it was."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def describe_char(ch: str) -> str:
    """A character for an error message: ``'x'``, ``'\\r'``, or ``byte 0x9f (not UTF-8)``."""
    if "\udc80" <= ch <= "\udcff":
        return f"byte 0x{ord(ch) - 0xDC00:02x} (not UTF-8)"
    return repr(ch)


def read_text(path: str | os.PathLike) -> str:
    """Read a text file (see :func:`decode_text`); an unreadable file is a ParseError naming it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ParseError(str(path), None, f"cannot read file: {e.strerror or e}") from e
    return decode_text(data)


def read_stream(stream: TextIO) -> str:
    """All of a stream (stdin), as bytes when it has them (see :func:`decode_text`): binary input must
    not raise a decode error."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return decode_text(buffer.read())
    return stream.read()


_NEWLINE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as Python's text files number them: ``\n``, ``\r\n`` and a lone ``\r`` end a line
    (so CR-only files from old Mac tools read as lines, and a stray CR cannot hide inside a CSV
    row); no phantom last line.

    (``str.splitlines`` would also split on form feeds and Unicode separators, shifting line numbers.)
    """
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def highlight_mask(highlight: Any, seq_len: int, shape: tuple[int, int]) -> np.ndarray:
    """``render``'s ``highlight`` argument (None or [seq_len] flags) -> a bool grid of ``shape``."""
    if highlight is None:
        return np.zeros(shape, dtype=bool)
    flags = np.asarray(highlight, dtype=bool).reshape(-1)
    if flags.size != seq_len:
        raise ValueError(f"highlight: expected {seq_len} flags, got {flags.size}")
    return flags.reshape(shape)
