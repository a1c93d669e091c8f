"""Graph kinds: what each ONNX graph takes and returns, and how it is assembled from the layers.

Four step graphs are required by the runtime (``embed``, ``l_step``, ``h_step``, ``heads``); ``segment``
is an optional fused graph (:func:`hrm.manifest.run_segment` over the step layers, every unrolled step
using the same initializers) that a runtime may use to save launches. Tensor names come from ``hrm.manifest.IO_NAMES``;
batch is the only dynamic dimension, named ``"batch"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Mapping

import numpy as np
import onnx

import hrm
from hrm.config import HRMConfig
from hrm.errors import ExportError
from hrm.export import layers
from hrm.export.onnx_builder import FLOAT, INT32, GraphBuilder
from hrm.export.precision import Precision
from hrm.manifest import DEFAULT_OPS, GRAPH_ALIASES, GRAPH_OPS, IO_NAMES, ORT_CONTRIB, STEP_GRAPHS, GraphAlias, run_segment

GRAPH_KINDS = (*STEP_GRAPHS, "segment")
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 17, 22
BATCH = "batch"

_ONNX_DTYPE_NAMES = {FLOAT: "float32", 10: "float16", 16: "bfloat16", INT32: "int32"}


@dataclass(frozen=True)
class GraphTensor:
    """One graph input or output as the manifest records it: ONNX element type, symbolic batch (the
    runtime's :class:`hrm.runtime.TensorSpec` is the same entry read back, for one concrete batch)."""

    name: str
    elem_type: int
    shape: tuple[int | str, ...]

    @property
    def dtype(self) -> str:
        return _ONNX_DTYPE_NAMES[self.elem_type]

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


def graph_io(kind: str, config: HRMConfig, precision: Precision) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """Input and output specs of a graph kind (names from ``IO_NAMES``)."""
    if kind not in GRAPH_KINDS:
        raise ExportError(f"unknown graph kind {kind!r}; expected one of {GRAPH_KINDS}")
    c, T = config, precision.onnx_type
    state = (BATCH, c.total_seq_len, c.hidden_size)
    specs = {
        "tokens": (INT32, (BATCH, c.seq_len)), "puzzle_ids": (INT32, (BATCH,)),
        "x": (T, state), "z_L": (T, state), "z_H": (T, state), "z_L_new": (T, state), "z_H_new": (T, state),
        "logits": (T, (BATCH, c.seq_len, c.vocab_size)), "q_halt": (FLOAT, (BATCH,)), "q_continue": (FLOAT, (BATCH,)),
    }
    ins, outs = IO_NAMES[kind]
    return ([GraphTensor(n, *specs[n]) for n in ins], [GraphTensor(n, *specs[n]) for n in outs])


def graph_aliases(config: HRMConfig) -> dict[str, GraphAlias]:
    """Graph kinds a deployment of this model serves with another kind's graph: TRM's ``h_step`` runs
    its ``l_step`` graph (:data:`hrm.manifest.GRAPH_ALIASES`), so the one network's weights are stored,
    loaded and built into an engine once. HRM's two stacks have different weights: no aliases."""
    return {"h_step": GRAPH_ALIASES["h_step"]} if config.arch == "trm" else {}


def check_opset(opset: int) -> int:
    if not (MIN_OPSET <= int(opset) <= MAX_OPSET):
        raise ExportError(f"--opset {opset}: supported opsets are {MIN_OPSET}..{MAX_OPSET} "
                          f"(17 parses on TensorRT 10.3 / JetPack 6 and later)")
    return int(opset)


def check_ops(ops: str) -> str:
    """The graph ops name, or an :class:`ExportError` listing the known ones."""
    if ops not in GRAPH_OPS:
        raise ExportError(f"--ops {ops!r}: expected one of {', '.join(GRAPH_OPS)} (standard: opset-17 primitives, "
                          f"parsed by TensorRT; {ORT_CONTRIB}: ONNX Runtime's fused com.microsoft ops)")
    return ops


def build_graph(kind: str, config: HRMConfig, tensors: Mapping[str, np.ndarray], precision: Precision,
                opset: int = DEFAULT_OPSET, ops: str = DEFAULT_OPS) -> onnx.ModelProto:
    """Build one graph kind for one precision from official-named fp32 (or fp16) numpy weights.

    ``ops``: the graph ops, ``standard`` or ``ort-contrib`` (see :mod:`hrm.export.contrib`)."""
    check_opset(opset)
    check_ops(ops)
    ins, outs = graph_io(kind, config, precision)
    b = GraphBuilder(f"hrm_{kind}_{precision.name}", opset)
    v = {s.name: b.input(s.name, s.elem_type, s.shape) for s in ins}
    ctx = layers.Ctx(b, config, precision, tensors, ops=ops)
    if kind == "embed":
        results = [layers.embed(ctx, v["tokens"], v["puzzle_ids"])]
    elif kind == "l_step":
        results = [layers.l_step(ctx, v["z_L"], v["z_H"], v["x"])]
    elif kind == "h_step":
        results = [layers.h_step(ctx, v["z_H"], v["z_L"])]
    elif kind == "heads":
        results = list(layers.heads(ctx, v["z_H"]))
    else:  # segment: unrolled, weights shared by name across the unrolled steps
        results = list(run_segment(config, partial(layers.l_step, ctx), partial(layers.h_step, ctx),
                                   partial(layers.heads, ctx), v["z_H"], v["z_L"], v["x"]))
    for value, spec in zip(results, outs):
        b.output(value, spec.name, spec.shape)
    if ops == ORT_CONTRIB:
        doc = (f"{config.arch.upper()} {kind} graph ({precision.name}, ops {ops}); state dtype {precision.state_dtype}; "
               "ONNX Runtime com.microsoft ops (ONNX Runtime only, no TensorRT engines). "
               f"Built by hrm-deploy {hrm.__version__}.")
    else:
        doc = (f"{config.arch.upper()} {kind} graph ({precision.name}); state dtype {precision.state_dtype}; "
               f"RMSNorm statistics and RoPE in fp32. Built by hrm-deploy {hrm.__version__}.")
    return b.model(producer=hrm.__version__, doc=doc)
