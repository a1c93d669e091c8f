"""Tensor dtypes as the manifest names them, and how the runtime holds them on the host.

numpy has no bfloat16, and the runtime must not depend on torch or ml_dtypes, so a bf16 tensor is
held on the host as its raw ``uint16`` bits. The only host-side arithmetic the runtime ever does on
state-dtype tensors is "widen to float32" (logits for argmax, z_H for parity), which for bf16 is a
16-bit shift: exact, cheap, dependency-free.
"""

from __future__ import annotations

import numpy as np

from hrm.errors import ManifestError

#: manifest dtype name -> numpy dtype used for host storage (bf16 as raw bits).
HOST_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(np.uint16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
}

#: manifest dtype name -> ONNX TensorProto element type (for ORT bindings of bf16).
ONNX_TYPES: dict[str, int] = {"float32": 1, "int32": 6, "int64": 7, "float16": 10, "bfloat16": 16}


def host_dtype(name: str) -> np.dtype:
    """numpy storage dtype for a manifest dtype name (bf16 -> uint16 bits)."""
    try:
        return HOST_DTYPES[name]
    except KeyError:
        raise ManifestError(f"unsupported tensor dtype {name!r}; expected one of {sorted(HOST_DTYPES)}") from None


def to_float32(array: np.ndarray, name: str) -> np.ndarray:
    """Widen a host array of manifest dtype ``name`` to float32 (exact for fp16 and bf16)."""
    if name == "bfloat16":
        bits = np.ascontiguousarray(array, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.asarray(array, dtype=np.float32)


def from_float32(array: np.ndarray, name: str) -> np.ndarray:
    """Narrow float32 values to manifest dtype ``name`` (bf16: round to nearest even, like torch)."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if name == "bfloat16":
        bits = a.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        out = rounded.astype(np.uint16)
        nan = np.isnan(a)
        if nan.any():
            out[nan] = 0x7FC0
        return out
    return a.astype(host_dtype(name))
