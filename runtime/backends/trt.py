"""TensorRT backend (``tensorrt`` 10.3+/11 or ``tensorrt_rtx``): engines of one variant on the current GPU.

Why it looks like this:

* **Checked before loaded.** The manifest's engine records (flavour, TensorRT version, compute
  capability) are compared with this machine by the pure rule in :mod:`hrm.runtime.engine_check`;
  a mismatch raises :class:`hrm.errors.EngineMismatchError` with the reason and the rebuild command
  before a byte is deserialised. Engine files are then re-hashed against the manifest.
* **Only the API shared by TensorRT 10.3+ and 11**: ``Runtime.deserialize_cuda_engine``,
  ``create_execution_context(USER_MANAGED)``, ``device_memory_size_v2`` + ``set_device_memory``,
  ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``, the ``num_io_tensors`` /
  ``get_tensor_*`` introspection. Where TensorRT-RTX differs, :class:`hrm.runtime.trt_lib.Flavour` says so.
* **One execution context per (engine, batch size, binding set), never modified after creation.** A
  context's shapes and tensor addresses are set once, when it is created, and it only ever enqueues
  after that. Why: TensorRT's CUDA-graph rules (capture only after one ``enqueueV3`` at the final
  shapes; do not change the context afterwards) — a graph captured at batch 4 must not be replayed on
  a context that batch 1 has since re-shaped, and inside one captured segment ``l_step`` is enqueued
  N*T times with alternating (ping-pong) addresses, so each address set gets its own context whose
  per-enqueue state TensorRT may keep in host or device memory. There are few: per batch size one
  ``embed``, up to four ``l_step`` / ``h_step`` (the z_H x z_L parities) and two ``heads``/``segment``.
  Contexts live in the batch's cache (:class:`BatchBuffers`), so switching batch size touches nothing.
* **One scratch block for every context.** Contexts are created ``USER_MANAGED`` and all get the same
  device memory (``max(device_memory_size_v2)`` over the engines, one ``cudaMalloc``): they run one at a
  time on one stream, which is the condition TensorRT states for sharing it.
* **No torch**: device buffers and the stream come from :mod:`hrm.runtime.gpu`.
* **One CUDA graph per segment** (``cuda_graph=True``, default): the N*T l_step, N h_step and heads
  launches of a segment are captured once per (batch size, ping-pong parity at segment start; at
  most two), after one eager segment with the same parity (which creates every context the capture
  uses and enqueues each once at its final shape: a context is never created under capture), then
  replayed with a single ``cudaGraphLaunch``. Row loads (embed, state resets) stay outside the graph and
  write the very buffers the graph reads. TensorRT-RTX contexts are asked ``is_stream_capturable`` first.
  If capture is refused or fails, the partial graph is destroyed (:class:`hrm.runtime.gpu.CudaGraph`),
  the backend warns once and runs eagerly. ``fused=True`` runs the fused ``segment`` engine instead of
  the step engines (captured the same way).
* **TensorRT-RTX runtime config**: each engine's contexts come from one ``IRuntimeConfig`` with
  ``USER_MANAGED`` memory and eager kernel specialisation for dynamic shapes (kernels for a batch size
  are compiled when its contexts are created, not on a first enqueue that may be under capture), sharing
  one runtime cache that is loaded from and saved to ``<precision>/tensorrt_rtx.runtime_cache`` beside
  the engines, so later sessions skip the JIT compilation. RTX's own CUDA-graph strategy is left off:
  our capture spans several engines.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

from hrm.errors import EngineMismatchError, HRMError, ManifestError
from hrm.io import write_bytes_atomic
from hrm.manifest import IO_NAMES
from hrm.runtime.backends.base import BackendError
from hrm.runtime.backends.buffered import BatchBuffers, Buffer, BufferedBackend, cuda_memory
from hrm.runtime.backends.options import TrtOptions
from hrm.runtime.deployment import TensorSpec
from hrm.runtime.engine_check import check_engines, detect_local, rebuild_command
from hrm.runtime.trt_lib import import_tensorrt, logger

_log = logging.getLogger("hrm.runtime.trt")
_TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64"}
RUNTIME_CACHE = "tensorrt_rtx.runtime_cache"


class TrtBackend(BufferedBackend):
    """TensorRT engines of one precision variant on the current CUDA device (options: :class:`TrtOptions`)."""

    name = "trt"
    options_class = TrtOptions

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cuda",
                 options: TrtOptions | None = None) -> None:
        super().__init__(deployment, variant, device, options)
        self.cuda_graph = self.options.cuda_graph  # cleared if capture fails (then segments run eagerly)
        self.engines: dict[str, Any] = {}
        self.local = None
        self._trt: Any = None
        self._configs: dict[str, Any] = {}  # TensorRT-RTX: one IRuntimeConfig per engine
        self._runtime_cache: Any = None
        self._scratch: Any = None
        self._capturing = False

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
        self._trt = import_tensorrt(flavours[0], error=EngineMismatchError)
        trt = self._trt.module
        self._runtime = trt.Runtime(logger(self._trt))
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
            if self._trt.traits.runtime_config:
                self._make_runtime_configs()
            from hrm.runtime.gpu import DeviceBuffer

            self._scratch = DeviceBuffer(max(int(e.device_memory_size_v2) for e in self.engines.values()))
        except BaseException:
            self.deactivate_impl()
            raise

    def _make_runtime_configs(self) -> None:
        """TensorRT-RTX: USER_MANAGED memory, eager kernel specialisation, one shared runtime cache."""
        trt = self._trt.module
        path = self._runtime_cache_path()
        for kind, engine in self.engines.items():
            config = engine.create_runtime_config()
            config.set_execution_context_allocation_strategy(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
            config.dynamic_shapes_kernel_specialization_strategy = trt.DynamicShapesKernelSpecializationStrategy.EAGER
            if self._runtime_cache is None:
                self._runtime_cache = config.create_runtime_cache()
                if path.is_file() and not self._runtime_cache.deserialize(path.read_bytes()):
                    _log.warning("%s: TensorRT-RTX refused this runtime cache (another GPU, driver or TensorRT-RTX); "
                                 "starting empty, it is replaced when this session ends", path)
            config.set_runtime_cache(self._runtime_cache)
            self._configs[kind] = config

    def _runtime_cache_path(self) -> Path:
        man = self.deployment.manifest
        return man.path(self.variant.engines[self.graph_kinds[0]].file).parent / RUNTIME_CACHE

    def _release_cache(self, cache: dict[Any, Any]) -> None:
        for key, v in cache.items():
            if key[0] == "graph":
                v[0].free()

    def _drop_graphs(self) -> None:
        """Contexts are gone with the batch caches; save the RTX runtime cache, free scratch, drop engines."""
        if self._runtime_cache is not None:
            try:
                write_bytes_atomic(self._runtime_cache_path(), bytes(self._runtime_cache.serialize()))
            except OSError as exc:  # a read-only deployment still runs; it just compiles again next time
                _log.warning("could not save the TensorRT-RTX runtime cache: %s", exc)
            self._runtime_cache = None
        self._configs.clear()
        if self._scratch is not None:
            self._scratch.free()
            self._scratch = None
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
        trt = self._trt.module
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
        from hrm.runtime.gpu import DeviceBuffer

        arr = DeviceBuffer(max(spec.nbytes, 1))
        return Buffer(spec, int(arr.ptr), handle=arr)

    def _release(self, buf: Buffer) -> None:
        if buf.handle is not None:
            buf.handle.free()
        super()._release(buf)

    # ---- contexts ---------------------------------------------------------------------------------
    def _context(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> Any:
        """The context of (engine ``kind``, current batch, these buffers): made once, then never changed."""
        bufs: BatchBuffers = self.bufs
        key = ("ctx", kind, tuple(b.ptr for b in inputs), tuple(b.ptr for b in outputs))
        ctx = bufs.cache.get(key)
        if ctx is not None:
            return ctx
        if self._capturing:  # the eager segment before a capture creates every context it needs
            raise BackendError(f"internal: a new {kind} context was needed during CUDA graph capture")
        trt, engine = self._trt.module, self.engines[kind]
        if self._trt.traits.runtime_config:
            ctx = engine.create_execution_context(self._configs[kind])
        else:
            ctx = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if ctx is None:
            raise BackendError(f"{kind}: TensorRT could not create an execution context (batch {bufs.batch}; "
                               "out of host memory?)")
        ctx.set_device_memory(self._scratch.ptr, self._scratch.nbytes)
        ins, _ = self.deployment.io_specs(self.precision, kind, bufs.batch)
        for spec in ins:
            if not ctx.set_input_shape(spec.name, spec.shape):
                raise EngineMismatchError(
                    f"{kind} engine rejects input {spec.name} of shape {list(spec.shape)} (batch {bufs.batch} is "
                    f"outside its optimisation profile); rebuild with a larger max batch: {self._rebuild()}")
        in_names, out_names = IO_NAMES[kind]
        for name, buf in (*zip(in_names, inputs), *zip(out_names, outputs)):
            ctx.set_tensor_address(name, buf.ptr)
        bufs.cache[key] = ctx
        return ctx

    def _run(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> None:
        ctx = self._context(kind, inputs, outputs)
        if not ctx.execute_async_v3(self.memory.stream.ptr):
            raise BackendError(f"TensorRT execute_async_v3 failed for {kind} (batch {self.batch}); see the log above")

    def _capture_refusal(self) -> str | None:
        """TensorRT-RTX: why the current batch's contexts cannot be captured on our stream (None: they can)."""
        if not self._trt.traits.runtime_config:
            return None
        stream = self.memory.stream.ptr
        bad = sorted({key[1] for key, ctx in self.bufs.cache.items()
                      if key[0] == "ctx" and not ctx.is_stream_capturable(stream)})
        return f"TensorRT-RTX says the {', '.join(bad)} contexts are not stream-capturable" if bad else None

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

        why = self._capture_refusal()
        graph = None
        if why is None:
            self._capturing = True
            try:
                graph = CudaGraph(self.memory.stream, super().segment)  # flips the ping-pong as it enqueues
            except (CudaError, RuntimeError, BackendError) as exc:
                why = f"CUDA graph capture failed ({exc})"
                b.pp.h, b.pp.l = start
            finally:
                self._capturing = False
        if graph is None:
            warnings.warn(f"trt backend: {why}; running segments eagerly", stacklevel=2)
            self.cuda_graph = False
            return super().segment()
        b.cache[("graph", start)] = (graph, b.pp.key)
        graph.launch()
        return None
