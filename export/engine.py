"""TensorRT engines from the exported ONNX graphs (building only; running them is the runtime's job).

Both flavours share one code path: ``tensorrt`` (10.3+, JetPack 6 and datacenter GPUs) and
``tensorrt_rtx`` (TensorRT for RTX: builds without a GPU, for SM75-SM121 consumer GPUs; it has no
SM90, so H100 deployments need ``tensorrt``). The TensorRT Python API is used directly rather than
Polygraphy's loaders because Polygraphy picks the flavour from a process-wide environment variable
read at import (``POLYGRAPHY_USE_TENSORRT_RTX``), while here the flavour is a per-call choice
(``EngineOptions.flavour``, env ``HRM_TRT_FLAVOUR``); the build itself is ~30 lines either way.

Networks are strongly typed (every tensor keeps the dtype the ONNX graph gives it, so the fp32 RMSNorm
statistics and RoPE survive), with one optimisation profile over the batch dimension and an optional
timing cache that is read before and written back after each build. What TensorRT-RTX does differently
is looked up in :mod:`hrm.runtime.trt_lib` (the flavour table); the import, its version gate and the one
logger live there too, shared with the ``trt`` backend.

Build choices the manifest records per engine (``options``):

* ``tf32: false`` for fp32 variants. TensorRT enables TF32 by default, which rounds fp32 matmul inputs to
  10-bit mantissas; an fp32 engine is the reference the parity gate compares (100% equal answers), so the
  flag is cleared. fp16/bf16 graphs have no fp32 matmuls for it to touch.
* The timing cache is loaded strictly (``set_timing_cache(cache, ignore_mismatch=False)``): a cache made
  on another GPU or TensorRT would feed wrong timings silently. When TensorRT refuses it the build starts
  from an empty cache, logs why, records ``timing_cache_note`` and writes the new cache over the old file.
* TensorRT-RTX: ``REQUIRE_USER_ALLOCATION`` (the backend hands every context its memory, and TensorRT-RTX
  then guarantees the enqueue is graph-capturable); the compute capabilities recorded are the real ones:
  the explicit targets, the flavour's default targets (8.6, 8.9, 12.0) when none are given, and for
  ``current`` the capability of the GPU read through :mod:`hrm.runtime.gpu`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hrm.errors import ExportError
from hrm.io import atomic_path, sha256_file, write_bytes_atomic
from hrm.manifest import ORT_CONTRIB, STANDARD, EngineEntry
from hrm.runtime.trt_lib import TensorRT, logger
from hrm.runtime.trt_lib import import_tensorrt as _import_tensorrt

_log = logging.getLogger("hrm.export.engine")


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


def import_tensorrt(flavour: str = "auto") -> TensorRT:
    """The requested flavour, version-gated; :class:`ExportError` with the install hint when unusable."""
    return _import_tensorrt(flavour, error=lambda msg: ExportError(f"--engine: {msg}"))


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


def parse_onnx(trt: TensorRT, onnx_path: Path) -> tuple[Any, Any, Any]:
    """Parse into a strongly typed network; :class:`ExportError` carrying the parser's own messages."""
    m = trt.module
    log = logger(trt)
    builder = m.Builder(log)
    network = builder.create_network(1 << int(m.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = m.OnnxParser(network, log)
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
    if not trt.traits.targets:
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
    """(device, compute_capability) as the manifest records them: the capabilities the engine really
    runs on, read through :mod:`hrm.runtime.gpu` (never guessed: the engine check refuses "unknown")."""
    from hrm.runtime.gpu import probe

    gpu = probe()
    here = gpu.compute_capability if gpu.available else None
    device = gpu.name if gpu.available else None
    if not trt.traits.targets:  # tensorrt: built for the GPU it ran on
        if here is None:
            _log.warning("engine built, but this GPU's compute capability is not readable (%s); it is recorded as "
                         "'unknown' and the runtime will refuse the engine until it is rebuilt", gpu.reason)
        return device or "unknown", here or "unknown"
    targets = list(options.compute_capabilities) or list(trt.traits.default_targets)
    if any(t.lower() == "current" for t in targets):
        if here is None:
            raise ExportError(f"compute capability 'current' needs a readable GPU here ({gpu.reason}); "
                              f"name the targets instead, e.g. --compute-capability 8.9")
        targets = [here if t.lower() == "current" else t for t in targets]
    targets = [t if "." in t else f"{t[:-1]}.{t[-1]}" for t in (t.upper().replace("SM", "") for t in targets)]
    return device or "none (built without GPU)", ",".join(dict.fromkeys(targets))


def _tf32(trt: TensorRT, config: Any, network: Any) -> dict[str, Any]:
    """Clear TF32 for an fp32 network (no half-precision tensor among its inputs and outputs)."""
    m = trt.module
    half = {m.DataType.HALF, getattr(m.DataType, "BF16", m.DataType.HALF)}
    io = [network.get_input(i) for i in range(network.num_inputs)] + \
         [network.get_output(i) for i in range(network.num_outputs)]
    if any(t.dtype in half for t in io):
        return {}
    flag = getattr(m.BuilderFlag, "TF32", None)
    if flag is None:
        return {"tf32": False}
    config.clear_flag(flag)
    return {"tf32": bool(config.get_flag(flag))}


def build_engine(trt: TensorRT, onnx_path: Path, engine_path: Path, options: EngineOptions,
                 root: Path | None = None) -> tuple[EngineEntry, float]:
    """Parse, configure, build and atomically write one engine; returns its manifest entry and build seconds."""
    start = time.time()
    require_standard_graph(onnx_path)
    log = logger(trt)
    mark = log.count
    builder, network, _parser = parse_onnx(trt, onnx_path)
    config = builder.create_builder_config()
    config.add_optimization_profile(_profile(builder, network, options))
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = options.builder_optimization_level
    if options.workspace_bytes:
        config.set_memory_pool_limit(trt.module.MemoryPoolType.WORKSPACE, options.workspace_bytes)
    _compute_capabilities(trt, config, options.compute_capabilities)
    recorded: dict[str, Any] = {"strongly_typed": True, **_tf32(trt, config, network)}
    if trt.traits.runtime_config:
        config.set_flag(trt.module.BuilderFlag.REQUIRE_USER_ALLOCATION)
        recorded["require_user_allocation"] = True
    use_cache = options.timing_cache is not None and trt.traits.timing_cache
    cache = None
    if use_cache:
        cache, note = load_timing_cache(config, options.timing_cache)
        recorded.update({"timing_cache_note": note} if note else {})
    elif options.timing_cache is not None:
        recorded["timing_cache_note"] = f"not used: {trt.flavour} has no timing cache"
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        why = "; ".join(log.errors_since(mark)[-3:]) or "no error message"
        raise ExportError(f"{onnx_path}: {trt.flavour} {trt.version} failed to build an engine (batch profile "
                          f"{options.min_batch}/{options.opt_batch}/{options.max_batch}): {why}")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if cache is not None:
        updated = config.get_timing_cache() or cache
        write_bytes_atomic(options.timing_cache, bytes(updated.serialize()))
    seconds = time.time() - start
    device, cc = device_info(trt, options)
    rel = str(engine_path.relative_to(root)) if root is not None else str(engine_path)
    entry = EngineEntry(kind=onnx_path.stem, file=rel, sha256=sha256_file(engine_path), flavour=trt.flavour,
                        trt_version=trt.version, device=device, compute_capability=cc,
                        options={**options.record(), **recorded, "build_seconds": round(seconds, 3)})
    return entry, seconds


def load_timing_cache(config: Any, path: Path | None) -> tuple[Any, str | None]:
    """Attach the cache file's content (empty when new) strictly; a cache TensorRT refuses (another GPU or
    TensorRT build) is replaced by an empty one. Returns (cache, note saying what happened or None)."""
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        return cache, None
    why = (f"{path}: timing cache refused by TensorRT (made on another GPU or TensorRT version, or damaged); "
           "started from an empty cache, which replaces it after this build")
    _log.warning(why)
    cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, False):
        raise ExportError(f"{path}: TensorRT refused even an empty timing cache; build without --timing-cache")
    return cache, why
