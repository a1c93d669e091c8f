"""ONNX Runtime sessions for validation: which provider, and how bf16 graphs are run.

* ``CUDAExecutionProvider`` when ONNX Runtime has it (onnxruntime-gpu on the H100 / Jetson), with TF32
  off so fp32 graphs are checked at fp32 accuracy; bf16 graphs run their real bf16 kernels inside an
  fp32 I/O wrapper (:func:`hrm.export.bf16.wrap_io_fp32`).
* Otherwise ``CPUExecutionProvider``: fp32 and fp16 graphs run as exported (for fp16 ops without a CPU
  kernel ORT inserts casts and computes them in fp32); bf16 graphs, for which the CPU provider has no
  MatMul/Add/... kernels at all, run as their derived fp32-compute copy
  (:func:`hrm.export.bf16.emulate_bf16`).

Derived models are written next to a temporary directory (external data when large) so multi-GB
graphs do not hit protobuf's 2 GB limit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import onnx

from hrm.export.bf16 import emulate_bf16, wrap_io_fp32
from hrm.export.precision import Precision

Provider = Literal["auto", "cpu", "cuda"]


def cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_provider(provider: Provider = "auto") -> str:
    """``auto`` -> ``cuda`` when ONNX Runtime has the CUDA provider, else ``cpu``."""
    if provider == "auto":
        return "cuda" if cuda_available() else "cpu"
    if provider == "cuda" and not cuda_available():
        from hrm.errors import ExportError

        raise ExportError("validation provider 'cuda' asked for, but this onnxruntime has no "
                          "CUDAExecutionProvider (pip install onnxruntime-gpu)")
    return provider


def route(precision: Precision, provider: str) -> str:
    """One line saying how graphs of this precision are executed for validation."""
    import onnxruntime as ort

    ep = "CUDAExecutionProvider" if provider == "cuda" else "CPUExecutionProvider"
    base = f"onnxruntime {ort.__version__} {ep}"
    if precision.name == "bf16":
        if provider == "cuda":
            return base + ", bf16 kernels (fp32 I/O wrapper)"
        return base + ", bf16 emulated: fp32 compute with bf16 rounding after every value-changing op"
    if precision.name == "fp32" and provider == "cuda":
        return base + " (TF32 off)"
    return base


def make_session(path: Path, precision: Precision, provider: str, workdir: Path):
    """An ``onnxruntime.InferenceSession`` for the exported graph at ``path`` (see module doc)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # No busy-waiting between runs: the PyTorch reference runs in the same process on the same cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if provider == "cuda":
        from hrm.runtime.gpu import preload_ort_cuda

        preload_ort_cuda(ort)
        # Strict SkipLayerNorm: ort-contrib graphs' fused residual+RMSNorm then keeps its statistics in
        # fp32, as the reference does and as the runtime's ORT backend runs it (no effect on standard graphs).
        providers = [("CUDAExecutionProvider", {"use_tf32": 0, "enable_skip_layer_norm_strict_mode": 1}),
                     "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    if precision.name != "bf16":
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    model = onnx.load(str(path))
    derived = wrap_io_fp32(model) if provider == "cuda" else emulate_bf16(model)
    # Keep ORT from folding the emulation's Cast(->bf16)->Cast(->fp32) pairs away.
    if provider != "cuda":
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    target = Path(tempfile.mkdtemp(prefix=f"{path.stem}.", dir=workdir)) / path.name
    large = derived.ByteSize() > (1 << 30) if _fits(derived) else True
    onnx.save_model(derived, str(target), save_as_external_data=large, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)
    return ort.InferenceSession(str(target), sess_options=opts, providers=providers)


def _fits(model: onnx.ModelProto) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # noqa: BLE001 - protobuf refuses to size messages over 2 GB
        return False
