"""TensorRT engines from the exported ONNX graphs (building only; running them is the runtime's job).

Both flavours share one code path: ``tensorrt`` (10.3+, JetPack 6 and datacenter GPUs) and
``tensorrt_rtx`` (TensorRT for RTX: builds without a GPU, for SM75-SM121 consumer GPUs; it has no
SM90, so H100 deployments need ``tensorrt``). The TensorRT Python API is used directly rather than
Polygraphy's loaders because Polygraphy picks the flavour from a process-wide environment variable
read at import (``POLYGRAPHY_USE_TENSORRT_RTX``), while here the flavour is a per-call choice
(``EngineOptions.flavour``, env ``HRM_TRT_FLAVOUR``); the build itself is ~30 lines either way.

Networks are strongly typed (every tensor keeps the dtype the ONNX graph gives it, so the fp32 RMSNorm
statistics and RoPE survive), with one optimisation profile over the batch dimension and an optional
timing cache that is read before and written back after each build.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hrm.errors import ExportError
from hrm.io import atomic_path, sha256_file, write_bytes_atomic
from hrm.manifest import ORT_CONTRIB, STANDARD, EngineEntry

_log = logging.getLogger("hrm.export.engine")
FLAVOURS = ("tensorrt", "tensorrt_rtx")
INSTALL_HINT = ("--engine needs TensorRT: pip install 'hrm-deploy[trt-check]' (TensorRT-RTX, builds without a GPU) "
                "or pip install tensorrt (TensorRT 10.3+, needs an NVIDIA GPU)")


@dataclass
class EngineOptions:
    """How to build engines. ``flavour``: ``auto`` (tensorrt if importable, else tensorrt_rtx; env
    ``HRM_TRT_FLAVOUR`` overrides), ``tensorrt`` or ``tensorrt_rtx``. ``compute_capabilities``: RTX
    targets such as ``("8.9", "12.0")`` or ``("current",)``; empty = TensorRT-RTX's default."""

    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 64
    timing_cache: Path | None = None
    builder_optimization_level: int | None = None
    flavour: str = "auto"
    compute_capabilities: tuple[str, ...] = ()
    workspace_bytes: int | None = None
    graphs: tuple[str, ...] | None = None  # graph kinds to build; None = every graph of the variant

    def validate(self) -> "EngineOptions":
        if not (1 <= self.min_batch <= self.opt_batch <= self.max_batch):
            raise ExportError(f"batch profile must satisfy 1 <= --min-batch ({self.min_batch}) <= --opt-batch "
                              f"({self.opt_batch}) <= --max-batch ({self.max_batch})")
        level = self.builder_optimization_level
        if level is not None and not 0 <= level <= 5:
            raise ExportError(f"--builder-optimization-level must be 0..5, got {level}")
        return self

    def record(self) -> dict[str, Any]:
        """The build options as the manifest records them."""
        out = asdict(self)
        out["timing_cache"] = str(self.timing_cache) if self.timing_cache else None
        out["compute_capabilities"] = list(self.compute_capabilities)
        out.pop("graphs")
        return out


@dataclass
class TensorRT:
    """An imported TensorRT flavour."""

    flavour: str
    module: ModuleType

    @property
    def version(self) -> str:
        return str(self.module.__version__)


def import_tensorrt(flavour: str = "auto") -> TensorRT:
    """Import the requested flavour; :class:`ExportError` with the install hint when none is importable."""
    flavour = os.environ.get("HRM_TRT_FLAVOUR", flavour) if flavour == "auto" else flavour
    order = FLAVOURS if flavour == "auto" else (flavour,)
    if any(f not in FLAVOURS for f in order):
        raise ExportError(f"unknown TensorRT flavour {flavour!r}; expected auto, tensorrt or tensorrt_rtx")
    for name in order:
        try:
            module = __import__(name)
        except ImportError:
            continue
        return TensorRT(name, module)
    if flavour == "auto":
        raise ExportError(INSTALL_HINT)
    raise ExportError(f"--engine with flavour {flavour}: module '{flavour}' is not importable. " + INSTALL_HINT[len("--engine needs TensorRT: "):])


def make_logger(trt: TensorRT) -> Any:
    """A TensorRT logger that keeps messages (for error reports) and forwards them to ``logging``.

    TensorRT's stock logger prints to stdout, which would corrupt ``hrm-export --json``; and TensorRT-RTX
    on a machine without a GPU logs harmless CUDA-driver errors on every build.
    """
    m = trt.module

    class _Logger(m.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            m.ILogger.__init__(self)
            self.messages: list[tuple[Any, str]] = []

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append((severity, msg))
            level = {m.ILogger.INTERNAL_ERROR: logging.ERROR, m.ILogger.ERROR: logging.ERROR,
                     m.ILogger.WARNING: logging.WARNING}.get(severity, logging.DEBUG)
            _log.log(level, "%s: %s", trt.flavour, msg)

        def errors(self) -> list[str]:
            return [msg for sev, msg in self.messages if sev in (m.ILogger.INTERNAL_ERROR, m.ILogger.ERROR)
                    and "CUDA driver version is insufficient" not in msg and "no CUDA-capable device" not in msg]

    return _Logger()


#: Why TensorRT gets standard graphs only (shared by every refusal below).
_WHY_STANDARD = ("ONNX Runtime's com.microsoft ops are implemented as exported by ONNX Runtime only (TensorRT-RTX "
                 "1.7.1's parser imports some of them but fails on RotaryEmbedding's 1-D position_ids; other "
                 "TensorRT versions are untested). Export --ops standard for TensorRT engines and a separate "
                 f"--ops {ORT_CONTRIB} deployment for ONNX Runtime.")


def require_standard_graph(onnx_path: Path) -> None:
    """Refuse a graph that uses ops outside the standard ONNX domain, before TensorRT sees it."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    foreign = sorted({f"{n.domain}.{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ExportError(f"{onnx_path}: TensorRT engines are built from --ops standard graphs only; this graph has "
                          f"ops outside the standard ONNX domain ({', '.join(foreign)}). " + _WHY_STANDARD)
    dynamic = sorted({n.op_type for n in model.graph.node if n.op_type in DYNAMIC_QUANT_OPS})
    if dynamic:
        raise ExportError(f"{onnx_path}: " + int8_refusal(f"this graph has {', '.join(dynamic)}"))


#: ONNX Runtime's dynamic-quantization ops (the int8 variant); TensorRT's int8 is Q/DQ with calibration.
DYNAMIC_QUANT_OPS = ("DynamicQuantizeLinear", "MatMulInteger")


def int8_refusal(what: str) -> str:
    """Why the int8 variant gets no TensorRT engine: the manifest's rule (:func:`hrm.manifest.run_refusal`)."""
    from hrm.manifest import run_refusal

    why = run_refusal("int8", STANDARD, "trt", "cuda")
    return f"TensorRT engines are not built for the int8 variant ({what}): {why}"


def parse_onnx(trt: TensorRT, onnx_path: Path, logger: Any = None) -> tuple[Any, Any, Any]:
    """Parse into a strongly typed network; :class:`ExportError` carrying the parser's own messages."""
    m = trt.module
    logger = logger or make_logger(trt)
    builder = m.Builder(logger)
    network = builder.create_network(1 << int(m.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = m.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{onnx_path}: {trt.flavour} {trt.version} ONNX parser failed: {errors}")
    return builder, network, parser


def _profile(builder: Any, network: Any, options: EngineOptions) -> Any:
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        dims = [[options.min_batch if d == -1 else d for d in shape],
                [options.opt_batch if d == -1 else d for d in shape],
                [options.max_batch if d == -1 else d for d in shape]]
        profile.set_shape(tensor.name, *dims)
    return profile


def _compute_capabilities(trt: TensorRT, config: Any, targets: tuple[str, ...]) -> None:
    if not targets:
        return
    if trt.flavour != "tensorrt_rtx":
        raise ExportError("compute-capability targets are a TensorRT-RTX option; tensorrt builds for the GPU it runs on")
    cc = trt.module.ComputeCapability
    config.num_compute_capabilities = len(targets)
    for i, target in enumerate(targets):
        name = "CURRENT" if target.lower() == "current" else "SM" + target.upper().replace("SM", "").replace(".", "")
        if not hasattr(cc, name):
            known = [n for n in dir(cc) if n.startswith("SM")]
            raise ExportError(f"compute capability {target!r} is not a TensorRT-RTX target; known: {known} or 'current'")
        config.set_compute_capability(getattr(cc, name), i)


def device_info(trt: TensorRT, options: EngineOptions) -> tuple[str, str]:
    """(device, compute_capability) as the manifest records them: what is true for this build."""
    name, cc = _cuda_device()
    if trt.flavour == "tensorrt_rtx":
        targets = ",".join(options.compute_capabilities) if options.compute_capabilities else "TensorRT-RTX default targets"
        return (name or "none (built without GPU)"), targets
    return (name or "unknown"), (cc or "unknown")


def _cuda_device() -> tuple[str | None, str | None]:
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - torch is optional here
        pass
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20).stdout.strip().splitlines()
            if out:
                name, cap = (s.strip() for s in out[0].split(","))
                return name, cap
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return None, None


def build_engine(trt: TensorRT, onnx_path: Path, engine_path: Path, options: EngineOptions,
                 root: Path | None = None) -> tuple[EngineEntry, float]:
    """Parse, configure, build and atomically write one engine; returns its manifest entry and build seconds."""
    start = time.time()
    require_standard_graph(onnx_path)
    logger = make_logger(trt)
    builder, network, _parser = parse_onnx(trt, onnx_path, logger)
    config = builder.create_builder_config()
    config.add_optimization_profile(_profile(builder, network, options))
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = options.builder_optimization_level
    if options.workspace_bytes:
        config.set_memory_pool_limit(trt.module.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    _compute_capabilities(trt, config, options.compute_capabilities)
    # TensorRT-RTX compiles kernels at run time; its timing-cache calls are deprecated no-ops (1.2+).
    use_cache = options.timing_cache is not None and trt.flavour == "tensorrt"
    cache = _load_timing_cache(config, options.timing_cache) if use_cache else None
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        why = "; ".join(logger.errors()[-3:]) or "no error message"
        raise ExportError(f"{onnx_path}: {trt.flavour} {trt.version} failed to build an engine (batch profile "
                          f"{options.min_batch}/{options.opt_batch}/{options.max_batch}): {why}")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if use_cache and cache is not None:
        updated = config.get_timing_cache() or cache
        write_bytes_atomic(options.timing_cache, bytes(updated.serialize()))
    seconds = time.time() - start
    device, cc = device_info(trt, options)
    rel = str(engine_path.relative_to(root)) if root is not None else str(engine_path)
    entry = EngineEntry(kind=onnx_path.stem, file=rel, sha256=sha256_file(engine_path), flavour=trt.flavour,
                        trt_version=trt.version, device=device, compute_capability=cc,
                        options={**options.record(), "strongly_typed": True, "build_seconds": round(seconds, 3),
                                 **({"timing_cache_note": "not used: TensorRT-RTX has no timing cache"}
                                    if options.timing_cache is not None and not use_cache else {})})
    return entry, seconds


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    """Start from the cache file's content (empty when new) so repeated exports skip tactic timing."""
    data = b""
    if path is not None and Path(path).is_file():
        data = Path(path).read_bytes()
    cache = config.create_timing_cache(data)
    if cache is not None:
        config.set_timing_cache(cache, ignore_mismatch=True)
    return cache
