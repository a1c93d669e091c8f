"""Halting modes, shared by the PyTorch reference (hrm.model) and the torch-free runtime (hrm.runtime).

- ``fixed``: every puzzle runs the segment cap (default ``halt_max_steps``): the official evaluation.
- ``act``: a puzzle stops after the first segment where ``q_halt > q_continue``; at least 1, at most the cap.
One definition so both sides validate (and therefore behave) the same way.
"""

from __future__ import annotations

HALTING_MODES = ("fixed", "act")


def check_halting(halting: str, max_segments: int | None, default: int) -> int:
    """Validate the halting mode and return the segment cap (``max_segments`` or ``default``)."""
    if halting not in HALTING_MODES:
        raise ValueError(f"halting must be one of {HALTING_MODES}, got {halting!r}")
    cap = default if max_segments is None else int(max_segments)
    if cap < 1:
        raise ValueError(f"max_segments must be >= 1, got {max_segments}")
    return cap
