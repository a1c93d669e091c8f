"""The configurations a benchmark compares, and why one cannot run here.

A :class:`Target` is one (runtime backend, device, options, precision) combination, named
``<kind>-<device>[-fused][-graph]/<precision>``, e.g. ``ort-cpu/fp32``, ``ort-cuda-graph/fp16``,
``trt-cuda-graph/fp16``, ``torch-eager-cpu/fp32``, ``torch-compile-cuda-graph/bf16``:

=========================  =========================================================================
``ort-<dev>``              ONNX Runtime, the four step graphs through IO binding (``hrm.runtime`` as is)
``ort-<dev>-fused``        ONNX Runtime, the fused ``segment`` graph (one run per segment; needs an
                           export with the segment graph)
``ort-cuda-graph``         ONNX Runtime CUDA EP with ``enable_cuda_graph`` on the step graphs
``ort-cuda-fused-graph``   the same on the fused ``segment`` graph (one graph replay per segment)
``ort-<dev>-contrib[-fused|-graph|-fused-graph]``  the same on the ``ort-contrib`` graphs (ONNX Runtime's fused
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

ORT and TensorRT targets run graphs of one op set (``Target.ops``: ``standard`` or ``ort-contrib``,
the manifest's per-variant ``ops``); :func:`plan` takes one deployment per op set and skips a target
whose op set has none, saying how to get it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from hrm.manifest import DEVICES, GRAPH_OPS, ORT_CONTRIB, STANDARD, STEP_GRAPHS, run_refusal
from hrm.runtime.backends.options import BackendOptions, options_for

#: --backends names -> the target kinds they expand to
BACKEND_CHOICES = ("ort", "trt", "torch", "torch-compile")


@dataclass(frozen=True)
class Kind:
    """One row of the target table: a --backends entry expands to the kinds whose ``group`` it names."""

    name: str  # ort | ort-fused | ort-graph | ... (the label without the device)
    group: str  # the --backends entry: ort | trt | torch | torch-compile
    backend: str  # runtime backend: ort | trt | torch
    devices: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # fields of the backend's options object
    ops: str | None = None  # graph ops an ort / trt kind runs; None: any (the torch references)
    fast: bool = False  # torch: hrm.bench.torch_fast.TorchFastBackend, not the runtime's TorchBackend


#: Every configuration, in report order. Adding a target is adding a row.
KINDS: tuple[Kind, ...] = (
    Kind("ort", "ort", "ort", DEVICES, ops=STANDARD),
    Kind("ort-fused", "ort", "ort", DEVICES, {"fused": True}, ops=STANDARD),
    Kind("ort-graph", "ort", "ort", ("cuda",), {"cuda_graph": True}, ops=STANDARD),
    Kind("ort-fused-graph", "ort", "ort", ("cuda",), {"fused": True, "cuda_graph": True}, ops=STANDARD),
    Kind("ort-contrib", "ort", "ort", DEVICES, ops=ORT_CONTRIB),
    Kind("ort-contrib-fused", "ort", "ort", DEVICES, {"fused": True}, ops=ORT_CONTRIB),
    Kind("ort-contrib-graph", "ort", "ort", ("cuda",), {"cuda_graph": True}, ops=ORT_CONTRIB),
    Kind("ort-contrib-fused-graph", "ort", "ort", ("cuda",), {"fused": True, "cuda_graph": True}, ops=ORT_CONTRIB),
    Kind("trt", "trt", "trt", DEVICES, {"cuda_graph": False}, ops=STANDARD),
    Kind("trt-graph", "trt", "trt", ("cuda",), {"cuda_graph": True}, ops=STANDARD),
    Kind("torch-eager", "torch", "torch", DEVICES),
    Kind("torch-eager-graph", "torch", "torch", ("cuda",), {"cuda_graph": True, "compile": False}, fast=True),
    Kind("torch-compile", "torch-compile", "torch", ("cpu",), {"compile": True, "cuda_graph": False}, fast=True),
    Kind("torch-compile-graph", "torch-compile", "torch", ("cuda",), {"compile": True, "cuda_graph": True}, fast=True),
)
KIND = {k.name: k for k in KINDS}


@dataclass
class Target:
    """One configuration to measure."""

    kind: str  # a KINDS name
    backend: str  # runtime backend: ort | trt | torch
    device: str
    precision: str
    options: BackendOptions  # resolved for the device
    skip: str | None = None
    ops: str | None = None  # graph ops an ort / trt target runs; None: any (the torch references)
    fast: bool = False  # runs hrm.bench.torch_fast.TorchFastBackend

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
                "options": self.options.describe(), **({"ops": self.ops} if self.ops else {})}

    def session(self, deployment: Any, *, halting: Any = None, checkpoint: Any = None) -> Any:
        """A (not yet active) ``Session`` running this target on ``deployment``: a runtime backend by name, or
        for the torch-fast kinds a loader of :class:`~hrm.bench.torch_fast.TorchFastBackend` (Session's door
        for a backend it cannot name). ``checkpoint``: the torch targets' weights."""
        from hrm.runtime import Session

        options = self.options
        if checkpoint is not None and hasattr(options, "checkpoint"):
            options = replace(options, checkpoint=checkpoint)
        if not self.fast:
            return Session(deployment, self.backend, self.device, self.precision, batch=1, halting=halting,
                           options=options)
        from hrm.bench.torch_fast import TorchFastBackend

        return Session(deployment, lambda: TorchFastBackend(deployment, self.precision, self.device, options), batch=1,
                       halting=halting)


def kinds_for(backend: str, device: str, ops: Sequence[str] = GRAPH_OPS) -> list[str]:
    """Target kinds one ``--backends`` entry expands to on ``device``; ``ops``: the graph op sets whose
    ORT targets to include (TensorRT targets are always ``standard``)."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKEND_CHOICES)}")
    return [k.name for k in KINDS if k.group == backend and device in k.devices
            and (k.backend != "ort" or k.ops in ops)]


def make_target(kind: str, device: str, precision: str, threads: int | None = None) -> Target:
    """The target of table row ``kind`` on ``device``; ``threads`` go to ORT (CPU only, by OrtOptions' rule)."""
    k = KIND[kind]
    values = dict(k.options)
    if k.backend == "ort" and threads:
        values["threads"] = threads
    if k.fast:
        from hrm.bench.torch_fast import TorchFastOptions

        options: BackendOptions = TorchFastOptions(**values)
    else:
        options = options_for(k.backend, **values).for_device(device)
    return Target(kind, k.backend, device, precision, options, ops=k.ops, fast=k.fast)


def deployment_ops(deployment: Any) -> str:
    """The graph ops of a deployment (its variants'; older manifests and stubs: ``standard``)."""
    found = {getattr(deployment.variant(p), "ops", STANDARD) for p in deployment.precisions}
    return found.pop() if len(found) == 1 else STANDARD


def plan(deployment: Any, devices: Sequence[str], backends: Sequence[str], precisions: Sequence[str],
         threads: int | None = None, ops: Sequence[str] = GRAPH_OPS,
         ops_deployments: Mapping[str, Any] | None = None) -> list[Target]:
    """Every (device, backend kind, precision) asked for, in report order, with skip reasons filled in.

    ``ops_deployments`` maps a graph op set to the deployment holding it (default: ``deployment`` under
    its own ops); ``ops`` limits which op sets' ORT targets are listed."""
    by_ops = dict(ops_deployments) if ops_deployments is not None else {deployment_ops(deployment): deployment}
    out: list[Target] = []
    for device in devices:
        for backend in backends:
            for kind in kinds_for(backend, device, ops):
                for precision in precisions:
                    t = make_target(kind, device, precision, threads)
                    dep = deployment if t.ops is None else by_ops.get(t.ops)
                    if dep is None:  # a missing GPU is the more basic reason
                        t.skip = (cuda_problem() if t.device == "cuda" else None) or no_ops_deployment(t)
                    else:
                        t.skip = unavailable(t, dep)
                    out.append(t)
    return out


def no_ops_deployment(t: Target) -> str:
    """Why a target of graph ops the run has no deployment for is skipped, and how to get one."""
    return (f"no {t.ops} deployment in this run: benchmark a checkpoint or --random-* (both op sets are exported "
            f"from the same weights), or a deployment exported with hrm-export --ops {t.ops}")


# ---- availability ------------------------------------------------------------------------------------

_CACHE: dict[str, Any] = {}


def _cached(key: str, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def cuda_problem() -> str | None:
    """None when a CUDA GPU is usable here, else why not (:func:`hrm.runtime.gpu.probe`, the one definition;
    whether torch itself can use it is the torch targets' own question, see :func:`unavailable`)."""
    def gpu() -> str | None:
        from hrm.runtime.gpu import probe

        info = probe()
        return None if info.available else info.reason
    return _cached("cuda", gpu)


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


def torch_cuda_problem() -> str | None:
    """The GPU is there (:func:`cuda_problem`); can this torch build use it?"""
    def probe() -> str | None:
        import torch

        if torch.cuda.is_available():
            return None
        build = "a CPU-only torch build" if torch.version.cuda is None else f"torch CUDA {torch.version.cuda}"
        return f"torch cannot use the GPU ({build}, torch.cuda.is_available() is False)"
    return _cached("torch-cuda", probe)


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
    """Why ``t`` cannot run here with this deployment, or None: the manifest's rule for the pair first
    (:func:`hrm.manifest.run_refusal`), then this machine, then what the deployment lacks."""
    if t.precision not in deployment.precisions:
        return (f"the deployment has no {t.precision} variant (has {', '.join(deployment.precisions)}); "
                f"export it with --precisions {t.precision}")
    variant = deployment.variant(t.precision)
    if why := run_refusal(t.precision, getattr(variant, "ops", STANDARD), t.backend, t.device):
        return why
    if t.device == "cuda" and (p := cuda_problem()):
        return p
    if getattr(t.options, "fused", False) and "segment" not in variant.graphs:
        return "the deployment has no fused 'segment' graph (export with --segment)"
    if t.backend == "ort":
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install 'hrm-deploy[ort]')"
        if t.device == "cuda" and (p := ort_cuda_problem()):
            return p
    if t.backend == "trt":
        if p := trt_problem():
            return p
        missing = [k for k in STEP_GRAPHS if k in variant.files and k not in variant.engines]
        if missing:
            return (f"the deployment has no TensorRT engines for {t.precision} ({', '.join(missing)}); "
                    "export with --engine, or pass --build-engines")
    if t.backend == "torch":
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install 'hrm-deploy[train]')"
        if t.device == "cuda" and (p := torch_cuda_problem()):
            return p
        if getattr(t.options, "compile", False) and (p := compile_problem(t.device)):
            return p
        if t.device == "cpu" and t.precision == "fp16":
            return "PyTorch fp16 matmuls on CPU are emulated (not a meaningful reference); use fp32 or bf16"
    return None
