"""Halting: when a puzzle stops, shared by the PyTorch reference (hrm.model) and the runtime (hrm.runtime).

- ``fixed``: every puzzle runs the segment cap (default ``halt_max_steps``): the official evaluation.
- ``act``: a puzzle stops after the first segment where the model's halt rule fires; at least 1, at most
  the cap (which may exceed the trained ``halt_max_steps``: inference-time scaling).

The halt rule belongs to the model, not to the user: HRM halts when ``q_halt > q_continue``; TRM trained
with ``no_ACT_continue`` has no usable q_continue and halts when ``q_halt > 0``. The config exposes it
(``HRMConfig.halt_rule``), the manifest records it (``recurrence.halt_rule``).

:class:`HaltingPolicy` carries all three (mode, resolved cap, rule) as one value, validated once where
it is made (:meth:`Manifest.halting_policy <hrm.manifest.Manifest.halting_policy>` for a deployment,
:meth:`HaltingPolicy.for_config` for a model) and then passed whole: Session -> SegmentLoop -> results,
and to ``hrm.model.solve``, parity, evaluation and the bench, so every side stops rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

HALTING_MODES = ("fixed", "act")
#: How ACT decides from the Q head; the first is HRM's and the default of manifests that do not say.
HALT_RULES = ("q_halt > q_continue", "q_halt > 0")
DEFAULT_HALT_RULE = HALT_RULES[0]


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


@dataclass(frozen=True)
class HaltingPolicy:
    """When a row stops: ``mode`` (fixed | act), the segment cap ``max_segments`` (resolved) and the rule."""

    mode: str = "act"
    max_segments: int = 16
    rule: str = DEFAULT_HALT_RULE

    def __post_init__(self) -> None:
        if self.mode not in HALTING_MODES:
            raise ValueError(f"halting must be one of {HALTING_MODES}, got {self.mode!r}")
        if isinstance(self.max_segments, bool) or not isinstance(self.max_segments, int) or self.max_segments < 1:
            raise ValueError(f"max_segments must be an integer >= 1, got {self.max_segments!r}")
        check_halt_rule(self.rule)

    @classmethod
    def for_config(cls, config: Any, mode: str = "fixed", max_segments: int | None = None) -> "HaltingPolicy":
        """The policy of a model config (``halt_max_steps``, ``halt_rule``); ``max_segments`` None = trained cap."""
        return cls(mode, config.halt_max_steps if max_segments is None else int(max_segments), config.halt_rule)

    def with_(self, mode: "str | HaltingPolicy | None" = None, max_segments: int | None = None) -> "HaltingPolicy":
        """This policy with a call's overrides (None keeps the field); a whole policy replaces it."""
        if isinstance(mode, HaltingPolicy):
            return mode if max_segments is None else replace(mode, max_segments=int(max_segments))
        if mode is None and max_segments is None:
            return self
        return replace(self, mode=self.mode if mode is None else mode,
                       max_segments=self.max_segments if max_segments is None else int(max_segments))

    def stops(self, segments: int, q_halt, q_continue):
        """Whether a row stops after its ``segments``-th segment (bool, or element-wise on arrays/tensors)."""
        cap = segments >= self.max_segments
        if self.mode != "act":
            return cap
        return cap | halts(self.rule, q_halt, q_continue)

    def may_stop(self, segments: int) -> bool:
        """Whether some row could stop after its ``segments``-th segment (the loop reads logits only then)."""
        return self.mode == "act" or segments >= self.max_segments

    def describe(self) -> dict[str, Any]:
        """For reports: ``{"halting", "max_segments", "halt_rule"}``."""
        return {"halting": self.mode, "max_segments": self.max_segments, "halt_rule": self.rule}
