"""The TensorRT library as both the exporter and the ``trt`` backend see it: which flavour, which version,
one logger, and every place where TensorRT-RTX differs from TensorRT (torch-free).

Two flavours share one code path: ``tensorrt`` (10.3+, JetPack 6.1/6.2 and datacenter GPUs; 11.x) and
``tensorrt_rtx`` (TensorRT for RTX: builds without a GPU, JIT-compiles kernels on the device, consumer GPUs
only). Code elsewhere asks a :class:`Flavour` (the traits below) instead of comparing flavour names, so
the differences live in this one table.

Why a minimum version: JetPack 6.0 ships TensorRT 8.6, which has no strongly typed networks (our fp32
RMSNorm statistics inside fp16 graphs need them), no bf16, and none of the 10.x execution-context API the
backend uses (``enqueueV3`` only, ``USER_MANAGED`` context memory, ``device_memory_size_v2``: 10.1+).
10.3 is what JetPack 6.1/6.2 ship, and the oldest release this project reads against.

Why one logger: TensorRT keeps a single logger per process (the first one handed to a builder or runtime;
later ones are ignored with a warning), and its stock ``trt.Logger`` prints to stdout, which corrupts
``hrm-run --json`` / ``hrm-bench --json -``. :func:`logger` returns the one instance per flavour; it
forwards every message to Python ``logging`` (logger ``hrm.tensorrt``: stderr unless configured) and keeps
the recent ones so a failed build can quote TensorRT's own errors.
"""

from __future__ import annotations

import collections
import logging
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from hrm.errors import HRMError

_log = logging.getLogger("hrm.tensorrt")


@dataclass(frozen=True)
class Flavour:
    """What one TensorRT flavour can and needs (the one place that branches on the flavour)."""

    name: str
    minimum: tuple[int, int]
    #: builds for the GPU it runs on (tensorrt) or for compute-capability targets (RTX, no GPU needed)
    targets: bool
    #: TensorRT-RTX engines without targets run on these (its docs: "portable across 8.6, 8.9 and 12.0")
    default_targets: tuple[str, ...]
    #: tactic timing cache (TensorRT); RTX compiles at run time and its timing-cache calls are no-ops
    timing_cache: bool
    #: RTX: ``REQUIRE_USER_ALLOCATION`` at build, an ``IRuntimeConfig`` (USER_MANAGED memory, eager kernel
    #: specialisation, a runtime cache saved beside the engines) at run, ``is_stream_capturable`` before capture
    runtime_config: bool

    def too_old(self, version: str) -> str | None:
        """Why ``version`` of this flavour is refused, or None."""
        if parse_version(version)[:2] >= self.minimum:
            return None
        want = ".".join(map(str, self.minimum))
        if self.name == "tensorrt":
            return (f"TensorRT {version} is too old: hrm-deploy needs TensorRT {want} or newer (strongly typed "
                    "networks, bf16, the 10.x execution-context API). On Jetson that is JetPack 6.1 or 6.2 "
                    "(TensorRT 10.3); JetPack 6.0 ships TensorRT 8.6")
        return f"TensorRT-RTX {version} is too old: hrm-deploy needs TensorRT-RTX {want} or newer"


FLAVOURS: dict[str, Flavour] = {
    "tensorrt": Flavour("tensorrt", (10, 3), targets=False, default_targets=(), timing_cache=True,
                        runtime_config=False),
    # 1.7: the release whose Python API this code was read against (runtime config, runtime cache,
    # REQUIRE_USER_ALLOCATION, is_stream_capturable all present).
    "tensorrt_rtx": Flavour("tensorrt_rtx", (1, 7), targets=True, default_targets=("8.6", "8.9", "12.0"),
                            timing_cache=False, runtime_config=True),
}

INSTALL_HINT = ("pip install 'hrm-deploy[trt-check]' (TensorRT-RTX, builds without a GPU) or pip install tensorrt "
                "(TensorRT 10.3+, needs an NVIDIA GPU); on Jetson, TensorRT comes with JetPack 6.1/6.2")


def parse_version(v: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", str(v))
    return tuple(int(p) for p in parts[:3]) + (0,) * (3 - min(3, len(parts)))


@dataclass
class TensorRT:
    """An imported TensorRT flavour that passed the version gate."""

    flavour: str
    module: ModuleType

    @property
    def version(self) -> str:
        return str(self.module.__version__)

    @property
    def traits(self) -> Flavour:
        return FLAVOURS[self.flavour]


def import_tensorrt(flavour: str = "auto", error: Callable[[str], HRMError] = HRMError,
                    importer: Callable[[str], ModuleType] = __import__) -> TensorRT:
    """Import ``flavour`` (``auto``: env ``HRM_TRT_FLAVOUR``, else tensorrt if importable, else tensorrt_rtx)
    and refuse a version below the flavour's minimum. Every failure is ``error(message)``, one line."""
    flavour = os.environ.get("HRM_TRT_FLAVOUR", flavour) if flavour == "auto" else flavour
    order = tuple(FLAVOURS) if flavour == "auto" else (flavour,)
    if any(f not in FLAVOURS for f in order):
        raise error(f"unknown TensorRT flavour {flavour!r}; expected auto, {' or '.join(FLAVOURS)}")
    why = []
    for name in order:
        try:
            module = importer(name)
        except ImportError as exc:
            why.append(f"{name}: {exc}")
            continue
        trt = TensorRT(name, module)
        if (old := trt.traits.too_old(trt.version)) is not None:
            raise error(old)
        return trt
    raise error(f"TensorRT is not importable ({'; '.join(why)}): {INSTALL_HINT}")


_LOGGERS: dict[str, Any] = {}


def logger(trt: TensorRT) -> Any:
    """The one TensorRT logger of this process for ``trt``'s flavour (see the module doc)."""
    if trt.flavour in _LOGGERS:
        return _LOGGERS[trt.flavour]
    m = trt.module
    errors = (m.ILogger.INTERNAL_ERROR, m.ILogger.ERROR)
    levels = {m.ILogger.INTERNAL_ERROR: logging.ERROR, m.ILogger.ERROR: logging.ERROR,
              m.ILogger.WARNING: logging.WARNING, m.ILogger.INFO: logging.INFO}

    class _Logger(m.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            m.ILogger.__init__(self)
            self.messages: collections.deque = collections.deque(maxlen=200)  # (severity, message)
            self.count = 0

        def log(self, severity: Any, msg: str) -> None:
            self.messages.append((severity, msg))
            self.count += 1
            _log.log(levels.get(severity, logging.DEBUG), "%s: %s", trt.flavour, msg)

        def errors_since(self, mark: int) -> list[str]:
            """Errors logged after ``count`` was ``mark`` (TensorRT-RTX on a machine without a GPU logs
            harmless CUDA-driver errors on every build: left out)."""
            recent = list(self.messages)[-(self.count - mark):] if self.count > mark else []
            return [msg for sev, msg in recent if sev in errors
                    and "CUDA driver version is insufficient" not in msg and "no CUDA-capable device" not in msg]

    _LOGGERS[trt.flavour] = _Logger()
    return _LOGGERS[trt.flavour]
