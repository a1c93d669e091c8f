"""TensorRT(-RTX) parse + build of the TRM graphs (attention + RoPE, and mlp_t).

The TRM engine set has one engine for the one network: ``l_step``'s, which the runtime also runs for
``h_step`` (:data:`hrm.manifest.GRAPH_ALIASES`), so no ``h_step`` engine is built or listed. Every graph
of every float precision is parsed in the default suite; the default build is the graph with TRM's
new op pattern (mlp_t's Transpose + sequence-axis SwiGLU/RMSNorm, fp16); building every graph of
both variants at every precision (24 engines, minutes on 2 cores) is ``extended``. Skipped, with the
reason, when neither ``tensorrt`` nor ``tensorrt_rtx`` is importable.
"""

from __future__ import annotations

import importlib.util

import pytest

from helpers import numpy_random_tensors, tiny_trm_config

from hrm.export.engine import EngineOptions, import_tensorrt, parse_onnx
from hrm.manifest import FLOAT_PRECISIONS, load_manifest

HAVE_TRT = any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx"))
pytestmark = [pytest.mark.trt,
              pytest.mark.skipif(not HAVE_TRT, reason="neither tensorrt nor tensorrt_rtx is importable "
                                                      "(pip install 'hrm-deploy[trt-check]')")]
VARIANTS = {"attention": dict(), "mlp_t": dict(mlp_t=True, pos_encodings="none", puzzle_emb_len=16)}


def _export(tmp_path, variant: str, precisions, engine: EngineOptions | None):
    from hrm.checkpoint import save_checkpoint
    from hrm.errors import ExportError
    from hrm.export import export_deployment

    config = tiny_trm_config(**VARIANTS[variant])
    ckpt = save_checkpoint(tmp_path / "trm.safetensors", config, numpy_random_tensors(config, seed=3))
    try:
        export_deployment(ckpt, tmp_path / "deploy", precisions=",".join(precisions), validate=False, segment=True,
                          engine=engine)
    except ExportError as exc:  # the parser's / builder's own message is the failure
        pytest.fail(str(exc), pytrace=False)
    return load_manifest(tmp_path / "deploy")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_trm_graph_parses(tmp_path, variant):
    trt = import_tensorrt()
    m = _export(tmp_path, variant, FLOAT_PRECISIONS, None)
    for precision in FLOAT_PRECISIONS:
        var = m.variants[precision]
        assert sorted(var.files) == ["embed", "heads", "l_step", "segment"]
        for graph in var.files.values():
            _builder, network, _parser = parse_onnx(trt, m.path(graph.file))
            assert network.num_inputs == len(graph.inputs)


def test_mlp_t_step_engine_builds(tmp_path):
    options = EngineOptions(min_batch=1, opt_batch=2, max_batch=8, builder_optimization_level=0, graphs=("l_step",))
    m = _export(tmp_path, "mlp_t", ("fp16",), options)
    m.verify_files(engines=True)
    assert set(m.variants["fp16"].engines) == {"l_step"}


@pytest.mark.extended
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_trm_graph_builds(tmp_path, variant):
    options = EngineOptions(min_batch=1, opt_batch=2, max_batch=8, builder_optimization_level=0)
    m = _export(tmp_path, variant, FLOAT_PRECISIONS, options)
    m.verify_files(engines=True)
    for precision in FLOAT_PRECISIONS:
        var = m.variants[precision]
        assert set(var.engines) == set(var.files) == {"embed", "l_step", "heads", "segment"}
        assert var.graphs["h_step"].alias.runs == "l_step"
        assert all(m.path(e.file).stat().st_size > 0 for e in var.engines.values())
