"""CUDA without torch: finding the CUDA runtime, device facts, streams, memory, copies and CUDA graphs.

This module is the one place that answers "is there a usable CUDA GPU here, which one, and what is its
compute capability" (:func:`probe` -> :class:`GpuInfo`), for the runtime, the exporter's engine records,
the benchmark and ``hrm-doctor`` alike. It reads everything through the CUDA runtime library the process
itself uses (``cudaDeviceGetAttribute``), so the capability recorded in an engine entry and the one the
engine check compares it with come from the same source; torch and ``nvidia-smi`` (absent, or
``N/A`` for the capability, on Jetson) are not consulted.

Why our own ``libcudart`` discovery (:func:`find_cudart`) instead of Polygraphy's ``cuda.wrapper()``:
Polygraphy searches ``LD_LIBRARY_PATH``, ``/usr/local/cuda/lib64``, ``/usr/lib``, ``/lib`` and the CUDA 12
wheel folder ``nvidia/cuda_runtime/lib``, then falls back to the unversioned ``libcudart.so`` (a
development symlink). A torch-free install whose CUDA comes from pip (CUDA 13 wheels put
``libcudart.so.13`` under ``nvidia/cu13/lib``) or whose only copy is the versioned system one is missed.
So, in order: the copy already loaded in this process (ONNX Runtime's or torch's; two runtimes in one
process work but waste memory), ``cuda.pathfinder`` when installed (NVIDIA's locator: wheels, conda,
system), the same folders Polygraphy searches plus every ``nvidia/*/lib`` wheel folder, and finally the
versioned sonames through the system loader. Streams and device buffers are then a handful of ctypes calls
on that library (declared below with their exact C signatures), so nothing here needs Polygraphy.

Nothing imports at module load beyond ctypes/numpy: CPU-only installs never touch CUDA.

Why pinned memory for read-backs: ``cudaMemcpyAsync`` into pageable memory blocks the host until the
copy is done, which would put one hidden synchronisation per tensor read. With page-locked buffers
the loop queues every read of a segment (q values, logits) and pays exactly one
``cudaStreamSynchronize``.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

_CAPTURE_MODE_THREAD_LOCAL = 1  # cudaStreamCaptureModeThreadLocal
_ATTR_CC_MAJOR, _ATTR_CC_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor
_PROP_BYTES = 4096  # cudaDeviceProp is ~1 KiB in CUDA 12/13; its first field is char name[256]
H2D, D2H, D2D = 1, 2, 3  # cudaMemcpyKind

#: Sonames tried through the system loader, newest first (CUDA 13, 12, 11).
CUDART_SONAMES = ("libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so")


class CudaError(RuntimeError):
    """A CUDA runtime call failed, or no CUDA runtime was found; the message says which and why."""


# ---- finding libcudart -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CudartLocation:
    """Which libcudart to load and how it was found (``hrm-doctor`` reports both)."""

    path: str
    how: str


def _loaded_cudart(maps: str = "/proc/self/maps") -> str | None:
    """The libcudart already mapped into this process (Linux), if any."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        path = line.split()[-1] if line.split() else ""
        if "/libcudart.so" in path:
            return path
    return None


def _pathfinder_cudart() -> str | None:
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
    except ImportError:
        return None
    try:
        return str(load_nvidia_dynamic_lib("cudart").abs_path)
    except Exception:  # DynamicLibNotFoundError & co.: let the next step look
        return None


def cudart_search_dirs() -> list[str]:
    """Folders searched for ``libcudart.so*``: Polygraphy's list plus every pip ``nvidia/*/lib`` folder
    (``nvidia/cuda_runtime/lib`` for CUDA 12 wheels, ``nvidia/cu13/lib`` for CUDA 13) and ``CUDA_HOME``."""
    dirs = [*os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            dirs += [os.path.join(os.environ[var], "lib64"), os.path.join(os.environ[var], "lib")]
    dirs += ["/usr/local/cuda/lib64", "/usr/lib", "/lib", "/usr/lib/aarch64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
    for p in sys.path:
        if p and os.path.isdir(os.path.join(p, "nvidia")):
            dirs += sorted(glob.glob(os.path.join(p, "nvidia", "*", "lib")))
    return list(dict.fromkeys(os.path.normpath(d) for d in dirs if d))


def _version_key(path: str) -> tuple[int, ...]:
    tail = path.rsplit("libcudart.so", 1)[-1].lstrip(".")
    return tuple(int(x) for x in tail.split(".") if x.isdigit()) or (0,)


def find_cudart(dirs: list[str] | None = None) -> CudartLocation:
    """Where this process gets its CUDA runtime (see the module doc for the order); :class:`CudaError`
    naming everything tried when there is none."""
    if (path := _loaded_cudart()) is not None:
        return CudartLocation(path, "already loaded in this process")
    if (path := _pathfinder_cudart()) is not None:
        return CudartLocation(path, "cuda.pathfinder")
    dirs = cudart_search_dirs() if dirs is None else dirs
    for d in dirs:
        found = [f for f in glob.glob(os.path.join(d, "libcudart.so*")) if os.path.isfile(f)]
        if found:
            return CudartLocation(max(found, key=_version_key), f"found in {d}")
    for soname in CUDART_SONAMES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            continue
        return CudartLocation(soname, "system loader")
    raise CudaError("no CUDA runtime (libcudart) found: not loaded in this process, not found by cuda.pathfinder "
                    f"(pip install cuda-pathfinder), not in {dirs}, and the system loader knows none of "
                    f"{', '.join(CUDART_SONAMES)}; install the CUDA runtime (JetPack, the CUDA toolkit, or "
                    "pip install nvidia-cuda-runtime-cu12) or put its folder on LD_LIBRARY_PATH")


# ---- the runtime library ---------------------------------------------------------------------------

class Cudart:
    """The CUDA runtime calls the runtime needs, with ctypes signatures declared once."""

    _instance: "Cudart | None" = None

    def __init__(self, location: CudartLocation | None = None) -> None:
        self.location = location or find_cudart()
        try:
            lib = ctypes.CDLL(self.location.path)
        except OSError as exc:
            raise CudaError(f"{self.location.path} ({self.location.how}) cannot be loaded: {exc}") from None
        vp, sz, i, ull = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_ulonglong
        pi = ctypes.POINTER(i)
        sigs = {
            "cudaMalloc": (ctypes.POINTER(vp), sz),
            "cudaFree": (vp,),
            "cudaMemcpyAsync": (vp, vp, sz, i, vp),
            "cudaMallocHost": (ctypes.POINTER(vp), sz),
            "cudaFreeHost": (vp,),
            "cudaStreamCreate": (ctypes.POINTER(vp),),
            "cudaStreamDestroy": (vp,),
            "cudaStreamSynchronize": (vp,),
            "cudaStreamBeginCapture": (vp, i),
            "cudaStreamEndCapture": (vp, ctypes.POINTER(vp)),
            "cudaGraphInstantiateWithFlags": (ctypes.POINTER(vp), vp, ull),
            "cudaGraphLaunch": (vp, vp),
            "cudaGraphExecDestroy": (vp,),
            "cudaGraphDestroy": (vp,),
            "cudaDeviceGetAttribute": (pi, i, i),
            "cudaGetDevice": (pi,),
            "cudaGetDeviceCount": (pi,),
            "cudaDriverGetVersion": (pi,),
            "cudaRuntimeGetVersion": (pi,),
            "cudaGetErrorString": (i,),
        }
        for name, args in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = list(args)
            fn.restype = ctypes.c_char_p if name == "cudaGetErrorString" else ctypes.c_int
        # CUDA 12 headers map cudaGetDeviceProperties to the _v2 symbol; CUDA 13 exports only that one.
        props = getattr(lib, "cudaGetDeviceProperties_v2", None) or getattr(lib, "cudaGetDeviceProperties")
        props.argtypes, props.restype = [ctypes.c_char_p, i], ctypes.c_int
        self._props = props
        self.lib = lib

    @classmethod
    def get(cls) -> "Cudart":
        if cls._instance is None:
            cls._instance = Cudart()
        return cls._instance

    def check(self, status: int, what: str) -> None:
        if status != 0:
            msg = self.lib.cudaGetErrorString(status)
            raise CudaError(f"{what} failed: CUDA error {status} ({msg.decode() if msg else '?'})")

    # ---- copies ------------------------------------------------------------------------------
    def memcpy_async(self, dst: int, src: int, nbytes: int, kind: int, stream: int) -> None:
        if nbytes:
            self.check(self.lib.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync")

    def synchronize(self, stream: int) -> None:
        self.check(self.lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    # ---- device facts --------------------------------------------------------------------------
    def _int(self, fn: Callable[..., int], what: str, *args: int) -> int:
        out = ctypes.c_int()
        self.check(fn(ctypes.byref(out), *args), what)
        return out.value

    def current_device(self) -> int:
        return self._int(self.lib.cudaGetDevice, "cudaGetDevice")

    def compute_capability(self, device: int | None = None) -> str:
        """'major.minor' of ``device`` (the current device if None), from ``cudaDeviceGetAttribute``."""
        device = self.current_device() if device is None else device
        major = self._int(self.lib.cudaDeviceGetAttribute, "cudaDeviceGetAttribute", _ATTR_CC_MAJOR, device)
        minor = self._int(self.lib.cudaDeviceGetAttribute, "cudaDeviceGetAttribute", _ATTR_CC_MINOR, device)
        return f"{major}.{minor}"

    def device_name(self, device: int | None = None) -> str:
        device = self.current_device() if device is None else device
        buf = ctypes.create_string_buffer(_PROP_BYTES)
        self.check(self._props(buf, device), "cudaGetDeviceProperties")
        return buf.raw[:256].split(b"\0", 1)[0].decode(errors="replace")

    def versions(self) -> tuple[str, str]:
        """(driver, runtime) CUDA versions as 'major.minor' (the driver's is the newest CUDA it supports)."""
        def fmt(v: int) -> str:
            return f"{v // 1000}.{(v % 1000) // 10}"

        return (fmt(self._int(self.lib.cudaDriverGetVersion, "cudaDriverGetVersion")),
                fmt(self._int(self.lib.cudaRuntimeGetVersion, "cudaRuntimeGetVersion")))


# ---- what this machine has: the one definition -------------------------------------------------------

@dataclass(frozen=True)
class GpuInfo:
    """The CUDA facts of this machine, or why there are none (``reason``). Never half-filled: when
    ``available`` is true, name, compute capability and versions are all read."""

    available: bool
    reason: str | None = None
    name: str | None = None
    compute_capability: str | None = None
    count: int = 0
    driver: str | None = None
    runtime: str | None = None
    cudart: str | None = None  # "path (how it was found)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PROBE: GpuInfo | None = None


def probe(refresh: bool = False) -> GpuInfo:
    """This machine's CUDA GPU (the current device) through the CUDA runtime; never raises, cached."""
    global _PROBE
    if _PROBE is not None and not refresh:
        return _PROBE
    try:
        rt = Cudart.get()
    except Exception as exc:  # no libcudart, or it does not load
        _PROBE = GpuInfo(False, f"no CUDA runtime: {exc}")
        return _PROBE
    where = f"{rt.location.path} ({rt.location.how})"
    n = ctypes.c_int(0)
    status = rt.lib.cudaGetDeviceCount(ctypes.byref(n))
    if status != 0:
        msg = rt.lib.cudaGetErrorString(status)
        _PROBE = GpuInfo(False, f"no usable CUDA device: cudaGetDeviceCount failed with CUDA error {status} "
                                f"({msg.decode() if msg else '?'}; driver missing or too old?)", cudart=where)
        return _PROBE
    if n.value == 0:
        _PROBE = GpuInfo(False, "no CUDA device (cudaGetDeviceCount() = 0)", cudart=where)
        return _PROBE
    try:
        driver, runtime = rt.versions()
        _PROBE = GpuInfo(True, None, rt.device_name(), rt.compute_capability(), n.value, driver, runtime, where)
    except CudaError as exc:
        _PROBE = GpuInfo(False, f"CUDA device present but unreadable: {exc}", count=n.value, cudart=where)
    return _PROBE


def device_count() -> int:
    """Number of CUDA devices usable here; 0 when there is no CUDA runtime, driver or GPU (never raises)."""
    return probe().count if probe().available else 0


def preload_ort_cuda(ort: Any) -> None:
    """``onnxruntime.preload_dlls()`` before the first CUDA session, so a torch-free onnxruntime-gpu finds
    the cuBLAS / cuDNN / cudart of pip's nvidia-* wheels (ORT >= 1.21; older ORT: nothing to do). ORT prints
    its warnings with ``print``: they go to stderr here, never into ``--json`` output on stdout."""
    import contextlib

    fn = getattr(ort, "preload_dlls", None)
    if fn is None or getattr(ort, "_hrm_preloaded", False):
        return
    with contextlib.redirect_stdout(sys.stderr):
        fn()
    ort._hrm_preloaded = True


# ---- memory, streams, graphs ---------------------------------------------------------------------------

class DeviceBuffer:
    """``nbytes`` of device memory (``cudaMalloc``: 256-byte aligned, as TensorRT wants), freed by :meth:`free`."""

    def __init__(self, nbytes: int) -> None:
        self._rt = Cudart.get()
        ptr = ctypes.c_void_p()
        self._rt.check(self._rt.lib.cudaMalloc(ctypes.byref(ptr), max(int(nbytes), 1)), f"cudaMalloc({nbytes})")
        self.ptr: int = int(ptr.value)
        self.nbytes = int(nbytes)

    def free(self) -> None:
        if self.ptr:
            self._rt.check(self._rt.lib.cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedArray:
    """A page-locked host numpy array (``cudaMallocHost``), freed by :meth:`free`."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self._rt = Cudart.get()
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * np.dtype(dtype).itemsize
        ptr = ctypes.c_void_p()
        self._rt.check(self._rt.lib.cudaMallocHost(ctypes.byref(ptr), max(nbytes, 1)), "cudaMallocHost")
        self.ptr = int(ptr.value)
        raw = np.frombuffer((ctypes.c_uint8 * max(nbytes, 1)).from_address(self.ptr), dtype=np.uint8)
        self.array = raw[:nbytes].view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None  # type: ignore[assignment]
            self._rt.check(self._rt.lib.cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


class Stream:
    """A CUDA stream, plus the copies and graph calls the backends issue on it."""

    def __init__(self) -> None:
        self.rt = Cudart.get()
        ptr = ctypes.c_void_p()
        self.rt.check(self.rt.lib.cudaStreamCreate(ctypes.byref(ptr)), "cudaStreamCreate")
        self.ptr: int = int(ptr.value or 0)
        self._live = True

    def h2d(self, dst_ptr: int, host: np.ndarray) -> None:
        host = np.ascontiguousarray(host)
        self.rt.memcpy_async(dst_ptr, host.ctypes.data, host.nbytes, H2D, self.ptr)

    def d2h(self, host: np.ndarray, src_ptr: int, nbytes: int | None = None) -> None:
        self.rt.memcpy_async(host.ctypes.data, src_ptr, host.nbytes if nbytes is None else nbytes, D2H, self.ptr)

    def d2d(self, dst_ptr: int, src_ptr: int, nbytes: int) -> None:
        self.rt.memcpy_async(dst_ptr, src_ptr, nbytes, D2D, self.ptr)

    def synchronize(self) -> None:
        self.rt.synchronize(self.ptr)

    def free(self) -> None:
        if self._live:
            self.rt.check(self.rt.lib.cudaStreamDestroy(self.ptr), "cudaStreamDestroy")
            self._live = False


class CudaGraph:
    """One captured-and-instantiated CUDA graph, replayed with :meth:`launch` on its stream.

    A capture that fails (``enqueue`` raises, or ending the capture or instantiating the graph fails)
    destroys whatever partial graph CUDA handed back before the error propagates, so a backend that
    falls back to eager execution leaks nothing."""

    def __init__(self, stream: Any, enqueue: Callable[[], Any]) -> None:
        """Capture everything ``enqueue()`` puts on ``stream`` (nothing runs during capture)."""
        rt, lib = stream.rt, stream.rt.lib
        self.stream, self._rt = stream, rt
        self._graph: int | None = None
        self._exec: int | None = None
        rt.check(lib.cudaStreamBeginCapture(stream.ptr, _CAPTURE_MODE_THREAD_LOCAL), "cudaStreamBeginCapture")
        graph = ctypes.c_void_p()
        try:
            enqueue()
        except BaseException:
            lib.cudaStreamEndCapture(stream.ptr, ctypes.byref(graph))  # always end it, or the stream stays unusable
            if graph.value:
                lib.cudaGraphDestroy(graph.value)
            raise
        status = lib.cudaStreamEndCapture(stream.ptr, ctypes.byref(graph))
        self._graph = graph.value
        try:
            rt.check(status, "cudaStreamEndCapture")
            exe = ctypes.c_void_p()
            rt.check(lib.cudaGraphInstantiateWithFlags(ctypes.byref(exe), self._graph, 0),
                     "cudaGraphInstantiateWithFlags")
            self._exec = exe.value
        except BaseException:
            self.free()
            raise

    def launch(self) -> None:
        self._rt.check(self._rt.lib.cudaGraphLaunch(self._exec, self.stream.ptr), "cudaGraphLaunch")

    def free(self) -> None:
        if self._exec:
            self._rt.lib.cudaGraphExecDestroy(self._exec)
            self._exec = None
        if self._graph:
            self._rt.lib.cudaGraphDestroy(self._graph)
            self._graph = None
