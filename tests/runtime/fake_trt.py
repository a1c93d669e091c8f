"""A stand-in for the TensorRT Python module and the CUDA primitives, to test the ``trt`` backend's own logic
on a CPU: which execution contexts exist, what is set on them and when, what happens under capture.

It records every call in one event log (:class:`Log`). Nothing is computed: heads read back as zeros.
Only the calls the backend makes are modelled, with TensorRT's signatures (checked against
``tensorrt_rtx`` 1.7 and the TensorRT 10.x/11.x Python API docs).
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Log:
    events: list[tuple] = field(default_factory=list)
    capturing: bool = False

    def add(self, *event: Any) -> None:
        self.events.append((*event, self.capturing))


def make_module(log: Log, flavour: str = "tensorrt", version: str = "10.3.0.26", capturable: bool = True,
                memory: dict[str, int] | None = None, io: dict[str, tuple[list[str], list[str], str]] | None = None):
    """A fake ``tensorrt`` / ``tensorrt_rtx`` module. ``memory``: device_memory_size_v2 per engine kind;
    ``io``: per kind (inputs, outputs, float dtype name); engine bytes name their kind (b"kind")."""
    m = types.ModuleType(flavour)
    m.__version__ = version
    m.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    m.ExecutionContextAllocationStrategy = types.SimpleNamespace(STATIC="STATIC", USER_MANAGED="USER_MANAGED")
    m.DynamicShapesKernelSpecializationStrategy = types.SimpleNamespace(LAZY="LAZY", EAGER="EAGER")
    ids = itertools.count()

    class ILogger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self) -> None:
            pass

    m.ILogger = ILogger

    class Context:
        def __init__(self, engine: "Engine", how: Any) -> None:
            self.id, self.engine, self.how = next(ids), engine, how
            self.device_memory = None
            log.add("create", self.id, engine.kind, how)

        def set_device_memory(self, ptr: int, size: int) -> None:
            self.device_memory = (ptr, size)
            log.add("set_device_memory", self.id, ptr, size)

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            log.add("set_input_shape", self.id, name, tuple(shape))
            return shape[0] <= 16

        def set_tensor_address(self, name: str, ptr: int) -> None:
            log.add("set_tensor_address", self.id, name, ptr)

        def execute_async_v3(self, stream: int) -> bool:
            log.add("execute", self.id, self.engine.kind, stream)
            return True

        def is_stream_capturable(self, stream: int) -> bool:
            log.add("is_stream_capturable", self.id)
            return capturable

    class RuntimeConfig:
        def __init__(self) -> None:
            self.strategy = None
            self.dynamic_shapes_kernel_specialization_strategy = "LAZY"
            self.cache = None

        def set_execution_context_allocation_strategy(self, s: Any) -> None:
            self.strategy = s

        def create_runtime_cache(self) -> Any:
            return RuntimeCache()

        def set_runtime_cache(self, cache: Any) -> bool:
            self.cache = cache
            return True

    class RuntimeCache:
        def __init__(self) -> None:
            self.blob = b""

        def deserialize(self, blob: bytes) -> bool:
            log.add("runtime_cache_load", bytes(blob))
            ok = bytes(blob).startswith(b"rtx-cache")
            if ok:
                self.blob = bytes(blob)
            return ok

        def serialize(self) -> bytes:
            return b"rtx-cache:" + str(len(log.events)).encode()

    class Engine:
        def __init__(self, kind: str) -> None:
            self.kind = kind
            ins, outs, self._float = io[kind]
            self._names = [*ins, *outs]
            self._modes = {**{n: "INPUT" for n in ins}, **{n: "OUTPUT" for n in outs}}
            self.device_memory_size_v2 = (memory or {}).get(kind, 1024)

        @property
        def num_io_tensors(self) -> int:
            return len(self._names)

        def get_tensor_name(self, i: int) -> str:
            return self._names[i]

        def get_tensor_mode(self, name: str) -> str:
            return self._modes[name]

        def get_tensor_dtype(self, name: str) -> str:
            return "DataType.INT32" if name in ("tokens", "puzzle_ids") else self._float

        def create_execution_context(self, how: Any = "STATIC") -> Context:
            return Context(self, how.strategy if isinstance(how, RuntimeConfig) else how)

        def create_runtime_config(self) -> RuntimeConfig:
            return RuntimeConfig()

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger
            log.add("runtime", logger)

        def deserialize_cuda_engine(self, blob: bytes) -> Engine:
            return Engine(bytes(blob).decode())

    m.Runtime = Runtime
    return m


class FakeStream:
    ptr = 0xC0FFEE

    def synchronize(self) -> None:
        pass

    def free(self) -> None:
        pass


class FakeCudaMemory:
    """CudaMemory's interface with no device: uploads ignored, reads are zeros of the buffer's shape."""

    kind = "cuda"

    def __init__(self) -> None:
        self.stream = FakeStream()

    def upload(self, buf: Any, host: np.ndarray) -> None:
        pass

    def copy_row(self, dst: Any, row: int, src: Any) -> None:
        pass

    def read(self, buf: Any) -> np.ndarray:
        from hrm.runtime.dtypes import host_dtype

        return np.zeros(buf.spec.shape, host_dtype(buf.spec.dtype))

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeDeviceBuffer:
    _next = itertools.count(1)

    def __init__(self, nbytes: int) -> None:
        self.ptr = next(self._next) * (1 << 20)
        self.nbytes = int(nbytes)
        self.freed = False

    def free(self) -> None:
        self.freed = True


def fake_graph_class(log: Log, fail: bool = False):
    """A CudaGraph stand-in: runs ``enqueue`` with the log's capture flag set; ``launch`` is logged."""

    class FakeGraph:
        made: list["FakeGraph"] = []

        def __init__(self, stream: Any, enqueue: Any) -> None:
            log.capturing = True
            try:
                enqueue()
                if fail:
                    raise RuntimeError("cudaStreamEndCapture failed: operation not permitted when stream is capturing")
            finally:
                log.capturing = False
            self.id = len(FakeGraph.made)
            self.freed = False
            FakeGraph.made.append(self)
            log.add("captured", self.id)

        def launch(self) -> None:
            log.add("launch", self.id)

        def free(self) -> None:
            self.freed = True

    return FakeGraph
