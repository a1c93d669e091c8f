"""The configurations a benchmark compares, and why one cannot run here.

A :class:`Target` is one (runtime backend, device, options, precision) combination, named
``<kind>-<device>[-fused][-graph]/<precision>``, e.g. ``ort-cpu/fp32``, ``ort-cuda-graph/fp16``,
``trt-cuda-graph/fp16``, ``torch-eager-cpu/fp32``, ``torch-compile-cuda-graph/bf16``:

=========================  =========================================================================
``ort-<dev>``              ONNX Runtime, the four step graphs through IO binding (``hrm.runtime`` as is)
``ort-<dev>-fused``        ONNX Runtime, the fused ``segment`` graph (one run per segment; needs an
                           export with the segment graph)
``ort-cuda-graph``         ONNX Runtime CUDA EP with ``enable_cuda_graph`` on the step graphs
``ort-<dev>-contrib[-fused|-graph]``  the same three on the ``ort-contrib`` graphs (ONNX Runtime's fused
                           com.microsoft ops), exported from the same weights as the standard ones
``trt-cuda[-graph]``       TensorRT engines, without / with one CUDA graph per segment
``torch-eager-<dev>``      the PyTorch reference backend (``hrm.model.HRM``), eager: the yardstick
``torch-eager-cuda-graph`` the same, whole segment captured in a ``torch.cuda.CUDAGraph``
``torch-compile-cpu``      ``torch.compile`` (inductor) of l_step / h_step / heads, weights precast
``torch-compile-cuda-graph`` the same + whole-segment CUDA graph capture
=========================  =========================================================================

:func:`plan` lists the targets for the asked devices, backends and precisions, each either runnable
or with ``skip`` set to the reason (no CUDA, no TensorRT, no engines, no such precision variant...).
Nothing here raises for an unavailable backend: a skipped target is a row in the report.

ORT and TensorRT targets run graphs of one flavour (``Target.ops``: ``standard`` or ``ort-contrib``,
the manifest's per-variant ``ops``); :func:`plan` takes one deployment per flavour and skips a target
whose flavour has none, saying how to get it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hrm.manifest import GRAPH_OPS, ORT_CONTRIB, QUANTIZED, STANDARD

#: --backends names -> the target kinds they expand to
BACKEND_CHOICES = ("ort", "trt", "torch", "torch-compile")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass
class Target:
    """One configuration to measure."""

    kind: str  # ort | ort-fused | ort-graph | trt | trt-graph | torch-eager | torch-eager-graph | torch-compile...
    backend: str  # runtime backend: ort | trt | torch
    device: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)
    fast: dict[str, Any] | None = None  # TorchFastBackend options (torch-compile / torch graph targets)
    skip: str | None = None
    ops: str | None = None  # graph flavour an ort / trt target runs; None: any (the torch references)

    @property
    def label(self) -> str:
        """``ort-cuda-graph`` (no precision)."""
        base, _, suffix = self.kind.partition("-")
        if base == "torch":
            mode, _, rest = suffix.partition("-")
            return f"torch-{mode}-{self.device}" + (f"-{rest}" if rest else "")
        return f"{base}-{self.device}" + (f"-{suffix}" if suffix else "")

    @property
    def name(self) -> str:
        return f"{self.label}/{self.precision}"

    @property
    def is_reference(self) -> bool:
        return self.kind.startswith("torch")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "precision": self.precision,
                "options": {**self.options, **(self.fast or {})}, **({"ops": self.ops} if self.ops else {})}


def kinds_for(backend: str, device: str, ops: Sequence[str] = GRAPH_OPS) -> list[str]:
    """Target kinds one ``--backends`` entry expands to on ``device``; ``ops``: the graph flavours whose
    ORT targets to include (TensorRT targets are always ``standard``)."""
    if backend == "ort":
        std = ["ort", "ort-fused"] + (["ort-graph"] if device == "cuda" else [])
        return (std if STANDARD in ops else []) + (
            [k.replace("ort", "ort-contrib", 1) for k in std] if ORT_CONTRIB in ops else [])
    if backend == "trt":
        return ["trt", "trt-graph"] if device == "cuda" else ["trt"]
    if backend == "torch":
        return ["torch-eager"] + (["torch-eager-graph"] if device == "cuda" else [])
    if backend == "torch-compile":
        return ["torch-compile-graph"] if device == "cuda" else ["torch-compile"]
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKEND_CHOICES)}")


def make_target(kind: str, device: str, precision: str, threads: int | None = None) -> Target:
    ort_threads = {"threads": threads} if (device == "cpu" and threads) else {}
    table: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None]] = {
        "ort": ("ort", {**ort_threads}, None),
        "ort-fused": ("ort", {**ort_threads, "fused": True}, None),
        "ort-graph": ("ort", {"cuda_graph": True}, None),
        "ort-contrib": ("ort", {**ort_threads}, None),
        "ort-contrib-fused": ("ort", {**ort_threads, "fused": True}, None),
        "ort-contrib-graph": ("ort", {"cuda_graph": True}, None),
        "trt": ("trt", {"cuda_graph": False}, None),
        "trt-graph": ("trt", {"cuda_graph": True}, None),
        "torch-eager": ("torch", {}, None),
        "torch-eager-graph": ("torch", {}, {"cuda_graph": True, "compile": False}),
        "torch-compile": ("torch", {}, {"compile": True, "cuda_graph": False}),
        "torch-compile-graph": ("torch", {}, {"compile": True, "cuda_graph": True}),
    }
    backend, options, fast = table[kind]
    ops = (ORT_CONTRIB if "contrib" in kind else STANDARD) if backend in ("ort", "trt") else None
    return Target(kind, backend, device, precision, dict(options), fast, ops=ops)


def deployment_ops(deployment: Any) -> str:
    """The graph flavour of a deployment (its variants'; older manifests and stubs: ``standard``)."""
    found = {getattr(deployment.variant(p), "ops", STANDARD) for p in deployment.precisions}
    return found.pop() if len(found) == 1 else STANDARD


def plan(deployment: Any, devices: Sequence[str], backends: Sequence[str], precisions: Sequence[str],
         threads: int | None = None, ops: Sequence[str] = GRAPH_OPS,
         flavours: Mapping[str, Any] | None = None) -> list[Target]:
    """Every (device, backend kind, precision) asked for, in report order, with skip reasons filled in.

    ``flavours`` maps a graph flavour to the deployment holding it (default: ``deployment`` under its
    own flavour); ``ops`` limits which flavours' ORT targets are listed."""
    flavours = dict(flavours) if flavours is not None else {deployment_ops(deployment): deployment}
    out: list[Target] = []
    for device in devices:
        for backend in backends:
            for kind in kinds_for(backend, device, ops):
                for precision in precisions:
                    t = make_target(kind, device, precision, threads)
                    dep = deployment if t.ops is None else flavours.get(t.ops)
                    if dep is None:  # a missing GPU is the more basic reason
                        t.skip = (cuda_problem() if t.device == "cuda" else None) or no_flavour(t)
                    else:
                        t.skip = unavailable(t, dep)
                    out.append(t)
    return out


def no_flavour(t: Target) -> str:
    """Why a target of a flavour the run has no deployment for is skipped, and how to get one."""
    return (f"no {t.ops} deployment in this run: benchmark a checkpoint or --random-* (both flavours are exported "
            f"from the same weights), or a deployment exported with hrm-export --ops {t.ops}")


# ---- availability ------------------------------------------------------------------------------------

_CACHE: dict[str, Any] = {}


def _cached(key: str, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def cuda_problem() -> str | None:
    """None when a CUDA GPU is usable here, else why not (torch when installed; else the CUDA runtime, so a
    torch-free install can still benchmark ORT / TensorRT on its GPU)."""
    def probe() -> str | None:
        if importlib.util.find_spec("torch") is not None:
            import torch

            if not torch.cuda.is_available():
                build = "a CPU-only torch build" if torch.version.cuda is None else f"torch CUDA {torch.version.cuda}"
                return f"no CUDA device ({build}, torch.cuda.is_available() is False)"
            return None
        try:
            from hrm.runtime.gpu import device_count

            n = device_count()
        except Exception as exc:  # no libcudart / driver
            return f"no CUDA runtime or driver here ({type(exc).__name__}: {exc})"
        return None if n > 0 else "no CUDA device (cudaGetDeviceCount() = 0)"
    return _cached("cuda", probe)


def ort_cuda_problem() -> str | None:
    def probe() -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                    f"(providers: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
        return None
    return _cached("ort-cuda", probe)


def trt_problem() -> str | None:
    def probe() -> str | None:
        if not any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx")):
            return "TensorRT is not importable (pip install tensorrt, or tensorrt-rtx)"
        return None
    return _cached("trt", probe)


def compile_problem(device: str) -> str | None:
    def probe() -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        if device == "cpu":
            import shutil

            if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
                return "torch.compile (inductor) on CPU needs a C++ compiler (none on PATH)"
        elif importlib.util.find_spec("triton") is None:
            return "torch.compile (inductor) on CUDA needs triton"
        return None
    return _cached(f"compile-{device}", probe)


def unavailable(t: Target, deployment: Any) -> str | None:
    """Why ``t`` cannot run here with this deployment, or None."""
    if t.precision not in deployment.precisions:
        return (f"the deployment has no {t.precision} variant (has {', '.join(deployment.precisions)}); "
                f"export it with --precisions {t.precision}")
    if t.precision in QUANTIZED and not (t.backend == "ort" and t.device == "cpu"):
        return (f"{t.precision} is ONNX Runtime's dynamic quantization, an ort-on-CPU path only "
                "(no PyTorch twin, no TensorRT engines)")
    if t.device == "cuda" and (p := cuda_problem()):
        return p
    if t.backend == "ort":
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install 'hrm-deploy[ort]')"
        if t.device == "cuda" and (p := ort_cuda_problem()):
            return p
        if t.options.get("fused") and "segment" not in deployment.variant(t.precision).graphs:
            return "the deployment has no fused 'segment' graph (export with --segment)"
    if t.backend == "trt":
        if t.device != "cuda":
            return "TensorRT runs on CUDA only"
        if p := trt_problem():
            return p
        if (ops := getattr(deployment.variant(t.precision), "ops", STANDARD)) != STANDARD:
            return f"TensorRT engines are built from standard graphs only (this deployment's are {ops})"
        var = deployment.variant(t.precision)
        missing = [k for k in var.files if k != "segment" and k not in var.engines]
        if missing:
            return (f"the deployment has no TensorRT engines for {t.precision} ({', '.join(missing)}); "
                    "export with --engine, or pass --build-engines")
    if t.backend == "torch":
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install 'hrm-deploy[train]')"
        if t.fast and t.fast.get("compile") and (p := compile_problem(t.device)):
            return p
        if t.device == "cpu" and t.precision == "fp16":
            return "PyTorch fp16 matmuls on CPU are emulated (not a meaningful reference); use fp32 or bf16"
    return None
