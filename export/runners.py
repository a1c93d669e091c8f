"""Polygraphy runners for parity checks: the PyTorch reference, and graphs composed into segments.

Per-graph checks use Polygraphy's own ``OnnxrtRunner`` on the exported file against
:class:`TorchRunner`. Segment checks need a *program* over several graphs (the schedule every backend
runs, :func:`hrm.manifest.run_segment`; or several segments chained from the exported initial state):
:class:`ComposedOnnxRunner` runs it over per-graph ONNX Runtime sessions, :class:`TorchRunner` over the
PyTorch module (``HRM.segment`` itself, so the runtime's schedule is checked against the reference's
own loop, not against a copy of it).

Programs: a graph kind (``embed``, ``l_step``, ``h_step``, ``heads``, ``segment``) or ``chain`` (inputs
``tokens``, ``puzzle_ids``; outputs ``z_H@k``, ``z_L@k``, ``logits@k``, ``q_halt@k``, ``q_continue@k`` for
segments k = 1..K from the initial state). bf16 tensors travel as fp32 holding bf16 values. A kind the
deployment serves with another kind's graph (TRM's ``h_step``, :class:`hrm.manifest.GraphAlias`) runs
that graph with its inputs rebound, exactly as the runtime does: :class:`AliasOnnxRunner`, and the
composed runners route it the same way.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata
from polygraphy.datatype import DataType

from hrm.config import HRMConfig
from hrm.export.graphs import GRAPH_KINDS, GraphTensor, graph_io
from hrm.export.onnx_builder import FLOAT, INT32
from hrm.export.precision import Precision
from hrm.manifest import IO_NAMES, GraphAlias, run_segment

CHAIN = "chain"


def run_graph(sessions: Mapping[str, Any], aliases: Mapping[str, GraphAlias], kind: str,
              feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run graph ``kind`` on ONNX Runtime ``sessions`` by name; an aliased kind runs its target's session
    on the rebound inputs (zeros where the alias says) and returns its own output names."""
    alias = aliases.get(kind)
    if alias is None:
        return dict(zip(IO_NAMES[kind][1], sessions[kind].run(None, feed)))
    zeros = np.zeros_like(next(iter(feed.values())))
    inputs = dict(zip(IO_NAMES[alias.runs][0], alias.feed(feed, zeros)))
    return alias.rename(dict(zip(IO_NAMES[alias.runs][1], sessions[alias.runs].run(None, inputs))))


def program_io(program: str, config: HRMConfig, precision: Precision, segments: int = 1
               ) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """Input/output specs of a program (graph kinds as in the manifest; ``chain`` per segment)."""
    if program != CHAIN:
        return graph_io(program, config, precision)
    ins, _ = graph_io("embed", config, precision)
    _, seg_outs = graph_io("segment", config, precision)
    outs = [GraphTensor(f"{s.name.replace('_new', '')}@{k}", s.elem_type, s.shape)
            for k in range(1, segments + 1) for s in seg_outs]
    return ins, outs


def _metadata(specs: list[GraphTensor], precision: Precision) -> TensorMetadata:
    meta = TensorMetadata()
    for s in specs:
        dtype = np.int32 if s.elem_type == INT32 else np.float32 if s.elem_type == FLOAT else precision.carrier_dtype
        meta.add(s.name, dtype=DataType.from_dtype(np.dtype(dtype)), shape=list(s.shape))
    return meta


class _ProgramRunner(BaseRunner):
    """Shared plumbing: metadata from the program's specs, timing, name."""

    def __init__(self, program: str, config: HRMConfig, precision: Precision, segments: int, name: str) -> None:
        super().__init__(name=name)
        if program not in (*GRAPH_KINDS, CHAIN):
            raise ValueError(f"unknown program {program!r}")
        self.program, self.config, self.precision, self.segments = program, config, precision, segments
        self.ins, self.outs = program_io(program, config, precision, segments)

    def get_input_metadata_impl(self) -> TensorMetadata:
        return _metadata(self.ins, self.precision)

    def infer_impl(self, feed_dict: Mapping[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
        start = time.time()
        values = self.run_program(dict(feed_dict))
        self.inference_time = time.time() - start
        return OrderedDict((s.name, values[s.name]) for s in self.outs)

    def run_program(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def chain(self, segment: Callable[..., Sequence[Any]], z_H: Any, z_L: Any, x: Any) -> dict[str, Any]:
        """The ``chain`` program's outputs: ``self.segments`` calls of ``segment`` from (z_H, z_L)."""
        values: list[Any] = []
        for _ in range(self.segments):
            out = segment(z_H, z_L, x)
            z_H, z_L = out[0], out[1]
            values.extend(out)
        return {s.name: v for s, v in zip(self.outs, values)}

    def activate_impl(self) -> None:
        pass

    def deactivate_impl(self) -> None:
        pass


class TorchRunner(_ProgramRunner):
    """The PyTorch reference (``hrm.model.HRM`` with the variant's forward dtype) as a Polygraphy runner."""

    def __init__(self, model: Any, program: str, precision: Precision, segments: int = 1, name: str | None = None) -> None:
        super().__init__(program, model.config, precision, segments, name or f"torch-{precision.name}-{program}")
        self.model = model

    def activate_impl(self) -> None:
        self.model.set_forward_dtype(self.precision.state_dtype)

    def run_program(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        m, dtype = self.model, self.model.forward_dtype

        def t(name: str) -> "torch.Tensor":
            a = torch.from_numpy(np.ascontiguousarray(feed[name]))
            return a if a.dtype == torch.int32 else a.to(dtype)

        with torch.no_grad():
            if self.program == CHAIN:
                x = m.embed(t("tokens"), t("puzzle_ids"))
                out = self.chain(m.segment, *m.initial_state(x.shape[0]), x)
            else:  # the module's method of the same name, inputs and outputs in IO_NAMES order
                ins, outs = IO_NAMES[self.program]
                result = getattr(m, self.program)(*(t(n) for n in ins))
                out = dict(zip(outs, result if isinstance(result, tuple) else (result,)))
        return {k: self._numpy(v) for k, v in out.items()}

    def _numpy(self, v: "Any") -> np.ndarray:
        import torch

        if v.dtype == torch.bfloat16:
            return v.float().numpy()
        return v.numpy()


class AliasOnnxRunner(_ProgramRunner):
    """One aliased graph kind (TRM's ``h_step``) run through its target's ONNX Runtime session."""

    def __init__(self, session: Any, kind: str, alias: GraphAlias, config: HRMConfig, precision: Precision,
                 name: str | None = None) -> None:
        super().__init__(kind, config, precision, 1, name or f"onnxrt-{precision.name}-{kind}-via-{alias.runs}")
        self.session, self.alias = session, alias

    def run_program(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_graph({self.alias.runs: self.session}, {self.program: self.alias}, self.program, feed)


class ComposedOnnxRunner(_ProgramRunner):
    """Segments (and chains of them) composed from the step graphs' ONNX Runtime sessions.

    ``sessions`` maps graph kinds to ``InferenceSession`` s or callables returning one (created lazily on
    activate); ``aliases`` the kinds served by another kind's session; ``init`` holds the exported fp32
    ``(H_init, L_init)`` vectors, cast to the state dtype like the runtime does.
    """

    def __init__(self, sessions: Mapping[str, Any | Callable[[], Any]], program: str, config: HRMConfig,
                 precision: Precision, init: tuple[np.ndarray, np.ndarray] | None = None, segments: int = 1,
                 name: str | None = None, aliases: Mapping[str, GraphAlias] | None = None) -> None:
        if program not in ("segment", CHAIN):
            raise ValueError("ComposedOnnxRunner runs 'segment' or 'chain'; use OnnxrtRunner for one graph")
        super().__init__(program, config, precision, segments, name or f"onnxrt-composed-{precision.name}-{program}")
        self._sessions, self.init = dict(sessions), init
        self.aliases = dict(aliases or {})
        self.sessions: dict[str, Any] = {}

    def activate_impl(self) -> None:
        self.sessions = {k: (s() if callable(s) else s) for k, s in self._sessions.items()}

    def deactivate_impl(self) -> None:
        self.sessions = {}

    def _graph(self, kind: str) -> Callable[..., Any]:
        """Graph ``kind`` as a function of its ``IO_NAMES`` inputs in order (a single output unwrapped);
        an aliased kind runs its target's session (:func:`run_graph`)."""
        names = IO_NAMES[kind][0]

        def run(*args: np.ndarray) -> Any:
            out = list(run_graph(self.sessions, self.aliases, kind, dict(zip(names, args))).values())
            return out[0] if len(out) == 1 else out
        return run

    def segment(self, z_H: np.ndarray, z_L: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return run_segment(self.config, self._graph("l_step"), self._graph("h_step"), self._graph("heads"),
                           z_H, z_L, x)

    def run_program(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.program == "segment":
            return dict(zip(IO_NAMES["segment"][1], self.segment(feed["z_H"], feed["z_L"], feed["x"])))
        if self.init is None:
            raise ValueError("a chain needs the initial state (init=(H_init, L_init))")
        x = self._graph("embed")(feed["tokens"], feed["puzzle_ids"])
        z_H, z_L = (np.broadcast_to(self.precision.round_carrier(v), x.shape).copy() for v in self.init)
        return self.chain(self.segment, z_H, z_L, x)
