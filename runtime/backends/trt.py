"""TensorRT backend (``tensorrt`` 10.3+/11 or ``tensorrt_rtx``): one execution context per engine.

Why it looks like this:

* **Checked before loaded.** The manifest's engine records (flavour, TensorRT version, compute
  capability) are compared with this machine by the pure rule in :mod:`hrm.runtime.engine_check`;
  a mismatch raises :class:`hrm.errors.EngineMismatchError` with the reason and the rebuild command
  before a byte is deserialised. Engine files are then re-hashed against the manifest.
* **Only the API shared by TensorRT 10.3+ and 11**: ``Runtime.deserialize_cuda_engine``,
  ``create_execution_context``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``,
  the ``num_io_tensors`` / ``get_tensor_*`` introspection. No bindings, no implicit batch.
* **No torch**: device buffers are Polygraphy ``cuda.DeviceArray`` s, all work goes on one
  Polygraphy ``cuda.Stream``; copies and CUDA graphs through :mod:`hrm.runtime.gpu`.
* **Shapes set once per batch size** (when it becomes current); addresses set per call, which is a
  host-side pointer store — the ping-pong of :mod:`hrm.runtime.backends.buffered` costs nothing.
* **One CUDA graph per segment** (``cuda_graph=True``, default): the N*T l_step, N h_step and heads
  launches of a segment are captured once per (batch size, ping-pong parity at segment start; at
  most two) after one eager warm-up segment (TensorRT may allocate or JIT on a first enqueue, which
  must not happen under capture), then replayed with a single ``cudaGraphLaunch``. Row loads
  (embed, state resets) stay outside the graph and write the very buffers the graph reads.
  If capture fails (an engine or driver that is not capturable), the backend warns once and runs
  eagerly. ``fused=True`` runs the fused ``segment`` engine instead of the step engines (captured
  the same way).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from hrm.errors import EngineMismatchError, HRMError, ManifestError
from hrm.manifest import IO_NAMES
from hrm.runtime.backends.base import BackendError
from hrm.runtime.backends.buffered import BatchBuffers, Buffer, BufferedBackend, cuda_memory
from hrm.runtime.backends.options import TrtOptions
from hrm.runtime.deployment import TensorSpec
from hrm.runtime.engine_check import check_engines, detect_local, import_trt, rebuild_command

_TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64"}


class TrtBackend(BufferedBackend):
    """TensorRT engines of one precision variant on the current CUDA device (options: :class:`TrtOptions`)."""

    name = "trt"
    options_class = TrtOptions

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cuda",
                 options: TrtOptions | None = None) -> None:
        super().__init__(deployment, variant, device, options)
        self.cuda_graph = self.options.cuda_graph  # cleared if capture fails (then segments run eagerly)
        self.engines: dict[str, Any] = {}
        self.contexts: dict[str, Any] = {}
        self.local = None

    # ---- life cycle ------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        man = self.deployment.manifest
        var = self.variant
        missing = [k for k in self.graph_kinds if k not in var.engines]
        if missing:
            raise ManifestError(f"{man.root}: variant {self.precision} has no TensorRT engines for {missing}; "
                                f"build them with: {self._rebuild()}")
        entries = [var.engines[k] for k in self.graph_kinds]
        flavours = sorted({e.flavour for e in entries})
        if len(flavours) != 1:
            raise EngineMismatchError(f"{man.root}: variant {self.precision} mixes engine flavours {flavours}")
        if self.options.check:
            try:
                self.local = detect_local(flavours[0])
            except HRMError:
                raise
            except Exception as exc:  # no CUDA runtime / driver / GPU
                raise BackendError(f"the trt backend needs a CUDA GPU; cannot read this machine's: {exc}") from None
            check_engines(entries, self.local, man.root, self.precision, (man.source or {}).get("path"),
                          ",".join(man.variants))
        man.verify_files(self.precision, engines=True)
        trt = import_trt(flavours[0])
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.memory = cuda_memory()
        try:
            for kind in self.graph_kinds:
                path = man.path(var.engines[kind].file)
                engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
                if engine is None:
                    raise EngineMismatchError(f"{path}: TensorRT could not deserialise the engine (see the log above); "
                                              f"rebuild with: {self._rebuild()}")
                self.engines[kind] = engine
                self._check_io(kind, engine, path)
                ctx = engine.create_execution_context()
                if ctx is None:
                    raise BackendError(f"{path}: could not create an execution context (out of device memory?)")
                self.contexts[kind] = ctx
        except BaseException:
            self.deactivate_impl()
            raise

    def _release_cache(self, cache: dict[Any, Any]) -> None:
        for key, v in cache.items():
            if key[0] == "graph":
                v[0].free()

    def _drop_graphs(self) -> None:
        self.contexts.clear()
        self.engines.clear()

    def _rebuild(self) -> str:
        man = self.deployment.manifest
        return rebuild_command(man.root, ",".join(man.variants), (man.source or {}).get("path"))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(cuda_graph=self.cuda_graph, tensorrt=None if self.local is None else self.local.version,
                 flavour=None if self.local is None else self.local.flavour,
                 compute_capability=None if self.local is None else self.local.compute_capability)
        return d

    def _check_io(self, kind: str, engine: Any, path: Any) -> None:
        trt = self._trt
        want_in, want_out = IO_NAMES[kind]
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        ins = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(ins) != sorted(want_in) or sorted(outs) != sorted(want_out):
            raise EngineMismatchError(f"{path}: engine I/O is {ins} -> {outs}, expected {list(want_in)} -> {list(want_out)}")
        specs_in, specs_out = self.deployment.io_specs(self.precision, kind, 1)
        for spec in (*specs_in, *specs_out):
            got = _TRT_DTYPES.get(str(engine.get_tensor_dtype(spec.name)).split(".")[-1])
            if got is not None and got != spec.dtype:
                raise EngineMismatchError(f"{path}: tensor {spec.name} is {got} in the engine but {spec.dtype} in the "
                                          f"manifest; rebuild with: {self._rebuild()}")

    # ---- buffers ----------------------------------------------------------------------------------
    def _alloc(self, spec: TensorSpec) -> Buffer:
        from polygraphy import cuda

        arr = cuda.DeviceArray.raw((max(spec.nbytes, 1),))
        return Buffer(spec, int(arr.ptr), handle=arr)

    def _release(self, buf: Buffer) -> None:
        if buf.handle is not None:
            buf.handle.free()
        super()._release(buf)

    def _on_select(self, bufs: BatchBuffers) -> None:
        for kind in self.graph_kinds:
            ins, _ = self.deployment.io_specs(self.precision, kind, bufs.batch)
            ctx = self.contexts[kind]
            for spec in ins:
                if not ctx.set_input_shape(spec.name, spec.shape):
                    raise EngineMismatchError(
                        f"{kind} engine rejects input {spec.name} of shape {list(spec.shape)} (batch {bufs.batch} is "
                        f"outside its optimisation profile); rebuild with a larger max batch: "
                        f"{self._rebuild()}")

    # ---- running ----------------------------------------------------------------------------------
    def _run(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> None:
        ctx = self.contexts[kind]
        in_names, out_names = IO_NAMES[kind]
        for name, buf in zip(in_names, inputs):
            ctx.set_tensor_address(name, buf.ptr)
        for name, buf in zip(out_names, outputs):
            ctx.set_tensor_address(name, buf.ptr)
        if not ctx.execute_async_v3(self.memory.stream.ptr):
            raise BackendError(f"TensorRT execute_async_v3 failed for {kind} (batch {self.batch}); see the log above")

    def segment(self) -> None:
        """One segment; replayed from a captured CUDA graph once warmed up (see the module doc)."""
        if not self.cuda_graph:
            return super().segment()
        b = self.bufs
        start = b.pp.key
        cached = b.cache.get(("graph", start))
        if cached is not None:
            graph, end = cached
            graph.launch()
            b.pp.h, b.pp.l = end
            return None
        if ("warm", start) not in b.cache:
            b.cache[("warm", start)] = True
            return super().segment()
        from hrm.runtime.gpu import CudaError, CudaGraph

        try:
            graph = CudaGraph(self.memory.stream, super().segment)  # flips the ping-pong as it enqueues
        except (CudaError, RuntimeError, BackendError) as exc:
            b.pp.h, b.pp.l = start
            warnings.warn(f"trt backend: CUDA graph capture failed ({exc}); running segments eagerly", stacklevel=2)
            self.cuda_graph = False
            return super().segment()
        b.cache[("graph", start)] = (graph, b.pp.key)
        graph.launch()
        return None
