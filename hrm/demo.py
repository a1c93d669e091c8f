"""The bundled demo: export a checkpoint to ONNX, then solve example puzzles with ONNX Runtime on the CPU.

This is the README's first command (``make demo``): the whole pipeline a user deploys — checkpoint ->
validated ONNX deployment -> torch-free runtime — on the bundled Sudoku model, in under a few minutes
on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "sudoku4.safetensors"
DEFAULT_EXAMPLES = REPO / "examples" / "sudoku4.txt"
DEFAULT_OUT = REPO / "out" / "demo"


@dataclass
class DemoResult:
    deployment: Path
    task: Any
    export_report: Any
    results: list[Any]
    summary: dict[str, Any]
    parse_errors: list[Any]


def run_demo(model: str | Path = DEFAULT_MODEL, examples: str | Path = DEFAULT_EXAMPLES,
             out: str | Path = DEFAULT_OUT, precision: str = "fp32", halting: str | None = None,
             backend: str = "ort", device: str = "cpu", batch: int = 8,
             progress: Callable[[Any], None] | None = None) -> DemoResult:
    """Export ``model`` to ``out`` (replacing a previous demo export) and solve ``examples`` with it."""
    from hrm.export import export_deployment
    from hrm.runtime import Session, load_deployment, summarize
    from hrm.tasks.inputs import read_inputs

    out = Path(out)
    report = export_deployment(model, out, precisions=precision, force=True, progress=progress)
    dep = load_deployment(out, precision=precision)
    if dep.task is None:
        raise ValueError(f"{model}: checkpoint records no task; the demo needs one to parse {examples}")
    read = read_inputs(dep.task, (str(examples),))
    with Session(dep, backend=backend, device=device, precision=precision,
                 batch=max(1, min(batch, len(read.puzzles))), halting=halting) as session:
        results = session.solve(read.puzzles)
    return DemoResult(out, dep.task, report, results, summarize(results, rejected=len(read.errors)), read.errors)
