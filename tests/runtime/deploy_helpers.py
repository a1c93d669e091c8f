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


def build_engines(deploy_dir: Path, precision: str, trt, max_batch: int = 16, opt_batch: int = 4) -> list[Path]:
    """Build TensorRT engines for the step graphs of ``precision`` with module ``trt`` (``tensorrt`` or
    ``tensorrt_rtx``; only API shared by TensorRT 10.3+, 11 and RTX) and list them in the manifest with
    this machine's facts (flavour, version, compute capability). Returns the engine paths."""
    from hrm.io import sha256_file
    from hrm.manifest import EngineEntry, load_manifest
    from hrm.runtime.gpu import Cudart

    flavour = "tensorrt_rtx" if trt.__name__.startswith("tensorrt_rtx") else "tensorrt"
    cc = Cudart.get().compute_capability()
    man = load_manifest(deploy_dir, verify=False)
    var = man.variant(precision)
    logger = trt.Logger(trt.Logger.WARNING)
    out = []
    for kind in var.graphs:
        g = var.graphs[kind]
        builder = trt.Builder(logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(man.path(g.file))):
            raise RuntimeError(f"{g.file}: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        for spec in g.inputs:
            dims = [d if isinstance(d, int) else None for d in spec["shape"]]
            shape = lambda b: tuple(b if d is None else d for d in dims)  # noqa: E731
            profile.set_shape(spec["name"], shape(1), shape(opt_batch), shape(max_batch))
        config.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise RuntimeError(f"{g.file}: engine build failed")
        rel = f"{precision}/{kind}.engine"
        path = man.path(rel)
        path.write_bytes(bytes(blob))
        var.engines[kind] = EngineEntry(kind, rel, sha256_file(path), flavour, str(trt.__version__), "", cc, {})
        out.append(path)
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
