"""Error types shared by every layer.

Each error carries *where* (file, line, tensor) and *what was expected vs found*, so a user can fix the
input without reading a traceback. CLIs catch :class:`HRMError` and print its message on one line.
"""

from __future__ import annotations

# Exit codes of every hrm-* command (documented in the README; applied by hrm.cli.common).
EXIT_OK = 0  # everything parsed, solved / answered / written
EXIT_REJECTED = 1  # some input was rejected (a bad puzzle record, a failed gate, a failed export validation)
EXIT_USAGE = 2  # usage or deployment error: bad options, unreadable checkpoint or manifest, mismatches
EXIT_INTERNAL = 70  # a bug in hrm-deploy (sysexits EX_SOFTWARE); the traceback only with --debug
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_CLOSED_PIPE = 141  # stdout closed early (``| head``): ends quietly, as if killed by SIGPIPE


class HRMError(Exception):
    """Base class: any error that is the user's input, not a bug. ``exit_code``: what a CLI exits with."""

    exit_code = EXIT_USAGE


class ConfigError(HRMError):
    """A config field is missing or invalid. The message names the field and the source."""


class CheckpointError(HRMError):
    """A checkpoint is unreadable, of an unknown format, or its tensors do not match its config."""


class ManifestError(HRMError):
    """A deployment directory's manifest is missing, malformed, or does not match its files."""


class EngineMismatchError(HRMError):
    """A TensorRT engine was built for another TensorRT version or GPU."""


class ExportError(HRMError):
    """An export step failed (graph construction, validation, engine build)."""


class NumericsError(HRMError):
    """A state became NaN/Inf during the recurrence."""


class InputError(HRMError, ValueError):
    """A puzzle handed to the runtime is unusable (wrong dtype, shape, count, token or puzzle id); names it."""

    exit_code = EXIT_REJECTED


class ParseError(HRMError, ValueError):
    """A puzzle input is malformed. Names the source (file or '<stdin>'), the line and the problem."""

    exit_code = EXIT_REJECTED

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
