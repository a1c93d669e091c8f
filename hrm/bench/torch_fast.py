"""Faster PyTorch references for the benchmark: ``torch.compile`` and/or CUDA-graph capture of a segment.

:class:`TorchFastBackend` is the runtime's :class:`~hrm.runtime.backends.torch_ref.TorchBackend` (same
weights, same ``embed / l_step / h_step / heads``, same loop contract) with three optional changes, so
that "ORT / TensorRT vs PyTorch" compares against the best PyTorch one can reasonably write, not only
against eager mode:

* ``precast`` (default on for fp16/bf16): the fp32 master parameters are cast once to the forward dtype.
  The reference casts every weight at every use (``CastedLinear``); the values are the same bits, the
  per-call cast kernels disappear. Buffers (H_init/L_init, RoPE tables) stay fp32, as the model uses them.
* ``compile``: the L and H reasoning modules go through ``torch.compile`` (inductor, mode
  ``compile_mode``, default ``"default"``; same code, so the second compiles from the first's cache);
  a segment calls them N*(T+1) times. The heads stay eager.
* ``cuda_graph`` (CUDA only): the whole segment (:func:`hrm.manifest.run_segment`) is captured once per
  batch size into a ``torch.cuda.CUDAGraph`` over *static* buffers and replayed with one launch. The
  captured body ends by copying the new z_H / z_L back into the very buffers it reads, and the heads into
  static outputs, so replays chain; row loads write those buffers in place (``index_put_``), never
  replacing the tensors the graph holds pointers to. Capture follows the PyTorch recipe: warm-up calls on
  a side stream (compilation, cuBLAS workspace, autotuning must not happen under capture), then capture.
  The warm-up runs advance the state, so the state is snapshotted before and restored after.

The static-buffer path is also available without capture (``static=True``), which is how the CPU tests
check its state handling against eager results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hrm.manifest import run_segment
from hrm.runtime.backends.base import BackendError, Heads
from hrm.runtime.backends.options import TorchOptions
from hrm.runtime.backends.torch_ref import TorchBackend


@dataclass(frozen=True)
class TorchFastOptions(TorchOptions):
    """:class:`TorchOptions` plus the three changes of the module docstring; ``precast`` None = on below fp32,
    ``static`` None = with ``cuda_graph``."""

    backend: ClassVar[str] = "torch"
    compile: bool = False
    cuda_graph: bool = False
    compile_mode: str = "default"
    precast: bool | None = None
    static: bool | None = None


class TorchFastBackend(TorchBackend):
    """PyTorch reference with optional precast weights, ``torch.compile`` and whole-segment CUDA graphs."""

    name = "torch"
    options_class = TorchFastOptions

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cpu",
                 options: TorchFastOptions | None = None) -> None:
        super().__init__(deployment, variant, device, options)
        o = self.options
        if o.cuda_graph and not str(device).startswith("cuda"):
            raise BackendError("torch CUDA graphs need device='cuda'")
        self.compile = bool(o.compile)
        self.cuda_graph = bool(o.cuda_graph)
        self.compile_mode = o.compile_mode
        self.precast = (self.precision != "fp32") if o.precast is None else bool(o.precast)
        self.static = self.cuda_graph if o.static is None else (bool(o.static) or self.cuda_graph)
        self._fns: tuple[Any, Any, Any] | None = None
        self._graphs: dict[int, Any] = {}
        self._outs: dict[int, tuple[Any, Any, Any]] = {}

    # ---- life cycle ------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        super().activate_impl()
        torch = self._torch
        self._caller_model = self.model if self._given_model else None
        if self.precast:
            if self._given_model:  # never round a caller's fp32 master weights: work on a copy
                import copy

                self.model = copy.deepcopy(self.model)
            dtype = self.model.forward_dtype
            with torch.no_grad():
                for p in self.model.parameters():
                    p.data = p.data.to(dtype)
        fns = (self.model.l_step, self.model.h_step, self.model.heads)
        if self.compile:
            fns = self._compiled()
        self._fns = fns  # type: ignore[assignment]

    def _compiled(self) -> tuple[Any, Any, Any]:
        """l_step / h_step over compiled reasoning modules. The L and H stacks run the same module code with
        different weights (parameters are graph inputs), so dynamo reuses one compiled graph for both: two
        compiles in all (batch 1, then one dynamic-batch graph), measured 10 s on the H100 host, ~30 s on a
        2-core CPU. The heads (two small matmuls) stay eager."""
        torch, m = self._torch, self.model
        try:
            L = torch.compile(m.L_level, mode=self.compile_mode, dynamic=None)
            H = L if m.config.h_step_level == "L_level" else torch.compile(m.H_level, mode=self.compile_mode,
                                                                             dynamic=None)
        except Exception as exc:  # no inductor backend / compiler here
            raise BackendError(f"torch.compile is not usable here: {exc}") from None
        cos_sin = m._cos_sin

        def l_step(z_L, z_H, x):  # == model.l_step
            return L(z_L, z_H + x, cos_sin)

        def h_step(z_H, z_L):  # == model.h_step (TRM: the same network as l_step)
            return H(z_H, z_L, cos_sin)

        return l_step, h_step, m.heads

    def deactivate_impl(self) -> None:
        self._graphs.clear()
        self._outs.clear()
        self._fns = None
        super().deactivate_impl()
        if self._given_model:
            self.model = self._caller_model

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(compile_mode=self.compile_mode if self.compile else None, precast_weights=self.precast,
                 static_buffers=self.static)
        return d

    # ---- state -------------------------------------------------------------------------------------
    def _embed(self) -> None:
        with self._torch.no_grad():
            x = self.model.embed(self.s["tokens"], self.s["ids"])
            if self.static and self.s.get("x") is not None:
                self.s["x"].copy_(x)  # the captured graph holds this buffer's address
            else:
                self.s["x"] = x

    @property
    def _rows_in_place(self) -> bool:
        """Static buffers: row loads write in place (same storage the captured graph reads)."""
        return self.static

    def l_step(self) -> None:
        with self._torch.no_grad():
            self.s["z_L"] = self._fns[0](self.s["z_L"], self.s["z_H"], self.s["x"])

    def h_step(self) -> None:
        with self._torch.no_grad():
            self.s["z_H"] = self._fns[1](self.s["z_H"], self.s["z_L"])

    def heads(self) -> None:
        with self._torch.no_grad():
            self.s["heads"] = self._fns[2](self.s["z_H"])

    def segment(self) -> None:
        if not self.static:
            return super().segment()  # l_step / h_step / heads above (compiled or not)
        B = self.batch
        if self.cuda_graph:
            graph = self._graphs.get(B)
            if graph is None:
                graph = self._graphs[B] = self._capture()
            graph.replay()
        else:
            with self._torch.no_grad():
                self._static_body()
        self.s["heads"] = self._outs[B]
        return None

    # ---- the static segment --------------------------------------------------------------------------
    def _static_body(self) -> None:
        """One segment on the static buffers: reads z_H / z_L / x, writes z_H / z_L and the head outputs."""
        s = self.s
        z_H, z_L, logits, q_halt, q_continue = run_segment(self.deployment.config, *self._fns, s["z_H"], s["z_L"], s["x"])
        B = self.batch
        if B not in self._outs:  # first (uncaptured) run allocates the static outputs
            self._outs[B] = (logits.clone(), q_halt.clone(), q_continue.clone())
        out = self._outs[B]
        s["z_H"].copy_(z_H)
        s["z_L"].copy_(z_L)
        out[0].copy_(logits)
        out[1].copy_(q_halt)
        out[2].copy_(q_continue)

    def _capture(self) -> Any:
        torch, s = self._torch, self.s
        snapshot = (s["z_H"].clone(), s["z_L"].clone())
        with torch.no_grad():
            self._static_body()  # on the current stream: compiles, allocates the static outputs
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(2):  # cuBLAS workspaces / autotuning on a side stream, outside the capture
                self._static_body()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.no_grad(), torch.cuda.graph(graph):
                self._static_body()
        except Exception as exc:
            raise BackendError(f"CUDA graph capture of the torch segment failed: {exc}") from None
        # Capture records, it does not run; the warm-up runs did: put the state back.
        s["z_H"].copy_(snapshot[0])
        s["z_L"].copy_(snapshot[1])
        torch.cuda.synchronize()
        return graph

    def read_heads(self, logits: bool = True) -> Heads:
        return super().read_heads(logits)
