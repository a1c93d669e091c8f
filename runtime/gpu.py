"""CUDA without torch: streams, device/pinned memory, async copies and CUDA graphs.

Everything goes through the CUDA runtime library that Polygraphy's ``polygraphy.cuda`` module
already locates and loads (``cuda.wrapper().handle`` is a ``ctypes.CDLL`` of libcudart), so a Jetson
install needs no torch, no cuda-python and no pycuda. Polygraphy covers streams, device arrays and
copies; the few calls it does not wrap (pinned host memory, stream capture, graph launch, device
attributes) are declared here with their exact C signatures. Nothing here imports at module load:
``polygraphy`` is imported on first use, so CPU-only installs never touch it.

Why pinned memory for read-backs: ``cudaMemcpyAsync`` into pageable memory blocks the host until the
copy is done, which would put one hidden synchronisation per tensor read. With page-locked buffers
the loop queues every read of a segment (q values, logits) and pays exactly one
``cudaStreamSynchronize``.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

_CAPTURE_MODE_THREAD_LOCAL = 1  # cudaStreamCaptureModeThreadLocal
_ATTR_CC_MAJOR, _ATTR_CC_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor / Minor
H2D, D2H, D2D = 1, 2, 3  # cudaMemcpyKind


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's error string."""


class Cudart:
    """The CUDA runtime calls the runtime needs, with ctypes signatures declared once."""

    _instance: "Cudart | None" = None

    def __init__(self) -> None:
        from polygraphy import cuda

        self.polygraphy_cuda = cuda
        # Our own handle on the very libcudart Polygraphy loaded: declaring argtypes on it does not
        # change the function objects Polygraphy calls.
        lib = ctypes.CDLL(cuda.wrapper().handle._name)
        vp, sz, i, ull = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_ulonglong
        sigs = {
            "cudaMemcpyAsync": (vp, vp, sz, i, vp),
            "cudaMallocHost": (ctypes.POINTER(vp), sz),
            "cudaFreeHost": (vp,),
            "cudaStreamSynchronize": (vp,),
            "cudaStreamBeginCapture": (vp, i),
            "cudaStreamEndCapture": (vp, ctypes.POINTER(vp)),
            "cudaGraphInstantiateWithFlags": (ctypes.POINTER(vp), vp, ull),
            "cudaGraphLaunch": (vp, vp),
            "cudaGraphExecDestroy": (vp,),
            "cudaGraphDestroy": (vp,),
            "cudaDeviceGetAttribute": (ctypes.POINTER(i), i, i),
            "cudaGetDevice": (ctypes.POINTER(i),),
            "cudaGetDeviceCount": (ctypes.POINTER(i),),
            "cudaGetErrorString": (i,),
        }
        for name, args in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = list(args)
            fn.restype = ctypes.c_char_p if name == "cudaGetErrorString" else ctypes.c_int
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
    def compute_capability(self, device: int | None = None) -> str:
        """'major.minor' of ``device`` (the current device if None)."""
        if device is None:
            d = ctypes.c_int()
            self.check(self.lib.cudaGetDevice(ctypes.byref(d)), "cudaGetDevice")
            device = d.value
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.cudaDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, device), "cudaDeviceGetAttribute")
        self.check(self.lib.cudaDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, device), "cudaDeviceGetAttribute")
        return f"{major.value}.{minor.value}"


def device_count() -> int:
    """Number of CUDA devices usable here; 0 when there is no CUDA runtime, driver or GPU (never raises)."""
    try:
        rt = Cudart.get()
        n = ctypes.c_int(0)
        return n.value if rt.lib.cudaGetDeviceCount(ctypes.byref(n)) == 0 else 0
    except Exception:  # no libcudart, no driver, polygraphy missing: all mean "no GPU here"
        return 0


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
    """A CUDA stream (Polygraphy's), plus the copies and graph calls the backends issue on it."""

    def __init__(self) -> None:
        self.rt = Cudart.get()
        self._stream = self.rt.polygraphy_cuda.Stream()
        self.ptr: int = int(self._stream.ptr)

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
        if self._stream is not None:
            self._stream.free()
            self._stream = None


class CudaGraph:
    """One captured-and-instantiated CUDA graph, replayed with :meth:`launch` on its stream."""

    def __init__(self, stream: Stream, enqueue: Any) -> None:
        """Capture everything ``enqueue()`` puts on ``stream`` (nothing runs during capture)."""
        rt, lib = stream.rt, stream.rt.lib
        self.stream, self._rt = stream, rt
        rt.check(lib.cudaStreamBeginCapture(stream.ptr, _CAPTURE_MODE_THREAD_LOCAL), "cudaStreamBeginCapture")
        graph = ctypes.c_void_p()
        try:
            enqueue()
        finally:  # always end the capture, or the stream stays unusable
            status = lib.cudaStreamEndCapture(stream.ptr, ctypes.byref(graph))
        rt.check(status, "cudaStreamEndCapture")
        self._graph = graph.value
        exe = ctypes.c_void_p()
        rt.check(lib.cudaGraphInstantiateWithFlags(ctypes.byref(exe), self._graph, 0), "cudaGraphInstantiateWithFlags")
        self._exec = exe.value

    def launch(self) -> None:
        self._rt.check(self._rt.lib.cudaGraphLaunch(self._exec, self.stream.ptr), "cudaGraphLaunch")

    def free(self) -> None:
        if self._exec:
            self._rt.lib.cudaGraphExecDestroy(self._exec)
            self._exec = None
        if self._graph:
            self._rt.lib.cudaGraphDestroy(self._graph)
            self._graph = None
