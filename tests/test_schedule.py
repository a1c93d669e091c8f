"""The one segment schedule (hrm.manifest): its order, the values run_segment threads through it, and the
runtime backends' segment() running exactly it. Torch-free; the exporter's fused graph and its validation
use run_segment too (tests/export/test_graphs.py, test_validate.py check them against the reference)."""

from __future__ import annotations

from types import SimpleNamespace

from helpers import tiny_config

from hrm.manifest import Variant, run_segment, segment_schedule
from hrm.runtime.backends.base import Backend


def test_schedule_is_N_cycles_of_T_l_steps_and_an_h_step_then_the_heads():
    assert segment_schedule(tiny_config(H_cycles=3, L_cycles=2)) == ("l_step", "l_step", "h_step") * 3 + ("heads",)
    trm_sudoku = segment_schedule(tiny_config(H_cycles=3, L_cycles=6))  # TRM's Sudoku recursion
    assert len(trm_sudoku) == 3 * 7 + 1 and trm_sudoku.count("h_step") == 3


def test_run_segment_threads_the_states_through_the_schedule():
    """Symbolic values: each step's result is the expression that made it, so order and wiring show."""
    out = run_segment(tiny_config(H_cycles=2, L_cycles=2),
                      lambda z_L, z_H, x: f"L({z_L},{z_H},{x})", lambda z_H, z_L: f"H({z_H},{z_L})",
                      lambda z_H: (f"logits({z_H})", f"qh({z_H})", f"qc({z_H})"), "h", "l", "x")
    l1 = "L(L(l,h,x),h,x)"
    h1 = f"H(h,{l1})"
    l2 = f"L(L({l1},{h1},x),{h1},x)"
    h2 = f"H({h1},{l2})"
    assert out == (h2, l2, f"logits({h2})", f"qh({h2})", f"qc({h2})")


class _Recorder(Backend):
    """A backend that only records which step it was asked to run."""

    name = "recorder"

    def __init__(self, config) -> None:
        super().__init__(SimpleNamespace(config=config), Variant("fp32", {}))  # a resolved variant: no manifest needed
        self.steps: list[str] = []

    def activate_impl(self) -> None: ...
    def deactivate_impl(self) -> None: ...
    def allocate(self, batch: int) -> None: ...
    def load_rows(self, rows, tokens, puzzle_ids) -> None: ...
    def read_heads(self, logits: bool = True): ...
    def read_state(self): ...

    def l_step(self) -> None:
        self.steps.append("l_step")

    def h_step(self) -> None:
        self.steps.append("h_step")

    def heads(self) -> None:
        self.steps.append("heads")


def test_a_backend_segment_runs_the_schedule():
    cfg = tiny_config(H_cycles=2, L_cycles=3)
    backend = _Recorder(cfg)
    backend.segment()
    backend.segment()
    assert backend.steps == list(segment_schedule(cfg)) * 2
