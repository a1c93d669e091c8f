"""hrm.runtime: run an exported HRM (manifest + ONNX graphs / TensorRT engines) without torch.

    from hrm.runtime import OrtOptions, Session, Scheduler, load_deployment

    with Session("deploy/sudoku", backend="ort", device="cuda", precision="fp16", batch=64,
                 options=OrtOptions(fused=True)) as s:
        for r in s.solve(puzzles, halting="act"):
            print(r.source, r.segments, r.verdict)

Pieces (one job each): :mod:`.deployment` (open a deployment directory), :mod:`.backends` (ort / trt /
torch behind :class:`.backends.base.Backend`), :mod:`.loop` (segments + halting over slots),
:mod:`.session` (chunked solve), :mod:`.scheduler` (continuous batching), :mod:`.results`,
:mod:`.engine_check`, :mod:`.gpu` (CUDA helpers). The checks on top of it (parity, accuracy, datasets,
the one comparator) are :mod:`hrm.evaluation`; per-segment latency is ``hrm-bench --segments-only``.
Importing this package never imports torch, onnxruntime or TensorRT; backends import theirs on use.
"""

from hrm.runtime.backends.options import OrtOptions, TorchOptions, TrtOptions
from hrm.runtime.deployment import Deployment, TensorSpec, load_deployment
from hrm.runtime.loop import HALTING_MODES, Request, SegmentLoop
from hrm.runtime.results import SolveResult, summarize, summary_line
from hrm.runtime.scheduler import Scheduler, SchedulerClosed
from hrm.runtime.session import Session

__all__ = ["Deployment", "HALTING_MODES", "OrtOptions", "Request", "Scheduler", "SchedulerClosed", "SegmentLoop",
           "Session", "SolveResult", "TensorSpec", "TorchOptions", "TrtOptions", "load_deployment", "summarize",
           "summary_line"]
