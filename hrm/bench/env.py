"""The environment a benchmark ran in: machine, device, library versions, threads, load.

Numbers without this are not comparable. Thread counts are *set* here too (:func:`pin_threads`), not
left to library defaults: on a small shared CPU box torch's OpenMP pool and ORT's spinning pool fight
each other and everything else running, and a 2-thread default can be several times slower than one
thread (see benchmarks/README.md).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

PACKAGES = ("hrm-deploy", "torch", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "polygraphy", "tensorrt",
            "tensorrt_rtx", "tensorrt-cu12", "tensorrt-rtx-cu13", "triton", "ml_dtypes")

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """torch intra-op threads = ``threads`` (ORT gets the same number per session from the targets:
    ``intra_op_num_threads``; sequential execution, so no inter-op pool). The environment's
    ``OMP_NUM_THREADS`` & co. are recorded as found, not changed."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(threads))


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_details() -> dict[str, Any]:
    """Vendor family/model, the SIMD features that decide matmul speed, and the L3 size (Linux)."""
    out: dict[str, Any] = {}
    try:
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (x.strip() for x in line.split(":", 1))
                info.setdefault(k, v)
            elif info:
                break
        flags = set(info.get("flags", "").split())
        out = {"vendor": info.get("vendor_id"), "family": info.get("cpu family"), "model_id": info.get("model"),
               "simd": [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
                                    "avx_vnni", "amx_bf16", "amx_int8") if f in flags],
               "hypervisor": "hypervisor" in flags}
        l3 = Path("/sys/devices/system/cpu/cpu0/cache/index3/size")
        if l3.exists():
            out["l3"] = l3.read_text().strip()
    except OSError:
        pass
    return out


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def git_revision() -> dict[str, Any] | None:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def gpu_info() -> dict[str, Any] | None:
    """The GPU as :func:`hrm.runtime.gpu.probe` reads it (name, capability, CUDA driver/runtime), plus what
    torch adds when it can use it (memory, SMs, cuDNN, TF32)."""
    from hrm.runtime.gpu import probe

    info = probe()
    if not info.available:
        return None
    out: dict[str, Any] = {"name": info.name, "count": info.count, "compute_capability": info.compute_capability,
                           "cuda_driver": info.driver, "cuda_runtime": info.runtime}
    try:
        import torch
    except ImportError:
        return out
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.cuda.current_device())
        out.update(memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                   torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32))
    return out


def environment(devices: Sequence[str], threads: int) -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = None
    torch_threads = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        pass
    ort_providers = None
    try:
        import onnxruntime as ort

        ort_providers = ort.get_available_providers()
    except ImportError:
        pass
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": {"model": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity, **cpu_details()},
        "gpu": gpu_info() if "cuda" in devices else None,
        "device_names": {d: (cpu_model() if d == "cpu" else (gpu_info() or {}).get("name")) for d in devices},
        "versions": versions(),
        "onnxruntime_providers": ort_providers,
        "threads": {"requested": threads, "torch_intra_op": torch_threads, "ort_intra_op": threads,
                    "ort_inter_op": 1, "env": {k: os.environ.get(k) for k in THREAD_ENV if os.environ.get(k)}},
        "load_average_start": load_average(),
        "git": git_revision(),
    }
