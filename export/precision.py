"""Precision variants: the state dtype of each, how weights are rounded into it, and its tolerance.

One table so the graph builder, the writer, the validator and the manifest agree on what "fp16" means.
Weights are always rounded from the fp32 master copy (round-to-nearest-even, exactly what
``tensor.to(dtype)`` does in the PyTorch reference), so ONNX and PyTorch see bit-identical weights.
numpy has no bfloat16; ``ml_dtypes.bfloat16`` (a dependency of onnx) is used for bf16 arrays.

Tolerances (see :mod:`hrm.export.compare` for the metric: a normwise relative error
``max|a - b| / max(max|b|, 1)``, b the PyTorch reference in the same dtype):

* fp32: 1e-4 for step graphs (the acceptance bound), composed segments and chains. Both sides compute
  in fp32; measured errors are 1e-6 (step), 2e-6 (segment), 1e-5 (3 chained segments) on the
  full-size model.
* fp16 / bf16: ``k * eps`` with eps the dtype's machine epsilon (2**-10, 2**-7). Each step graph rounds
  its state ~10 times per block (matmul outputs, softmax, residual adds, the norm's cast down), and the
  ONNX graph and the PyTorch reference round at different points (PyTorch's SDPA keeps scores and
  probabilities in fp32, the graph rounds them to the state dtype as TensorRT's unfused path would),
  so two correct implementations differ by a few eps of the post-norm amplitude (measured on the
  full-size model: <= 2.3 eps per step graph, ~5 eps per composed segment). k = 8 for step graphs
  and k = 16 for a composed segment (N*(T+1) stack calls) leave a 3-4x margin, while a wrong cast,
  weight, norm or head gives errors of order 1, >= 10x above the bounds (a weight off by 5% already
  fails: tests/export/test_validate.py).
* chains of segments: ``max(16 * eps, 2 * drift)`` per output, drift being the reference's own
  distance from its fp32 self (see :func:`hrm.export.validate._chain`): the rounding noise of a
  recurrent model grows with the model's sensitivity, not with anything the export does.

What refuses an export (``gates_chain``): every step graph and the composed (and fused) segment, in
every precision, and the chain in fp32 (and int8's graphs before quantization), where both sides
compute in fp32 and any difference is a wrong graph. The chain in fp16/bf16 is reported, not gated:
two correct low-precision implementations of a recurrence drift apart on their own. Measured on every
bundled model (max_rel / bound; hrm-export defaults, this CPU; table in the README): step graphs and
segments pass in every precision (the closest 1.17x under its bound), and the fp32 chain is 5e-6..1e-5
against 1e-4, but the bf16 chain of
``models/sudoku4`` is 0.216 against max(0.125, 2 x 0.077 PyTorch-bf16 drift) = 0.154, argmax agreement
96.9%, while its accuracy is the gate's business (``hrm-parity --precision bf16``). A wrong weight,
cast or head is of order 1, far above every step bound (tests/export/test_validate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrm.manifest import PRECISIONS, STATE_DTYPES


def _bf16():
    import ml_dtypes

    return ml_dtypes.bfloat16


@dataclass(frozen=True)
class Precision:
    """A precision variant: names, ONNX element type, numpy storage dtype and tolerances."""

    name: str  # "fp32" | "fp16" | "bf16" | "int8"
    state_dtype: str  # manifest spelling: "float32" | "float16" | "bfloat16" (int8: "float32")
    onnx_type: int  # onnx.TensorProto element type
    eps: float  # machine epsilon of the state dtype
    step_tolerance: float
    segment_tolerance: float
    chain_tolerance: float
    quantized: bool = False  # int8: fp32 graph whose weight MatMuls are quantized after building

    @property
    def gates_chain(self) -> bool:
        """Whether a chained-segment mismatch refuses the export (fp32 compute) or is reported as
        low-precision drift of the recurrence (fp16, bf16); see the module doc."""
        return self.state_dtype == "float32"

    @property
    def numpy_dtype(self) -> np.dtype:
        """Storage dtype for arrays of this precision (``ml_dtypes.bfloat16`` for bf16)."""
        return np.dtype(_bf16()) if self.name == "bf16" else np.dtype(np.float16 if self.name == "fp16" else np.float32)

    @property
    def carrier_dtype(self) -> np.dtype:
        """dtype that feeds/outputs use in numpy-land: bf16 travels as fp32 (exactly representable)."""
        return np.dtype(np.float32) if self.name == "bf16" else self.numpy_dtype

    def round(self, array: np.ndarray) -> np.ndarray:
        """Round fp32 values to this precision (RNE) and return them in the storage dtype."""
        return np.asarray(array, dtype=np.float32).astype(self.numpy_dtype)

    def round_carrier(self, array: np.ndarray) -> np.ndarray:
        """Round to this precision but keep the carrier dtype (fp32 for bf16)."""
        return self.round(array).astype(self.carrier_dtype)


def _make(name: str, onnx_type: int, eps: float) -> Precision:
    if name == "fp32":
        return Precision(name, STATE_DTYPES[name], onnx_type, eps, 1e-4, 1e-4, 1e-4)
    return Precision(name, STATE_DTYPES[name], onnx_type, eps, 8 * eps, 16 * eps, 16 * eps)


# onnx.TensorProto: FLOAT = 1, FLOAT16 = 10, BFLOAT16 = 16 (literal to keep this module onnx-free).
_PRECISIONS = {
    "fp32": _make("fp32", 1, 2.0**-23),
    "fp16": _make("fp16", 10, 2.0**-10),
    "bf16": _make("bf16", 16, 2.0**-7),
    # int8 (see hrm.export.quantize): fp32 state and I/O, int8 weights and per-call int8 activations in
    # the block MatMuls. The tolerances are fp32's because they apply to its graphs *before*
    # quantization (hrm.export.validate.validate_quantized); what quantization then does to a recurrent
    # state has no fixed bound and is gated by task accuracy (hrm-parity), not here.
    "int8": Precision("int8", STATE_DTYPES["int8"], 1, 2.0**-23, 1e-4, 1e-4, 1e-4, quantized=True),
}
assert tuple(_PRECISIONS) == PRECISIONS


def get_precision(name: str) -> Precision:
    """Look up a precision by manifest name (``fp32``/``fp16``/``bf16``/``int8``; ``float16`` etc. accepted).

    Names first: ``int8`` shares its state dtype (float32) with ``fp32``, so a dtype lookup cannot find it."""
    from hrm.config import normalize_dtype
    from hrm.errors import ConfigError, ExportError

    if str(name).lower() in _PRECISIONS:
        return _PRECISIONS[str(name).lower()]
    try:
        dtype = normalize_dtype(name, field="precision", source="--precision")
    except ConfigError:
        raise ExportError(f"--precision: {name!r} is not a precision; expected one of {', '.join(PRECISIONS)}") from None
    return next(p for p in _PRECISIONS.values() if p.state_dtype == dtype and not p.quantized)


def parse_precisions(spec: str | list[str] | tuple[str, ...]) -> tuple[Precision, ...]:
    """``"fp32,fp16"`` or a list -> unique precisions in the canonical order fp32, fp16, bf16, int8."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen = {get_precision(n.strip()).name for n in names if n.strip()}
    if not chosen:
        from hrm.errors import ExportError

        raise ExportError("--precision: give at least one of fp32, fp16, bf16, int8")
    return tuple(_PRECISIONS[n] for n in PRECISIONS if n in chosen)
