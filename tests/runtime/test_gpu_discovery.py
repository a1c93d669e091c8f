"""hrm.runtime.gpu without a GPU: where libcudart is looked for, what the probe says when there is none,
that a failed CUDA-graph capture destroys its partial graph, and ORT's DLL preload."""

from __future__ import annotations

import ctypes
import sys

import pytest

import hrm.runtime.gpu as gpu


@pytest.fixture
def nothing_loaded(monkeypatch):
    monkeypatch.setattr(gpu, "_loaded_cudart", lambda maps="/proc/self/maps": None)
    monkeypatch.setattr(gpu, "_pathfinder_cudart", lambda: None)


def test_pip_cuda13_runtime_in_site_packages_is_found(tmp_path, monkeypatch, nothing_loaded):
    """CUDA 13 wheels put libcudart.so.13 under nvidia/cu13/lib, which Polygraphy's search misses."""
    site = tmp_path / "site-packages"
    lib = site / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcudart.so.13").write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(site)])
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    dirs = gpu.cudart_search_dirs()
    assert str(lib) in dirs
    found = gpu.find_cudart([d for d in dirs if d.startswith(str(tmp_path))])  # not this box's own CUDA
    assert found.path == str(lib / "libcudart.so.13") and found.how == f"found in {lib}"


def test_newest_versioned_runtime_wins_in_a_folder(tmp_path, nothing_loaded):
    for name in ("libcudart.so.12", "libcudart.so.12.6.77", "libcudart.so.11.0"):
        (tmp_path / name).write_bytes(b"")
    assert gpu.find_cudart([str(tmp_path)]).path.endswith("libcudart.so.12.6.77")


def test_order_loaded_then_pathfinder(monkeypatch):
    monkeypatch.setattr(gpu, "_loaded_cudart", lambda maps="/proc/self/maps": "/x/libcudart.so.12")
    monkeypatch.setattr(gpu, "_pathfinder_cudart", lambda: "/y/libcudart.so.13")
    assert gpu.find_cudart().how == "already loaded in this process"
    monkeypatch.setattr(gpu, "_loaded_cudart", lambda maps="/proc/self/maps": None)
    assert gpu.find_cudart() == gpu.CudartLocation("/y/libcudart.so.13", "cuda.pathfinder")


def test_loaded_runtime_read_from_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.so.6\n"
                    "7f02-7f03 r-xp 0 08:01 2 /opt/venv/nvidia/cuda_runtime/lib/libcudart.so.12\n")
    assert gpu._loaded_cudart(str(maps)) == "/opt/venv/nvidia/cuda_runtime/lib/libcudart.so.12"


def test_no_runtime_anywhere_says_what_was_tried(tmp_path, monkeypatch, nothing_loaded):
    monkeypatch.setattr(gpu, "CUDART_SONAMES", ("libcudart.so.999",))
    with pytest.raises(gpu.CudaError, match=r"no CUDA runtime.*cuda.pathfinder.*libcudart.so.999.*LD_LIBRARY_PATH"):
        gpu.find_cudart([str(tmp_path)])


def test_probe_without_a_runtime_is_a_reason_not_an_exception(monkeypatch):
    def boom():
        raise gpu.CudaError("no CUDA runtime (libcudart) found: ...")
    monkeypatch.setattr(gpu.Cudart, "get", staticmethod(boom))
    info = gpu.probe(refresh=True)
    assert not info.available and "no CUDA runtime" in info.reason and info.compute_capability is None
    assert gpu.device_count() == 0
    gpu.probe(refresh=True)


class FakeLib:
    """libcudart's capture calls; EndCapture hands back a partial graph handle (as CUDA does)."""

    def __init__(self, end_status: int = 0, instantiate_status: int = 0) -> None:
        self.end_status, self.instantiate_status = end_status, instantiate_status
        self.destroyed: list[int] = []

    def cudaStreamBeginCapture(self, stream, mode):
        return 0

    def cudaStreamEndCapture(self, stream, graph_ref):
        ctypes.cast(graph_ref, ctypes.POINTER(ctypes.c_void_p))[0] = 0xABC
        return self.end_status

    def cudaGraphInstantiateWithFlags(self, exe_ref, graph, flags):
        ctypes.cast(exe_ref, ctypes.POINTER(ctypes.c_void_p))[0] = 0xDEF
        return self.instantiate_status

    def cudaGraphDestroy(self, graph):
        self.destroyed.append(graph)
        return 0

    def cudaGraphExecDestroy(self, exe):
        return 0

    def cudaGetErrorString(self, status):
        return b"operation not permitted when stream is capturing"


def _stream(lib):
    rt = gpu.Cudart.__new__(gpu.Cudart)
    rt.lib = lib
    return type("S", (), {"rt": rt, "ptr": 1})()


@pytest.mark.parametrize("where", ["enqueue", "end", "instantiate"])
def test_failed_capture_destroys_the_partial_graph(where):
    lib = FakeLib(end_status=900 if where == "end" else 0, instantiate_status=900 if where == "instantiate" else 0)

    def enqueue():
        if where == "enqueue":
            raise RuntimeError("TensorRT enqueue failed under capture")
    with pytest.raises((RuntimeError, gpu.CudaError)):
        gpu.CudaGraph(_stream(lib), enqueue)
    assert lib.destroyed == [0xABC]


def test_successful_capture_keeps_its_graph_until_freed():
    lib = FakeLib()
    g = gpu.CudaGraph(_stream(lib), lambda: None)
    assert lib.destroyed == []
    g.free()
    assert lib.destroyed == [0xABC]


def test_ort_preload_runs_once_and_prints_to_stderr(capsys):
    calls = []

    def preload_dlls():
        calls.append(1)
        print("WARNING: cuDNN not found")  # what ORT does when a library is missing
    ort = type(sys)("fake_ort")
    ort.preload_dlls = preload_dlls
    gpu.preload_ort_cuda(ort)
    gpu.preload_ort_cuda(ort)
    out = capsys.readouterr()
    assert calls == [1] and out.out == "" and "cuDNN" in out.err
    gpu.preload_ort_cuda(type(sys)("old_ort"))  # ORT < 1.21: nothing to call, no error
