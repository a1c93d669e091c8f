"""Running bf16 graphs where no bf16 kernels exist (ONNX Runtime's CPU provider), and on CUDA.

``emulate_bf16(model)`` derives an fp32-compute copy of an exported bf16 graph, mechanically, from the
file itself (nothing is rebuilt from the checkpoint):

* bf16 initializers become fp32 holding the same values (bf16 is a subset of fp32: exact);
* every node whose output is bf16 in the original keeps its inputs and op, computes in fp32, and its
  output is rounded to bf16 by ``Cast(->bf16) -> Cast(->fp32)`` (ORT's CPU provider has both casts,
  round-to-nearest-even);
* ops that only move values (Reshape, Transpose, Split, Concat, Gather, Slice, Neg, ...) need no
  rounding: their inputs are already bf16 values;
* graph inputs are rounded on entry, so any fp32 feed is treated as its bf16 value.

Why this is sound: every bf16 tensor of the original graph has an fp32 twin holding exactly the value
that a bf16 kernel produces when it computes in fp32 and rounds its result once, which is how
elementwise bf16 ops are defined and how GPU bf16 GEMM/softmax kernels (fp32 accumulation) behave.
The graph structure that is validated (op order, every cast, constants, weights) is that of the
exported file. What it cannot check is one vendor kernel's internal accumulation order; TensorRT's and
ORT-CUDA's are checked on the GPU (``wrap_io_fp32`` + CUDAExecutionProvider runs the real bf16 graph).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

BF16, FLOAT = TensorProto.BFLOAT16, TensorProto.FLOAT
#: Ops whose outputs are copies/rearrangements of input values: no rounding needed after them.
VALUE_PRESERVING = frozenset({"Reshape", "Transpose", "Split", "Concat", "Gather", "Slice", "Squeeze",
                              "Unsqueeze", "Identity", "Neg", "Flatten", "Expand", "Tile"})


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value (inputs, initializers, node outputs) via ONNX shape inference."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    for init in skeleton.graph.initializer:  # types and dims suffice; keeps multi-GB models under 2 GB
        if len(init.raw_data) > 4096:
            init.ClearField("raw_data")
    inferred = shape_inference.infer_shapes(skeleton, strict_mode=True)
    g = inferred.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.input, *g.output, *g.value_info)}
    types.update({init.name: init.data_type for init in g.initializer})
    return types


def _set_float(vis) -> None:
    for vi in vis:
        if vi.type.tensor_type.elem_type == BF16:
            vi.type.tensor_type.elem_type = FLOAT


def emulate_bf16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp32-compute copy of a bf16 graph with bf16 rounding after every value-changing op (see module doc)."""
    types = _value_types(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == BF16:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype("float32"), init.name))
    nodes: list[onnx.NodeProto] = []

    def round_trip(src: str, dst: str) -> None:
        nodes.append(helper.make_node("Cast", [src], [dst + "/bf16"], name=dst + "/emulate_round", to=BF16))
        nodes.append(helper.make_node("Cast", [dst + "/bf16"], [dst], name=dst + "/emulate_widen", to=FLOAT))

    renamed: dict[str, str] = {}
    for vi in g.input:
        if vi.type.tensor_type.elem_type == BF16:
            renamed[vi.name] = vi.name + "/entry"
            round_trip(vi.name, renamed[vi.name])
    for node in g.node:
        node = _copy(node)
        node.input[:] = [renamed.get(x, x) for x in node.input]
        if node.op_type == "Cast" and _attr(node, "to") == BF16:
            y = node.output[0]
            node.output[0] = y + "/cast"
            nodes.append(node)
            nodes.append(helper.make_node("Cast", [y + "/cast"], [y], name=y + "/emulate_widen", to=FLOAT))
            continue
        if any(a.type == onnx.AttributeProto.TENSOR and a.t.data_type == BF16 for a in node.attribute):
            raise ValueError(f"emulate_bf16: node {node.name} ({node.op_type}) has a bf16 tensor attribute")
        rounded = [y for y in node.output if types.get(y) == BF16 and node.op_type not in VALUE_PRESERVING]
        for y in rounded:
            node.output[list(node.output).index(y)] = y + "/fp32"
        nodes.append(node)
        for y in rounded:
            round_trip(y + "/fp32", y)
    del g.node[:]
    g.node.extend(nodes)
    _set_float(g.input)
    _set_float(g.output)
    del g.value_info[:]
    return out


def wrap_io_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give a bf16 graph fp32 inputs/outputs (Cast at the boundary); the inside stays bf16.

    ONNX Runtime's Python API cannot hand bf16 numpy arrays in or out; with this wrapper the CUDA
    provider runs the real bf16 kernels while feeds and results travel as fp32.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    head, tail = [], []
    for vi in g.input:
        if vi.type.tensor_type.elem_type == BF16:
            inner = _rename(g, vi.name, vi.name + "/bf16")
            head.append(helper.make_node("Cast", [vi.name], [inner], name=inner + "/cast_in", to=BF16))
    for vi in g.output:
        if vi.type.tensor_type.elem_type == BF16:
            inner = _rename(g, vi.name, vi.name + "/bf16")
            tail.append(helper.make_node("Cast", [inner], [vi.name], name=inner + "/cast_out", to=FLOAT))
    nodes = [*head, *g.node, *tail]
    del g.node[:]
    g.node.extend(nodes)
    _set_float(g.input)
    _set_float(g.output)
    return out


def _rename(graph: onnx.GraphProto, old: str, new: str) -> str:
    """Point every node input and output named ``old`` at ``new``; returns ``new``."""
    for node in graph.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    return new


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    n = onnx.NodeProto()
    n.CopyFrom(node)
    return n


def _attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None
