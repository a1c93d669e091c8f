"""ONNX Runtime backend: the four graphs as four InferenceSessions driven through IO binding.

Why it looks like this:

* **IO binding on OrtValues the backend owns.** Every input and output is bound to a buffer from
  :mod:`hrm.runtime.backends.buffered` (CPU: numpy-backed OrtValues, zero copy; CUDA: OrtValues
  allocated on the device). z_H / z_L never leave the device between steps: ``l_step`` reads
  ``z_L[i]`` and writes ``z_L[1-i]`` (ping-pong), ``h_step`` likewise for z_H.
* **One IOBinding per buffer combination**, built on first use and cached. There are only a handful
  (l_step: z_L x z_H parities, h_step likewise, heads x2, embed x1), so steady state does no
  rebinding, which is also exactly what ORT's CUDA graphs require.
* **One CUDA stream for all four sessions** (``user_compute_stream``): sessions queue work in order
  on our stream, and the row copies of :class:`CudaMemory` go on the same stream. With CUDA graphs
  ``Run`` also returns without waiting (``disable_synchronize_execution_providers``), so a segment has
  no host synchronisation; without them each ``Run`` synchronises (ORT 1.31's CUDA EP aborted in
  ``cudaFreeHost`` on an H100 when unsynchronised runs were left on a user stream).
* **No TF32 unless asked** (``use_tf32=0``; ORT enables it by default on Ampere+): an fp32 variant
  must give the fp32 reference's answers (the parity gate); fp16/bf16 variants are the fast path.
* **Fused segment** (``fused=True``, needs an export with ``--segment``): one ``segment`` session run
  per segment instead of N*(T+1)+1, same ping-pong (both states flip once per segment).
* **CUDA graphs** (``cuda_graph=True``): ``enable_cuda_graph`` on the step sessions (not embed, which
  runs once per load), with a distinct ``gpu_graph_id`` per cached binding. ORT requires fixed shapes
  and pre-bound buffers, which is what the cache gives. Off by default (an opt-in, like ORT's own
  option); measured on an H100 (``benchmarks/README.md``, ``ort-cuda-graph`` rows): 3.5x faster per
  segment at batch 1, where the step graphs are launch-bound, and ~10% at batch 256.
* **Graph ops.** ``ort-contrib`` variants (ONNX Runtime's fused com.microsoft ops) load like any
  other ONNX graph; nothing here depends on the ops inside. On CUDA their fused residual+RMSNorm
  (``SkipSimplifiedLayerNormalization``) computes its statistics in fp16/bf16 unless the provider's
  ``enable_skip_layer_norm_strict_mode`` is set, so it is set (``strict_norm=True``, the default):
  RMSNorm statistics stay fp32 as in the PyTorch reference. ``strict_norm=False`` trades that for ORT's
  faster non-strict kernel.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from hrm.errors import ManifestError
from hrm.manifest import STANDARD
from hrm.runtime.backends.base import BackendError
from hrm.runtime.backends.buffered import Buffer, BufferedBackend, HostMemory, cuda_memory
from hrm.runtime.backends.options import OrtOptions
from hrm.runtime.deployment import TensorSpec
from hrm.runtime.dtypes import ONNX_TYPES, host_dtype

#: The first onnxruntime-gpu whose CUDA EP registers MultiHeadAttention for bfloat16 (microsoft/onnxruntime
#: PR 26083, merged 2025-09-18, after the 1.23 release branch): what an ort-contrib bf16 variant needs there.
ORT_CONTRIB_BF16_CUDA = (1, 24)


def _require_contrib_bf16(ort: Any, variant: Any, precision: str) -> None:
    """Refuse an ort-contrib bf16 variant on a CUDA EP too old to have a bf16 MultiHeadAttention kernel."""
    if variant.ops == STANDARD or variant.state_dtype != "bfloat16":
        return
    have = tuple(int(x) for x in ort.__version__.split(".")[:2] if x.isdigit())
    if have < ORT_CONTRIB_BF16_CUDA:
        need = ".".join(map(str, ORT_CONTRIB_BF16_CUDA))
        raise BackendError(f"variant {precision} ({variant.ops} graphs, bfloat16) needs onnxruntime-gpu >= {need} on "
                           f"CUDA (bf16 MultiHeadAttention kernel); this is {ort.__version__}: pip install "
                           f"'onnxruntime-gpu>={need}', or use the standard graphs / fp16")


class OrtBackend(BufferedBackend):
    """ONNX Runtime on the CPU or CUDA execution provider (options: :class:`OrtOptions`)."""

    name = "ort"
    options_class = OrtOptions

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cpu",
                 options: OrtOptions | None = None) -> None:
        super().__init__(deployment, variant, device, options)
        self.sessions: dict[str, Any] = {}
        self._next_graph_id = 0

    # ---- life cycle ------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"the ort backend needs onnxruntime ({exc}): pip install 'hrm-deploy[ort]' "
                               "(CPU) or 'hrm-deploy[ort-gpu]' (CUDA)") from None

        self._ort = ort
        var = self.variant
        if self.device == "cuda":
            avail = ort.get_available_providers()
            if "CUDAExecutionProvider" not in avail:
                raise BackendError(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (available: {avail}); "
                                   "install onnxruntime-gpu (pip install 'hrm-deploy[ort-gpu]') or use --device cpu")
            from hrm.runtime.gpu import preload_ort_cuda

            preload_ort_cuda(ort)  # cuBLAS / cuDNN from pip's nvidia-* wheels for a torch-free install
            _require_contrib_bf16(ort, var, self.precision)
            self.memory = cuda_memory()
        else:
            self.memory = HostMemory()
        try:
            for kind in self.graph_kinds:
                path = self.deployment.manifest.path(var.graphs[kind].file)
                try:
                    self.sessions[kind] = ort.InferenceSession(os.fspath(path), sess_options=self._session_options(),
                                                               providers=self._providers(kind))
                except Exception as exc:  # ORT raises its own pybind types: name the file and the variant
                    if isinstance(exc, (KeyboardInterrupt, BackendError)):
                        raise
                    raise BackendError(f"{path}: onnxruntime {ort.__version__} cannot load the {self.precision} "
                                       f"{kind} graph on {self.device}: {str(exc).strip()}") from exc
                if self.device == "cuda" and self.sessions[kind].get_providers()[0] != "CUDAExecutionProvider":
                    raise BackendError(f"{path}: onnxruntime did not place the graph on CUDA "
                                       f"(providers {self.sessions[kind].get_providers()})")
                self._check_io(kind, path)
            self._run_options = ort.RunOptions()
            if self.device == "cuda" and self.options.cuda_graph:
                # Without CUDA graphs, ORT 1.31's CUDA EP aborts in cudaFreeHost (error 800) when runs
                # are left unsynchronised on a user stream (seen on an H100); let it synchronise there.
                self._run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        except BaseException:
            self.deactivate_impl()
            raise

    def _drop_graphs(self) -> None:
        self.sessions.clear()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        import onnxruntime as ort

        d.update(onnxruntime=ort.__version__, ops=self.variant.ops,
                 providers=self.sessions["l_step"].get_providers() if self.sessions else None)
        return d

    def _session_options(self) -> Any:
        so = self._ort.SessionOptions()
        levels = {"all": self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "basic": self._ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "none": self._ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        so.graph_optimization_level = levels[self.options.optimization]
        if self.options.threads:
            so.intra_op_num_threads = int(self.options.threads)
        if not self.options.spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        return so

    def _providers(self, kind: str) -> list[Any]:
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        opts = {"device_id": str(self.options.device_id), "user_compute_stream": str(self.memory.stream.ptr),
                "use_tf32": "1" if self.options.tf32 else "0"}
        if self.options.cuda_graph and kind != "embed":
            opts["enable_cuda_graph"] = "1"
        if self.options.strict_norm and self.variant.ops != STANDARD:
            opts["enable_skip_layer_norm_strict_mode"] = "1"
        return [("CUDAExecutionProvider", opts)]

    def _check_io(self, kind: str, path: Any) -> None:
        from hrm.manifest import IO_NAMES

        sess = self.sessions[kind]
        got_in = [i.name for i in sess.get_inputs()]
        got_out = [o.name for o in sess.get_outputs()]
        want_in, want_out = IO_NAMES[kind]
        if sorted(got_in) != sorted(want_in) or sorted(got_out) != sorted(want_out):
            raise ManifestError(f"{path}: graph I/O is {got_in} -> {got_out}, expected {list(want_in)} -> {list(want_out)}")

    # ---- buffers ----------------------------------------------------------------------------------
    def _alloc(self, spec: TensorSpec) -> Buffer:
        OrtValue = self._ort.OrtValue
        if self.device == "cpu":
            arr = np.zeros(spec.shape, host_dtype(spec.dtype))
            if spec.dtype == "bfloat16":
                ov = OrtValue.ortvalue_from_numpy_with_onnx_type(arr, ONNX_TYPES["bfloat16"])
            else:
                ov = OrtValue.ortvalue_from_numpy(arr)
            return Buffer(spec, int(arr.ctypes.data), host=arr, handle=ov)
        etype = ONNX_TYPES["bfloat16"] if spec.dtype == "bfloat16" else host_dtype(spec.dtype).type
        ov = OrtValue.ortvalue_from_shape_and_type(list(spec.shape), etype, "cuda", self.options.device_id)
        return Buffer(spec, int(ov.data_ptr()), handle=ov)

    # ---- running ----------------------------------------------------------------------------------
    def _run(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> None:
        key = (kind, tuple(id(b) for b in inputs), tuple(id(b) for b in outputs))
        entry = self.bufs.cache.get(key)
        if entry is None:
            entry = self.bufs.cache[key] = self._bind(kind, inputs, outputs)
        binding, options = entry
        self.sessions[kind].run_with_iobinding(binding, options)

    def _bind(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> tuple[Any, Any]:
        from hrm.manifest import IO_NAMES

        sess = self.sessions[kind]
        binding = sess.io_binding()
        in_names, out_names = IO_NAMES[kind]
        for name, buf in zip(in_names, inputs):
            binding.bind_ortvalue_input(name, buf.handle)
        for name, buf in zip(out_names, outputs):
            binding.bind_ortvalue_output(name, buf.handle)
        options = self._run_options
        if self.options.cuda_graph and kind != "embed":
            options = self._ort.RunOptions()
            options.add_run_config_entry("disable_synchronize_execution_providers", "1")
            options.add_run_config_entry("gpu_graph_id", str(self._next_graph_id))
            self._next_graph_id += 1
        return binding, options
