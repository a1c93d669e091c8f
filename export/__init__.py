"""hrm.export: turn an HRM checkpoint into a verified deployment directory (ONNX graphs, manifest, engines).

Public API::

    from hrm.export import export_deployment, EngineOptions
    report = export_deployment("model.safetensors", "deploy/sudoku", precisions="fp32,fp16,bf16",
                               engine=EngineOptions(max_batch=64))
    # ONNX Runtime's fused contrib ops instead of opset-17 primitives (no TensorRT engines):
    export_deployment("model.safetensors", "deploy/sudoku-ort", precisions="fp16", ops="ort-contrib")

Graphs are built directly with ``onnx.helper`` from the checkpoint's numpy tensors (see
:mod:`hrm.export.onnx_builder` for why), validated against the PyTorch module ``hrm.model.HRM`` with
Polygraphy (:mod:`hrm.export.validate`), and optionally compiled with TensorRT or TensorRT-RTX
(:mod:`hrm.export.engine`). Importing this package does not import torch or TensorRT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["export_deployment", "ExportReport", "GraphResult", "ProgressEvent", "ValidationFailed", "EngineOptions",
           "build_graph", "graph_io", "GRAPH_KINDS", "get_precision", "parse_precisions", "validate_variant"]

_LAZY = {
    "export_deployment": "hrm.export.api", "ExportReport": "hrm.export.api", "GraphResult": "hrm.export.api",
    "ProgressEvent": "hrm.export.api", "ValidationFailed": "hrm.export.api",
    "EngineOptions": "hrm.export.engine",
    "build_graph": "hrm.export.graphs", "graph_io": "hrm.export.graphs", "GRAPH_KINDS": "hrm.export.graphs",
    "get_precision": "hrm.export.precision", "parse_precisions": "hrm.export.precision",
    "validate_variant": "hrm.export.validate",
}

if TYPE_CHECKING:  # pragma: no cover
    from hrm.export.api import ExportReport, GraphResult, ProgressEvent, ValidationFailed, export_deployment
    from hrm.export.engine import EngineOptions
    from hrm.export.graphs import GRAPH_KINDS, build_graph, graph_io
    from hrm.export.precision import get_precision, parse_precisions
    from hrm.export.validate import validate_variant


def __getattr__(name: str) -> Any:
    """Lazy imports (Polygraphy style): ``import hrm.export`` stays instant for ``hrm-export --help``."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hrm.export' has no attribute {name!r}")
