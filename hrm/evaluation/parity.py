"""Parity: does a backend give the PyTorch reference's answers? Metrics, gates, report.

Both sides solve the same puzzles in both halting modes (``fixed`` and ``act``); the reference is
``hrm.model.solve`` on the **fp32** PyTorch model built from the deployment's source checkpoint
(sha-checked) — for every backend precision. Why fp32 for fp16/bf16 too: the question a user asks is
"how much task accuracy do I lose by deploying in fp16?", which only a full-precision yardstick
answers; comparing fp16 with fp16-PyTorch would measure two rounding schemes against each other
and hide a loss common to both.

Metrics per (precision, halting), named and computed by the one comparator (:mod:`hrm.evaluation.compare`):

* ``answer_agreement``: fraction of puzzles whose answer tokens equal the reference's exactly;
* ``token_agreement``: fraction of answer tokens equal;
* ``accuracy`` / ``reference_accuracy``: exact-match task accuracy against the labels (cells with
  label 0 = PAD are ignored, as in the official evaluation); None without labels;
* ``halting_agreement``: fraction of puzzles halting at the same segment (1 under ``fixed`` unless a run
  stopped early);
* ``drift`` (fixed): per segment, relative Frobenius distance of z_H,
  ``|z_H_backend - z_H_ref| / |z_H_ref|`` per puzzle, its mean and max over puzzles (the backend's
  ``read_state``). Under ``fixed`` every puzzle runs every segment on both sides, so each segment
  has all puzzles; under ``act`` halted rows would make the comparison ragged, so it is not reported.

Gates (the exit status of ``hrm-parity``; all must pass):

* **fp32**: ``answer_agreement == 1.0`` in each halting mode (100% of answers identical);
* **fp16 / bf16**: ``|accuracy - reference_accuracy| <= 0.5`` percentage points in each halting mode
  (a dataset without labels fails this gate: it cannot be evaluated).

Shaped like Polygraphy's comparator: runs produce results, :func:`compare` judges a pair and returns
a :class:`Comparison`, :func:`evaluate_gates` turns comparisons into :class:`Gate` verdicts with a
one-line reason each, and :class:`ParityReport` carries them to the CLI (table or JSON).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from hrm.evaluation.compare import accuracy, agreement, relative_drift
from hrm.halting import HALTING_MODES

FP32_ANSWER_AGREEMENT = 1.0
LOW_PRECISION_ACCURACY_POINTS = 0.5


@dataclass
class Outcome:
    """One side's results on the dataset in one halting mode (arrays in dataset order)."""

    answers: np.ndarray  # int32 [N, S]
    segments: np.ndarray  # int [N]


@dataclass
class Comparison:
    """Backend vs reference for one (precision, halting)."""

    precision: str
    halting: str
    n: int
    answer_agreement: float
    token_agreement: float
    accuracy: float | None
    reference_accuracy: float | None
    halting_agreement: float | None = None
    mean_segments: float = 0.0
    reference_mean_segments: float = 0.0
    drift_mean: list[float] = field(default_factory=list)
    drift_max: list[float] = field(default_factory=list)


@dataclass
class Gate:
    """A pass/fail rule applied to one comparison."""

    name: str
    precision: str
    halting: str
    passed: bool
    detail: str


@dataclass
class ParityReport:
    comparisons: list[Comparison]
    gates: list[Gate]
    meta: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "meta": self.meta, "comparisons": [asdict(c) for c in self.comparisons],
                "gates": [asdict(g) for g in self.gates]}


def compare(precision: str, halting: str, ref: Outcome, run: Outcome, labels: Sequence[np.ndarray | None],
            drift: Sequence[np.ndarray] | None = None) -> Comparison:
    """Judge ``run`` against ``ref``. ``drift``: per segment, relative z_H distance per puzzle."""
    n = len(ref.answers)
    agree = agreement(run.answers, run.segments, ref.answers, ref.segments)
    c = Comparison(precision, halting, n, agree.answer_agreement, agree.token_agreement,
                   accuracy(run.answers, labels), accuracy(ref.answers, labels), agree.halting_agreement,
                   mean_segments=float(run.segments.mean()) if n else 0.0,
                   reference_mean_segments=float(ref.segments.mean()) if n else 0.0)
    if drift:
        c.drift_mean = [float(np.mean(d)) for d in drift]
        c.drift_max = [float(np.max(d)) for d in drift]
    return c


def evaluate_gates(comparisons: Sequence[Comparison]) -> list[Gate]:
    """The default gates of the module docstring."""
    gates = []
    for c in comparisons:
        if c.precision == "fp32":
            ok = c.answer_agreement >= FP32_ANSWER_AGREEMENT
            gates.append(Gate("fp32 answers identical", c.precision, c.halting, ok,
                              f"{c.answer_agreement:.2%} of {c.n} answers equal the fp32 reference (need 100%)"))
        else:
            if c.accuracy is None or c.reference_accuracy is None:
                gates.append(Gate("accuracy within 0.5 pt", c.precision, c.halting, False,
                                  "dataset has no labels: accuracy gate cannot be evaluated"))
                continue
            diff = abs(c.accuracy - c.reference_accuracy) * 100
            gates.append(Gate("accuracy within 0.5 pt", c.precision, c.halting, diff <= LOW_PRECISION_ACCURACY_POINTS,
                              f"accuracy {c.accuracy:.2%} vs fp32 reference {c.reference_accuracy:.2%} "
                              f"(|diff| {diff:.2f} pt, limit {LOW_PRECISION_ACCURACY_POINTS} pt)"))
    return gates


def run_parity(deployment: Any, puzzles: Sequence[Any], *, backend: str = "ort", device: str = "cpu",
               precisions: Sequence[str] = ("fp32",), haltings: Sequence[str] = HALTING_MODES, batch: int = 32,
               max_segments: int | None = None, checkpoint: Any = None, reference_model: Any = None,
               reference_device: str = "cpu", options: Any = None) -> ParityReport:
    """Solve ``puzzles`` with the fp32 PyTorch reference and with ``backend`` at each precision.

    ``options``: the backend's options object (e.g. ``OrtOptions(fused=True)``); ``checkpoint`` /
    ``reference_model``: the reference's weights (default: the manifest's source checkpoint).
    Work goes chunk by chunk (``batch`` puzzles): the reference's per-segment z_H of a chunk is kept
    only while the backends solve that chunk, so memory stays bounded on full-size models.
    """
    import torch

    from hrm.manifest import Variant
    from hrm.model import solve as torch_solve
    from hrm.runtime.backends.options import TorchOptions
    from hrm.runtime.backends.torch_ref import TorchBackend
    from hrm.runtime.session import Session

    policy = deployment.manifest.halting_policy(max_segments=max_segments)  # both sides stop rows by it
    # The fp32 PyTorch twin, whether or not the deployment exported an fp32 variant (an int8-only one does not).
    ref_backend = TorchBackend(deployment, Variant("fp32", {}), reference_device,
                               TorchOptions(checkpoint=checkpoint, model=reference_model))
    ref_backend.activate()
    model = ref_backend.model
    sessions = {p: Session(deployment, backend=backend, device=device, precision=p, batch=batch,
                           options=options).activate() for p in precisions}
    resolved = next(iter(sessions.values())).backend.options.describe() if sessions else {}
    puzzles = list(puzzles)
    labels = [getattr(p, "label", None) for p in puzzles]
    ref_out = {h: ([], []) for h in haltings}
    run_out = {(p, h): ([], []) for p in precisions for h in haltings}
    drift: dict[str, list[list[np.ndarray]]] = {p: [] for p in precisions}
    try:
        for start in range(0, len(puzzles), batch):
            chunk = puzzles[start:start + batch]
            tokens = torch.from_numpy(np.stack([np.asarray(p.tokens, np.int32) for p in chunk])).to(reference_device)
            ids = torch.tensor([int(getattr(p, "puzzle_id", 0)) for p in chunk], dtype=torch.int32, device=reference_device)
            for h in haltings:
                ref = torch_solve(model, tokens, ids, halting=policy.with_(h), keep_states=(h == "fixed"))
                ref_out[h][0].append(ref.predictions.cpu().numpy().astype(np.int32))
                ref_out[h][1].append(ref.segments.cpu().numpy())
                ref_states = [z.numpy() for z in ref.z_H_trace] if ref.z_H_trace is not None else None
                for p, sess in sessions.items():
                    hook = None
                    if ref_states is not None:
                        per_seg: list[np.ndarray] = []

                        def hook(counts: np.ndarray, z_H: np.ndarray, per_seg=per_seg, ref_states=ref_states,
                                 k=len(chunk)) -> None:
                            s = int(counts[:k].max())
                            per_seg.append(relative_drift(z_H[:k], ref_states[s - 1][:k]))
                    results = sess.solve(chunk, halting=policy.with_(h), state_hook=hook)
                    run_out[(p, h)][0].append(np.stack([r.answer_tokens for r in results]))
                    run_out[(p, h)][1].append(np.array([r.segments for r in results]))
                    if hook is not None:
                        drift[p].append(per_seg)
    finally:
        for sess in sessions.values():
            sess.close()
        ref_backend.deactivate()

    comparisons = []
    for p in precisions:
        for h in haltings:
            ref = Outcome(np.concatenate(ref_out[h][0]), np.concatenate(ref_out[h][1]))
            run = Outcome(np.concatenate(run_out[(p, h)][0]), np.concatenate(run_out[(p, h)][1]))
            per_segment = None
            if h == "fixed" and drift[p]:
                n_seg = min(len(c) for c in drift[p])
                per_segment = [np.concatenate([c[s] for c in drift[p]]) for s in range(n_seg)]
            comparisons.append(compare(p, h, ref, run, labels, per_segment))
    meta = {"backend": backend, "device": device, "precisions": list(precisions), "haltings": list(haltings),
            "n": len(puzzles), "batch": batch, "reference": f"hrm.model fp32 ({reference_device})",
            "max_segments": policy.max_segments, "halt_rule": policy.rule, "options": resolved}
    return ParityReport(comparisons, evaluate_gates(comparisons), meta)
