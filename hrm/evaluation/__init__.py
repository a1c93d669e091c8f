"""hrm.evaluation: the checks run on top of the runtime, apart from its torch-free core.

The runtime (:mod:`hrm.runtime`: deployment, session, loop, scheduler, results, backends) solves
puzzles; this layer asks whether the answers are right and how they compare:

* :mod:`.compare` — the one comparator and its metric names (``answer_agreement``, ``token_agreement``,
  ``halting_agreement``, ``accuracy``, ``relative_drift``, per-segment trace agreement), shared by
  ``hrm-parity`` and ``hrm-bench``;
* :mod:`.parity` — a backend against the fp32 PyTorch reference, with gates (``hrm-parity``); imports
  torch inside :func:`run_parity` only;
* :mod:`.accuracy` — task accuracy per group and halting mode (``hrm-eval``);
* :mod:`.arc` — ARC pass@k on an official dataset folder, voted by the task's rule (``hrm-eval`` on ARC);
* :mod:`.datasets` — labelled puzzles from the task's generator, our ``.npz`` or an official folder.

The export-side graph checks (ONNX vs PyTorch per graph) stay with the exporter (:mod:`hrm.export.validate`).
"""

from hrm.evaluation.accuracy import EvalReport, Score, evaluate, score
from hrm.evaluation.arc import evaluate_arc_dataset
from hrm.evaluation.compare import Agreement, accuracy, agreement, relative_drift, trace_agreement
from hrm.evaluation.datasets import load_puzzles
from hrm.evaluation.parity import Comparison, Gate, ParityReport, evaluate_gates, run_parity

__all__ = ["Agreement", "Comparison", "EvalReport", "Gate", "ParityReport", "Score", "accuracy", "agreement",
           "evaluate", "evaluate_arc_dataset", "evaluate_gates", "load_puzzles", "relative_drift", "run_parity",
           "score", "trace_agreement"]
