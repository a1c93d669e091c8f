"""TensorRT(-RTX) parse + build of every graph and precision of a small model (no GPU needed for RTX).

Skipped, with the reason, when neither ``tensorrt`` nor ``tensorrt_rtx`` is importable. A graph that
does not parse fails the test with the parser's own error message.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from hrm.export.engine import EngineOptions, import_tensorrt, parse_onnx
from hrm.manifest import FLOAT_PRECISIONS, STEP_GRAPHS, load_manifest

HAVE_TRT = any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx"))
pytestmark = [pytest.mark.trt,
              pytest.mark.skipif(not HAVE_TRT, reason="neither tensorrt nor tensorrt_rtx is importable "
                                                      "(pip install 'hrm-deploy[trt-check]')")]


@pytest.fixture(scope="module")
def engine_export(tmp_path_factory, tiny_ckpt_path):
    from hrm.errors import ExportError
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("engines") / "deploy"
    cache = out.parent / "timing.cache"
    options = EngineOptions(min_batch=1, opt_batch=4, max_batch=16, timing_cache=cache, builder_optimization_level=1)
    try:
        report = export_deployment(tiny_ckpt_path, out, precisions="fp32,fp16,bf16", validate=False, engine=options)
    except ExportError as exc:  # surface the parser's / builder's own message as the failure
        pytest.fail(str(exc), pytrace=False)
    return report, out, cache


def test_every_graph_parses(tiny_export):
    """Parse the validated tiny export's graphs (fused segment included) as strongly typed networks."""
    from hrm.errors import ExportError

    _, out = tiny_export
    trt = import_tensorrt()
    for precision in FLOAT_PRECISIONS:
        for kind in (*STEP_GRAPHS, "segment"):
            path = out / "v1" / precision / f"{kind}.onnx"
            try:
                _builder, network, _parser = parse_onnx(trt, path)
            except ExportError as exc:
                pytest.fail(str(exc), pytrace=False)
            assert network.num_inputs == len(json.loads((out / "manifest.json").read_text())
                                             ["variants"][precision]["graphs"][kind]["inputs"])


def test_every_graph_builds(engine_export):
    report, out, cache = engine_export
    trt = import_tensorrt()
    m = load_manifest(out, verify=True)
    m.verify_files(engines=True)
    for precision in FLOAT_PRECISIONS:
        engines = m.variants[precision].engines
        assert set(engines) == set(STEP_GRAPHS)
        for kind, e in engines.items():
            assert e.file == f"v1/{precision}/{kind}.engine" and (out / e.file).stat().st_size > 0
            assert e.flavour == trt.flavour and e.trt_version == trt.version
            assert e.options["min_batch"] == 1 and e.options["opt_batch"] == 4 and e.options["max_batch"] == 16
            assert e.options["builder_optimization_level"] == 1 and e.options["strongly_typed"]
            assert e.device and e.compute_capability
            # fp32 engines are the reference: TF32 (on by default in TensorRT) is cleared and recorded
            assert e.options.get("tf32") is (False if precision == "fp32" else None)
            if trt.flavour == "tensorrt_rtx":
                assert e.compute_capability == "8.6,8.9,12.0"  # the default targets, recorded as they are
                assert e.options["require_user_allocation"] is True
            if trt.flavour == "tensorrt_rtx" and not _has_gpu():
                assert e.device == "none (built without GPU)"
    assert m.exporter["tensorrt"] == {"flavour": trt.flavour, "version": trt.version}
    if trt.flavour == "tensorrt":
        assert cache.is_file() and cache.stat().st_size > 0
    else:  # TensorRT-RTX has no timing cache; the option is recorded as unused
        assert not cache.exists() and "timing_cache_note" in m.variants["fp32"].engines["l_step"].options
    rows = [r for r in report.graphs if r.engine_file]
    assert len(rows) == len(FLOAT_PRECISIONS) * len(STEP_GRAPHS) and all(r.build_seconds > 0 for r in rows)


def test_parser_error_is_reported(tmp_path):
    """A graph TensorRT cannot parse raises ExportError carrying the parser's message."""
    import onnx
    from onnx import TensorProto, helper

    from hrm.errors import ExportError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="hrm.bogus")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("hrm.bogus", 1)])
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match=r"ONNX parser failed: .*NoSuchOp"):
        parse_onnx(import_tensorrt(), path)


def test_unknown_flavour():
    from hrm.errors import ExportError

    with pytest.raises(ExportError, match="unknown TensorRT flavour"):
        import_tensorrt("tensorrt_llm")


def test_tensorrt_logs_go_to_logging_never_to_stdout(tmp_path, capfd, caplog):
    """A failing parse makes TensorRT log errors: they reach Python logging (stderr), stdout stays empty
    (it carries hrm-run --json / hrm-bench --json -)."""
    import logging

    import onnx
    from onnx import TensorProto, helper

    from hrm.errors import ExportError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    model = helper.make_model(helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="hrm.bogus")],
                                                "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("hrm.bogus", 1)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with caplog.at_level(logging.DEBUG, logger="hrm.tensorrt"), pytest.raises(ExportError):
        parse_onnx(import_tensorrt(), tmp_path / "bad.onnx")
    assert capfd.readouterr().out == ""
    assert any("NoSuchOp" in r.getMessage() for r in caplog.records if r.name == "hrm.tensorrt")


def test_one_logger_per_process():
    from hrm.runtime.trt_lib import logger

    trt = import_tensorrt()
    assert logger(trt) is logger(import_tensorrt())


def _has_gpu() -> bool:
    from hrm.runtime.gpu import probe

    return probe().available
