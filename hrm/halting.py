"""Halting modes, shared by the PyTorch reference (hrm.model) and the torch-free runtime (hrm.runtime).

- ``fixed``: every puzzle runs the segment cap (default ``halt_max_steps``): the official evaluation.
- ``act``: a puzzle stops after the first segment where the model's halt rule fires; at least 1, at most
  the cap.

The halt rule belongs to the model, not to the user: HRM halts when ``q_halt > q_continue``; TRM trained
with ``no_ACT_continue`` has no usable q_continue and halts when ``q_halt > 0``. The config exposes it
(``HRMConfig.halt_rule``), the manifest records it (``recurrence.halt_rule``), and both the PyTorch
reference and the runtime loop apply it through :func:`halts`.
One definition so both sides validate (and therefore behave) the same way.
"""

from __future__ import annotations

HALTING_MODES = ("fixed", "act")
#: How ACT decides from the Q head; the first is HRM's and the default of manifests that do not say.
HALT_RULES = ("q_halt > q_continue", "q_halt > 0")
DEFAULT_HALT_RULE = HALT_RULES[0]


def check_halting(halting: str, max_segments: int | None, default: int) -> int:
    """Validate the halting mode and return the segment cap (``max_segments`` or ``default``)."""
    if halting not in HALTING_MODES:
        raise ValueError(f"halting must be one of {HALTING_MODES}, got {halting!r}")
    cap = default if max_segments is None else int(max_segments)
    if cap < 1:
        raise ValueError(f"max_segments must be >= 1, got {max_segments}")
    return cap


def check_halt_rule(rule: str, where: str = "halt_rule") -> str:
    """Validate a halt rule name (manifests, configs) and return it."""
    if rule not in HALT_RULES:
        raise ValueError(f"{where}: halt rule must be one of {HALT_RULES}, got {rule!r}")
    return rule


def halts(rule: str, q_halt, q_continue):
    """Whether ACT halts under ``rule``; element-wise on floats, numpy arrays and torch tensors alike."""
    if rule == "q_halt > 0":
        return q_halt > 0
    return q_halt > q_continue
