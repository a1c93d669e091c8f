"""Request text -> one item per input record: a Puzzle, or a ParseError naming the bad record.

The one door from request bodies to the task parsers, so that a malformed puzzle costs only its own
answer: the others of the same request are still solved. Tasks that implement
``parse_records(text, source)`` (one item per record, in input order, never raising for bad content)
are used directly; until every task does, the lenient re-parse of ``hrm-run``'s input reader stands
in, its items put back into input order by line.
"""

from __future__ import annotations

import re
from typing import Any

from hrm.errors import ParseError

_LINE = re.compile(r":(\d+)$")


def parse_records(parser: Any, text: str, source: str) -> list[Any]:
    """``Puzzle`` or ``ParseError`` per record of ``text``, in input order."""
    own = getattr(parser, "parse_records", None)
    if own is not None:
        return list(own(text, source))
    puzzles, errors = _inputs().parse_lenient(parser, text, source)
    return sorted([*puzzles, *errors], key=_line_of)


def request_parser(deployment: Any) -> Any:
    """The deployment's task, or a bare token-line parser when it was exported without one."""
    if deployment.task is not None:
        return deployment.task
    return _inputs().TokenLines(deployment.config.seq_len, deployment.config.vocab_size)


def _line_of(item: Any) -> float:
    if isinstance(item, ParseError):
        return float("inf") if item.line is None else item.line
    m = _LINE.search(str(getattr(item, "source", "")))
    return int(m.group(1)) if m else float("inf")


def _inputs() -> Any:
    """The input-reading module (moving from hrm.runtime.inputs to hrm.tasks.inputs)."""
    try:
        from hrm.tasks import inputs
    except ImportError:
        from hrm.runtime import inputs
    return inputs
