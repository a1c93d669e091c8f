"""Writing graphs and initial states to disk, and the structural checks every written graph passes.

External data: protobuf caps a serialized model at 2 GB, and an ARC checkpoint's puzzle embedding alone
can exceed that. Graphs whose weights exceed ``EXTERNAL_DATA_THRESHOLD`` (1 GiB, well under the cap so
the graph proto itself stays small) keep their tensors in one ``<graph>.onnx.data`` file beside the
graph; the manifest records that file and its sha256 so the runtime verifies both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hrm.errors import ExportError
from hrm.export.graphs import GraphTensor
from hrm.io import atomic_path, sha256_file
from hrm.manifest import GraphEntry

EXTERNAL_DATA_THRESHOLD = 1 << 30


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save_graph(model: onnx.ModelProto, root: Path, relative: str, kind: str, inputs: list[GraphTensor],
               outputs: list[GraphTensor], external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> GraphEntry:
    """Write ``model`` to ``root/relative`` (+ ``.data`` above the threshold) and describe it for the manifest."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    external = initializer_bytes(model) > external_data_threshold
    data_name = path.name + ".data"
    if external:
        (path.parent / data_name).unlink(missing_ok=True)  # onnx appends to an existing data file
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=external, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
    ext = None
    if external and (path.parent / data_name).is_file():  # (no file when every tensor is under 1 KiB)
        data_rel = str(Path(relative).parent / data_name)
        ext = {"file": data_rel, "sha256": sha256_file(root / data_rel)}
    return GraphEntry(kind, relative, sha256_file(path), [s.to_dict() for s in inputs],
                      [s.to_dict() for s in outputs], ext)


def check_graph(path: Path, outputs: list[GraphTensor]) -> None:
    """``onnx.checker`` (full check) and strict shape inference; declared output shapes must be inferred.

    Raises :class:`ExportError` naming the file and the checker's message.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path), load_external_data=False)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{path}: ONNX check failed: {str(exc).splitlines()[0]}") from None
    found = {vi.name: vi.type.tensor_type for vi in inferred.graph.output}
    for spec in outputs:
        tt = found.get(spec.name)
        dims = [d.dim_param or d.dim_value for d in tt.shape.dim] if tt is not None else None
        if tt is None or tt.elem_type != spec.elem_type or dims != list(spec.shape):
            raise ExportError(f"{path}: output '{spec.name}' is {dims} type {getattr(tt, 'elem_type', None)}, "
                              f"expected {list(spec.shape)} type {spec.elem_type}")


def save_init(root: Path, tensors: dict[str, np.ndarray], prefix: str = "") -> dict[str, dict[str, str]]:
    """``<prefix>init/H_init.npy`` and ``L_init.npy`` (fp32 [hidden]); returns the manifest's ``init`` block."""
    out = {}
    for key in ("H_init", "L_init"):
        rel = f"{prefix}init/{key}.npy"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(tensors[key], dtype=np.float32))
        out[key] = {"file": rel, "sha256": sha256_file(path)}
    return out
