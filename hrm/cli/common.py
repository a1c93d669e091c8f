"""What every hrm-* command shares: one-line errors instead of tracebacks, and a stderr console.

Commands are thin: parse options, call one library function, print. :func:`handle_errors` turns any
:class:`hrm.errors.HRMError` (bad input, mismatched checkpoint, ...) into ``error: <message>`` on
stderr with exit code 2, so users see what to fix, not where in our code it was noticed.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import click

from hrm.errors import HRMError

F = TypeVar("F", bound=Callable[..., Any])


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def pct(v: float | None) -> str:
    """A fraction as a table cell: ``97.50%``, or ``-`` when unknown."""
    return "-" if v is None else f"{v:.2%}"


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HRMError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", code=130)
    return wrapper  # type: ignore[return-value]
