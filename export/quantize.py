"""The ``int8`` variant: the fp32 block graphs with their weight MatMuls dynamically quantized.

Why it exists: on a CPU a batch-1 HRM segment is ~90% MatMul running near the core's fp32 peak
(``benchmarks/README.md``), so no fusion gets ONNX Runtime under 0.5x PyTorch eager; int8 MatMuls
do. This is ONNX Runtime's own dynamic quantization (``onnxruntime.quantization.quantize_dynamic``),
not a hand-written one:

* only ``MatMul`` nodes whose B input is a block weight (QKV, O, gate/up, down projections) are
  quantized; the attention MatMuls (scores, context) and everything else stay fp32, and so do the
  state, the graph I/O, the ``embed`` graph and the heads, also inside the fused ``segment`` graph
  (an int8 ``lm_head`` would move argmaxes for a few percent of the weight bytes);
* weights are signed int8 with **one scale per tensor**; activations are quantized per call from
  their own range (``DynamicQuantizeLinear``). Per-channel weights were measured worse on an
  AVX2 CPU (no VNNI) on both counts: slower than fp32 on the full-size l_step and 2 points of
  Sudoku 4x4 accuracy lost, against per-tensor's 0.56x of fp32 time and no accuracy lost
  (``models/README.md``, ``benchmarks/README.md``).

What it is not: TensorRT int8 (that needs Q/DQ nodes and calibration; the TensorRT paths refuse
this variant), nor an accuracy guarantee. The quantized recurrence drifts from fp32 far beyond
rounding noise, so the exporter checks what can be checked exactly
(:func:`hrm.export.validate.validate_quantized`: the graphs before quantization at fp32 tolerances,
every int8 weight within half a step of its fp32 weight, :func:`check_weights`) and only reports the
drift; ``hrm-parity --precision int8`` on the task's own puzzles (accuracy within 0.5 point of fp32)
is the gate a deployment must pass.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from hrm.errors import ExportError

#: Graph kinds whose weight MatMuls are quantized; the others are exported as fp32 graphs.
QUANTIZED_KINDS = ("l_step", "h_step", "segment")
#: Weights never quantized: the heads (so the fused segment graph's heads equal the heads graph).
FP32_WEIGHTS = ("lm_head.weight", "q_head.weight")
#: The settings the int8 variant is built with (recorded in each graph's doc string).
SETTINGS = {"method": "onnxruntime.quantization.quantize_dynamic", "op_types": ["MatMul"],
            "weight_type": "QInt8", "per_channel": False, "matmul_const_b_only": True}


def quantize_graph(model: onnx.ModelProto, kind: str) -> onnx.ModelProto:
    """Return ``model`` (an fp32 graph of ``kind``) with its weight MatMuls quantized to int8.

    Kinds outside :data:`QUANTIZED_KINDS` come back unchanged. Raises :class:`ExportError` when
    onnxruntime's quantization tool is missing or leaves no MatMul quantized (a graph the tool could
    not read would otherwise ship as an fp32 graph labelled int8)."""
    if kind not in QUANTIZED_KINDS:
        return model
    try:
        from onnxruntime import __version__ as ort_version
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ExportError("--precision int8 needs onnxruntime's quantization tool: "
                          "pip install 'hrm-deploy[export]'") from None
    with tempfile.TemporaryDirectory(prefix="hrm-int8-") as tmp:
        src, dst = Path(tmp) / f"{kind}.fp32.onnx", Path(tmp) / f"{kind}.int8.onnx"
        onnx.save_model(model, str(src))
        keep = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in FP32_WEIGHTS]
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice is for CNNs
        try:
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], per_channel=False,
                             weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.getLogger().setLevel(quiet)
        out = onnx.load(str(dst))
    expected = len(_block_weight_matmuls(model))
    got = sum(1 for n in out.graph.node if n.op_type == "MatMulInteger")
    if expected == 0 or got != expected:
        raise ExportError(f"int8 {kind} graph: onnxruntime {ort_version} quantized {got} of {expected} weight "
                          "MatMuls; expected all of them")
    out.doc_string = (model.doc_string + f" int8: weight MatMuls quantized by onnxruntime {ort_version} "
                      f"quantize_dynamic ({SETTINGS['weight_type']}, per tensor, dynamic int8 activations).")
    return out


def check_weights(source: onnx.ModelProto, quantized: onnx.ModelProto) -> dict[str, Any]:
    """Check that every int8 weight of ``quantized`` dequantizes to ``source``'s fp32 weight.

    ``(q - zero_point) * scale`` must be within half a quantization step of the fp32 weight, element
    by element, for every weight MatMul of the source graph. This is what makes the int8 export
    checkable exactly: the graph around the MatMuls is the validated fp32 graph, and the only change
    the quantizer may make to the weights is rounding them to its grid (a wrong, transposed or
    saturated weight is off by many steps)."""
    from onnx import numpy_helper

    src = {i.name: i for i in source.graph.initializer}
    q = {i.name: i for i in quantized.graph.initializer}
    weights = _block_weight_matmuls(source)
    used = {n.input[1] for n in quantized.graph.node if n.op_type == "MatMulInteger"}
    worst, problems = 0.0, []
    for name in weights:
        qname = f"{name}_quantized"
        if qname not in q or qname not in used or f"{name}_scale" not in q or f"{name}_zero_point" not in q:
            problems.append(f"{name}: no int8 copy ({qname} + _scale + _zero_point) feeding a MatMulInteger")
            continue
        w = numpy_helper.to_array(src[name]).astype(np.float64)
        wq = numpy_helper.to_array(q[qname]).astype(np.float64)
        scale = float(numpy_helper.to_array(q[f"{name}_scale"]))
        zero = numpy_helper.to_array(q[f"{name}_zero_point"]).astype(np.float64)
        if wq.shape != w.shape or not scale > 0:
            problems.append(f"{name}: int8 copy has shape {wq.shape} and scale {scale}, expected {w.shape} and > 0")
            continue
        steps = float(np.abs((wq - zero) * scale - w).max() / scale)
        worst = max(worst, steps)
        if steps > 0.5 + 1e-3:
            problems.append(f"{name}: dequantized weight is {steps:.2f} quantization steps from the fp32 weight "
                            "(at most 0.5 expected)")
    return {"weights": len(weights), "max_error_steps": round(worst, 4), "passed": not problems and bool(weights),
            "problems": problems}


def _block_weight_matmuls(model: onnx.ModelProto) -> list[str]:
    """Weight names of the MatMuls the int8 variant quantizes (one per MatMul node, in graph order)."""
    init = {i.name for i in model.graph.initializer}
    return [n.input[1] for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] in init and n.input[1] not in FP32_WEIGHTS]
