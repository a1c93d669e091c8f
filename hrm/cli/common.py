"""What every hrm-* command shares: exit codes, one-line errors instead of tracebacks, a stderr console.

Commands are thin: parse options, call one library function, print. :func:`handle_errors` wraps each
command and gives it ``--debug``; exit codes (:mod:`hrm.errors`, documented in the README):

* 0 everything parsed and was solved / answered / written;
* 1 some input was rejected (a bad puzzle record, a failed gate or export validation): the rest was done;
* 2 a usage or deployment error (:class:`hrm.errors.HRMError`: bad option, unreadable checkpoint or
  manifest, mismatched engine...), printed as ``error: <message>`` on one line;
* 70 an internal error (a bug): one line, the traceback only with ``--debug``;
* 130 interrupted; 141 stdout was closed early (``hrm-run ... | head``): no message at all.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import Any, Callable, TypeVar

import click

from hrm.errors import EXIT_CLOSED_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, HRMError

F = TypeVar("F", bound=Callable[..., Any])


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def pct(v: float | None) -> str:
    """A fraction as a table cell: ``97.50%``, or ``-`` when unknown."""
    return "-" if v is None else f"{v:.2%}"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print one error line and exit."""
    click.echo(f"error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Map what a command raises to its exit code and one line on stderr; adds ``--debug``.

    Layers nest: over a function that already went through here (the shared option group,
    :func:`hrm.cli.options.runtime_options`, wraps a command that did) the outer layer adds no second
    ``--debug`` and hands the flag down, so both report the same way."""
    nested = getattr(fn, "__hrm_handles_errors__", False)

    @functools.wraps(fn)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs, **({"debug": debug} if nested else {}))
            sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
            return result
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own usage errors (exit 2) and exits
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(EXIT_CLOSED_PIPE)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except HRMError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc), exc.exit_code)
        except Exception as exc:  # a bug: say so on one line, keep the traceback for --debug
            if debug:
                traceback.print_exc()
            fail(f"internal error: {type(exc).__name__}: {exc} (a bug in hrm-deploy; rerun with --debug for the "
                 "traceback)", EXIT_INTERNAL)

    wrapper.__hrm_handles_errors__ = True  # type: ignore[attr-defined]
    if not nested:
        wrapper = click.option("--debug", is_flag=True, help="print the Python traceback of an error")(wrapper)
    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests' captured stdout)
        pass
