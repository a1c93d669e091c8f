"""Per-backend options as value objects, like ONNX Runtime's ``SessionOptions`` or Polygraphy's runner arguments.

Each backend has one frozen options class, validated when it is made and handed whole to ``Session`` and
to the backend (``Session(dep, backend="ort", options=OrtOptions(threads=2, fused=True))``). What depends
on the device is resolved once, in :meth:`BackendOptions.for_device` (the backend calls it): the rules
that used to be restated by every command that assembled a keyword dict live there and nowhere else.
``describe()`` is the JSON-able record reports carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from hrm.errors import HRMError

#: ONNX Runtime graph optimisation levels (``GraphOptimizationLevel``: ORT_ENABLE_ALL / _BASIC / ORT_DISABLE_ALL).
ORT_OPTIMIZATION = ("all", "basic", "none")


class OptionsError(HRMError, ValueError):
    """A backend option that does not exist for that backend, or a value out of range (``option``: its name)."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class BackendOptions:
    """Base of the per-backend options; ``backend`` is the registry name the class belongs to."""

    backend: ClassVar[str] = "?"

    def for_device(self, device: str) -> "BackendOptions":
        """These options as they apply on ``device`` (device-dependent defaults filled in, misfits refused)."""
        return self

    def describe(self) -> dict[str, Any]:
        """Every field, JSON-able (paths as strings), for reports."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.repr}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class OrtOptions(BackendOptions):
    """ONNX Runtime (:class:`hrm.runtime.backends.ort.OrtBackend`).

    ``threads``: intra-op threads of each InferenceSession, CPU only (on CUDA the work is on the GPU, so
    it is dropped there). ``spin``: let idle pool threads spin; None = only where one session does a
    segment's work (``fused``) or the work is on the GPU: the step graphs are four sessions run one after
    the other, and their idle pools spinning on the running one's cores made a 2-core segment 2.2x slower
    (229 ms vs 99 ms fused, full size). ``fused``: run the fused ``segment`` graph (export with
    ``--segment``). ``cuda_graph``: ORT CUDA graphs on the step sessions (CUDA only). ``tf32``: off so
    fp32 parity holds. ``strict_norm``: ``ort-contrib`` graphs on CUDA keep fp32 RMSNorm statistics.
    ``optimization``: :data:`ORT_OPTIMIZATION`. ``device_id``: the CUDA device.
    """

    backend: ClassVar[str] = "ort"
    threads: int | None = None
    spin: bool | None = None
    fused: bool = False
    cuda_graph: bool = False
    tf32: bool = False
    strict_norm: bool = True
    optimization: str = "all"
    device_id: int = 0

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) < 1):
            raise OptionsError(f"ort option threads must be >= 1, got {self.threads!r}")
        if self.optimization not in ORT_OPTIMIZATION:
            raise OptionsError(f"ort option optimization must be one of {ORT_OPTIMIZATION}, got {self.optimization!r}")
        if int(self.device_id) < 0:
            raise OptionsError(f"ort option device_id must be >= 0, got {self.device_id!r}")

    def for_device(self, device: str) -> "OrtOptions":
        if self.cuda_graph and device != "cuda":
            raise OptionsError("ort option cuda_graph needs device 'cuda'")
        return replace(self, threads=self.threads if device == "cpu" else None,
                       spin=self.spin if self.spin is not None else (device == "cuda" or self.fused))


@dataclass(frozen=True)
class TrtOptions(BackendOptions):
    """TensorRT (:class:`hrm.runtime.backends.trt.TrtBackend`): ``cuda_graph`` (one CUDA graph per
    segment), ``check`` (compare the engines' build records with this machine first), ``fused``."""

    backend: ClassVar[str] = "trt"
    cuda_graph: bool = True
    check: bool = True
    fused: bool = False


@dataclass(frozen=True)
class TorchOptions(BackendOptions):
    """The PyTorch reference (:class:`hrm.runtime.backends.torch_ref.TorchBackend`): weights from
    ``checkpoint`` (not hash-checked: you asked for it), a ready ``model``, or by default the
    manifest's source checkpoint (sha-checked)."""

    backend: ClassVar[str] = "torch"
    checkpoint: str | Path | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": None if self.model is None else type(self.model).__name__}


#: registry name -> options class (the backends' own registry is :data:`hrm.runtime.backends.BACKENDS`)
OPTIONS: dict[str, type[BackendOptions]] = {"ort": OrtOptions, "trt": TrtOptions, "torch": TorchOptions}


def options_for(backend: str, options: BackendOptions | None = None, **values: Any) -> BackendOptions:
    """``options`` checked to belong to ``backend``, or that backend's options built from ``values``
    (an option it lacks is refused naming the backends that have it)."""
    cls = OPTIONS.get(backend)
    if cls is None:
        raise OptionsError(f"unknown backend {backend!r}; expected one of {sorted(OPTIONS)}")
    if options is not None:
        if values:
            raise OptionsError("pass backend options either as an options object or as values, not both")
        if not isinstance(options, cls):
            raise OptionsError(f"the {backend} backend takes {cls.__name__}, got {type(options).__name__}")
        return options
    for name in values:
        if name not in cls.names():
            others = [b for b, c in OPTIONS.items() if name in c.names()]
            raise OptionsError(f"the {backend} backend has no {name.replace('_', '-')} option"
                               + (f" ({', '.join(others)} {'has' if len(others) == 1 else 'have'} it)" if others else ""),
                               option=name)
    return cls(**values)


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
