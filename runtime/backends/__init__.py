"""Runtime backends behind one interface (:class:`hrm.runtime.backends.base.Backend`).

Backend modules are imported only when asked for, so ``import hrm.runtime`` needs neither
onnxruntime, TensorRT nor torch; ``torch`` is imported only by the ``torch`` reference backend.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "ort": ("hrm.runtime.backends.ort", "OrtBackend"),
    "trt": ("hrm.runtime.backends.trt", "TrtBackend"),
    "torch": ("hrm.runtime.backends.torch_ref", "TorchBackend"),
}


def backend_class(name: str) -> type:
    """The Backend subclass registered as ``name`` (imports its module)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def create_backend(name: str, deployment: Any, variant: Any = "fp32", device: str = "cpu", options: Any = None):
    """Construct (not activate) backend ``name`` for ``deployment``: ``variant`` as resolved by
    :meth:`hrm.manifest.Manifest.resolve` (or a precision name), its options object (None: defaults)."""
    return backend_class(name)(deployment, variant, device, options)
