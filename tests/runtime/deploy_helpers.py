"""Build and alter deployment directories for runtime tests (export through ``hrm.export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def export(checkpoint: Path, out_dir: Path, precisions: tuple[str, ...] = ("fp32",), segment: bool = True) -> Path:
    """Export ``checkpoint`` (our format) into ``out_dir``, unvalidated, with the fused ``segment`` graph
    unless asked not to; returns the deployment directory."""
    from hrm.export import export_deployment

    export_deployment(checkpoint, out_dir, precisions=precisions, validate=False, segment=segment)
    return Path(out_dir)


def patch_initializer(deploy_dir: Path, precision: str, kind: str, name: str, fn) -> None:
    """Replace initializer ``name`` of ``<precision>/<kind>.onnx`` by ``fn(array)`` and rewrite the
    manifest's hash, so the deployment still verifies but computes something else."""
    import onnx
    from onnx import numpy_helper

    from hrm.io import sha256_file
    from hrm.manifest import load_manifest

    man = load_manifest(deploy_dir, verify=False)
    entry = man.variant(precision).graphs[kind]
    path = man.path(entry.file)
    model = onnx.load(path)
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            new = numpy_helper.from_array(np.asarray(fn(numpy_helper.to_array(init))).astype(numpy_helper.to_array(init).dtype), name)
            model.graph.initializer[i].CopyFrom(new)
            break
    else:
        raise KeyError(f"{path}: no initializer {name!r}")
    onnx.save(model, path)
    entry.sha256 = sha256_file(path)
    man.save()


def copy_deployment(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def build_engines(deploy_dir: Path, precision: str, trt=None, max_batch: int = 16, opt_batch: int = 4) -> list[Path]:
    """Build TensorRT engines for every graph of ``precision`` with the exporter's own builder
    (:func:`hrm.export.engine.build_engine`, so the records are the real ones) and list them in the
    manifest. ``trt``: a module (``tensorrt`` / ``tensorrt_rtx``) or None for the default flavour."""
    from hrm.export.engine import EngineOptions, build_engine, import_tensorrt
    from hrm.manifest import load_manifest

    flavour = "auto" if trt is None else ("tensorrt_rtx" if trt.__name__.startswith("tensorrt_rtx") else "tensorrt")
    imported = import_tensorrt(flavour)
    man = load_manifest(deploy_dir, verify=False)
    var = man.variant(precision)
    options = EngineOptions(min_batch=1, opt_batch=opt_batch, max_batch=max_batch, flavour=imported.flavour)
    out = []
    for kind, g in var.graphs.items():
        path = man.path(g.file)
        entry, _ = build_engine(imported, path, path.with_suffix(".engine"), options, root=man.root)
        var.engines[kind] = entry
        out.append(path.with_suffix(".engine"))
    man.save()
    return out


def assert_same_solves(a: Any, b: Any, tokens: np.ndarray, ids: np.ndarray, max_segments: int, rtol: float,
                       atol: float) -> None:
    """Sessions ``a`` and ``b`` give identical answers and segment counts, and q_halt within
    (``rtol``, ``atol``), under fixed and under ACT halting."""
    for halting in ("fixed", "act"):
        ra = a.solve(tokens, puzzle_ids=ids, halting=halting, max_segments=max_segments)
        rb = b.solve(tokens, puzzle_ids=ids, halting=halting, max_segments=max_segments)
        np.testing.assert_array_equal(np.stack([r.answer_tokens for r in ra]), np.stack([r.answer_tokens for r in rb]))
        assert [r.segments for r in ra] == [r.segments for r in rb]
        for x, y in zip(ra, rb):
            np.testing.assert_allclose(x.q_halt, y.q_halt, rtol=rtol, atol=atol)
