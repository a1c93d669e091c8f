"""A tiny ONNX graph builder: nodes, named initializers (shared by name), dtype tracking.

Why not ``torch.onnx.export``: building the graph from the checkpoint's numpy tensors needs no torch
for our format, gives exact control over every cast (RMSNorm/RoPE in fp32, states in the variant's
dtype), over op patterns (only opset-17 primitives that TensorRT 10.3+ parses and fuses) and over
weight sharing (one initializer, many uses, which the fused ``segment`` graph relies on). The PyTorch
module then stays an *independent* reference that the validator compares against.

The builder tracks the element type of every value so layer functions can insert casts only where the
dtype really changes (an fp32 variant has no Cast nodes at all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
INT32 = TensorProto.INT32
#: ONNX Runtime's contrib-op domain and the opset version its ops are registered under.
MS_DOMAIN, MS_OPSET = "com.microsoft", 1


class GraphBuilder:
    """Accumulates nodes and initializers for one graph; ``model()`` returns the ModelProto."""

    def __init__(self, name: str, opset: int) -> None:
        self.name = name
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.types: dict[str, int] = {}
        self._counter = 0
        self._scope: list[str] = []

    # ---- naming ------------------------------------------------------------------------------
    def scope(self, name: str) -> "_Scope":
        """``with b.scope("L_level.layers.0"):`` prefixes node and value names (readable TRT layers)."""
        return _Scope(self, name)

    def _fresh(self, hint: str) -> str:
        self._counter += 1
        prefix = "/".join(self._scope)
        return f"{prefix}/{hint}_{self._counter}" if prefix else f"{hint}_{self._counter}"

    # ---- graph I/O ---------------------------------------------------------------------------
    def input(self, name: str, elem_type: int, shape: Sequence[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        self.types[name] = elem_type
        return name

    def output(self, value: str, name: str, shape: Sequence[int | str]) -> None:
        """Declare ``value`` as graph output ``name`` (renames the value everywhere it appears)."""
        if value != name:
            if value in self.initializers or any(i.name == value for i in self.inputs):
                value = self.op("Identity", [value], hint=name)
            self._rename(value, name)
        self.outputs.append(helper.make_tensor_value_info(name, self.types[name], list(shape)))

    def _rename(self, old: str, new: str) -> None:
        for node in self.nodes:
            node.input[:] = [new if x == old else x for x in node.input]
            node.output[:] = [new if x == old else x for x in node.output]
        self.types[new] = self.types.pop(old)

    # ---- constants ---------------------------------------------------------------------------
    def initializer(self, name: str, make: Callable[[], np.ndarray]) -> str:
        """Add (once) an initializer; later calls with the same name reuse it: weight sharing."""
        if name not in self.initializers:
            array = make()
            array = np.asarray(array)
            if not array.flags.c_contiguous:  # (np.ascontiguousarray would turn a scalar into 1-D)
                array = array.copy(order="C")
            tensor = numpy_helper.from_array(array, name)
            self.initializers[name] = tensor
            self.types[name] = tensor.data_type
        return name

    def const(self, value: float | int | Sequence[int] | np.ndarray, elem_type: int) -> str:
        """A small constant (scalar or 1-D), deduplicated by value and type."""
        dtype = helper.tensor_dtype_to_np_dtype(elem_type)
        array = np.asarray(value, dtype=dtype)
        key = f"const_{onnx.TensorProto.DataType.Name(elem_type).lower()}_" + "_".join(
            str(v) for v in np.atleast_1d(array.astype(np.float64)).tolist()) + ("_s" if array.ndim == 0 else "")
        key = key.replace("-", "m").replace(".", "p")
        return self.initializer(key, lambda: array)

    # ---- nodes -------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1,
           out_type: int | None = None, domain: str = "", **attrs) -> str | list[str]:
        """Append a node; outputs get fresh names and the input's type unless ``out_type`` says.

        ``domain``: ``""`` (standard ONNX) or :data:`MS_DOMAIN` for ONNX Runtime's contrib ops; the
        model then imports that domain too.
        """
        outs = [self._fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0] + "/" + op_type,
                                           domain=domain or None, **attrs))
        elem = out_type if out_type is not None else self.types[inputs[0]]
        for o in outs:
            self.types[o] = elem
        return outs[0] if n_out == 1 else outs

    def cast(self, value: str, to: int) -> str:
        """Cast only when the type changes (fp32 variants get no Cast nodes)."""
        if self.types[value] == to:
            return value
        return self.op("Cast", [value], hint="cast", out_type=to, to=to)

    def reduce_mean_last(self, value: str) -> str:
        """ReduceMean over the last axis, keepdims; axes is an attribute before opset 18, an input after."""
        if self.opset >= 18:
            return self.op("ReduceMean", [value, self.const([-1], INT64)], hint="mean", keepdims=1)
        return self.op("ReduceMean", [value], hint="mean", axes=[-1], keepdims=1)

    def split(self, value: str, axis: int, sizes: Sequence[int]) -> list[str]:
        """Split with explicit sizes (the ``split`` input form works from opset 13 on)."""
        return self.op("Split", [value, self.const(list(sizes), INT64)], hint="split", n_out=len(sizes), axis=axis)

    def reshape(self, value: str, shape: Sequence[int]) -> str:
        """Reshape; 0 copies the input's dim (keeps the dynamic batch without Shape ops)."""
        return self.op("Reshape", [value, self.const(list(shape), INT64)], hint="reshape")

    # ---- result ------------------------------------------------------------------------------
    def model(self, producer: str, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  initializer=list(self.initializers.values()), value_info=self._contrib_value_info())
        opsets = [helper.make_opsetid("", self.opset)]
        if self.uses_contrib_ops:
            opsets.append(helper.make_opsetid(MS_DOMAIN, MS_OPSET))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="hrm-deploy", producer_version=producer,
                                  doc_string=doc)
        # The lowest IR version that carries this opset: older TensorRT parsers (10.3 on JetPack 6)
        # reject IR versions newer than the onnx they were built with. (onnx knows no IR version for
        # com.microsoft; the standard opset decides.)
        model.ir_version = max(helper.find_min_ir_version_for(opsets[:1]), 8)
        return model

    @property
    def uses_contrib_ops(self) -> bool:
        return any(n.domain == MS_DOMAIN for n in self.nodes)

    def _contrib_value_info(self) -> list[onnx.ValueInfoProto]:
        """Element types of contrib-op outputs (rank unknown to onnx; types from the builder).

        onnx has no schemas for ``com.microsoft`` ops, so its shape inference cannot type their
        outputs, nor anything computed from them; recording the types lets onnx's checker, strict
        shape inference and the bf16 emulation (:mod:`hrm.export.bf16`) type the whole graph.
        """
        outputs = {o.name for o in self.outputs}
        return [helper.make_tensor_value_info(o, self.types[o], None)
                for n in self.nodes if n.domain == MS_DOMAIN for o in n.output if o and o not in outputs]


class _Scope:
    def __init__(self, builder: GraphBuilder, name: str) -> None:
        self.builder, self.name = builder, name

    def __enter__(self) -> GraphBuilder:
        self.builder._scope.append(self.name)
        return self.builder

    def __exit__(self, *exc) -> None:
        self.builder._scope.pop()
