"""hrm-doctor on this (CPU) machine: every component gets a verdict, what cannot run here says why, and the
exit code is 0 for a working deployment and 1 for a broken one (tampered bytes; tampered weights)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from hrm.cli.doctor import main
from hrm.doctor import BUNDLED, FAILS, NOT_AVAILABLE, VERDICTS, WORKS, run_doctor

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
COMPONENTS = ("python", "numpy", "CUDA", "GPU", "TensorRT", "ONNX Runtime", "Polygraphy")


@pytest.fixture(scope="module")
def bundled_dir(tmp_path_factory):
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("doctor") / "sudoku4"
    export_deployment(BUNDLED, out, precisions="fp32,fp16", validate=False, segment=True)
    return out


@pytest.fixture(scope="module")
def report():
    return run_doctor(puzzles=8, batch=4)


def _lines(rep):
    return {c.name: c for c in rep.checks}


def test_every_component_and_path_step_has_a_verdict(report):
    lines = _lines(report)
    for name in COMPONENTS:
        assert name in lines and lines[name].verdict in VERDICTS and lines[name].detail, name
    for name in ("deployment", "solve ort-cpu/fp32", "solve ort-cpu/fp16", "solve ort-cuda/fp32", "solve trt-cuda/fp32",
                 "engines fp32", "cuda graphs trt", "cuda graphs ort", "time ort-cpu/fp32"):
        assert name in lines, name
    assert lines["deployment"].verdict == WORKS and "sha256 verified" in lines["deployment"].detail
    assert lines["solve ort-cpu/fp32"].verdict == WORKS
    assert lines["solve ort-cpu/fp16"].verdict == WORKS and "answers equal ort-cpu/fp32" in lines["solve ort-cpu/fp16"].detail
    assert "ms per segment" in lines["time ort-cpu/fp32"].detail
    assert report.exit_code == 0, [c for c in report.checks if c.verdict == FAILS]


def test_what_cannot_run_here_says_why(report):
    from hrm.runtime.gpu import probe

    lines = _lines(report)
    gpu = probe()
    if gpu.available:
        pytest.skip("this machine has a GPU")
    assert lines["CUDA"].verdict == NOT_AVAILABLE and lines["CUDA"].detail == gpu.reason
    for name in ("solve ort-cuda/fp32", "solve trt-cuda/fp16"):
        assert lines[name].verdict == NOT_AVAILABLE and gpu.reason in lines[name].detail
    assert lines["cuda graphs trt"].verdict == NOT_AVAILABLE
    # TensorRT-RTX builds engines without a GPU; full TensorRT would need one
    if lines["TensorRT"].verdict == WORKS and lines["TensorRT"].detail.startswith("tensorrt_rtx"):
        assert lines["engines fp32"].verdict == WORKS and "8.6,8.9,12.0" in lines["engines fp32"].detail
    elif lines["TensorRT"].verdict == NOT_AVAILABLE:
        assert lines["engines fp32"].verdict == NOT_AVAILABLE


def _cli(args, monkeypatch):
    monkeypatch.setenv("HRM_TRT_FLAVOUR", "tensorrt")  # not importable here: skip engine builds, keep it fast
    return CliRunner().invoke(main, args)  # click >= 8.2: result.stdout is stdout alone


def test_cli_exit_zero_and_clean_json_for_a_working_deployment(bundled_dir, monkeypatch):
    res = _cli([str(bundled_dir), "--json", "--no-timing", "--puzzles", "8"], monkeypatch)
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["exit_code"] == 0, res.output
    lines = {c["name"]: c for c in doc["checks"]}
    assert lines["TensorRT"]["verdict"] == NOT_AVAILABLE and "not importable" in lines["TensorRT"]["detail"]
    assert lines["engines fp16"]["verdict"] == NOT_AVAILABLE


def test_cli_fails_on_tampered_graph_bytes(bundled_dir, tmp_path, monkeypatch):
    from hrm.manifest import load_manifest

    d = shutil.copytree(bundled_dir, tmp_path / "tampered")
    man = load_manifest(d, verify=False)
    graph = man.path(man.variant("fp32").graphs["l_step"].file)  # v<N>/fp32/l_step.onnx
    data = bytearray(graph.read_bytes())
    data[-8] ^= 0xFF
    graph.write_bytes(bytes(data))
    res = _cli([str(d), "--no-timing", "--puzzles", "4"], monkeypatch)
    assert res.exit_code == 1, res.output
    doc = _cli([str(d), "--json", "--no-timing", "--puzzles", "4"], monkeypatch)
    line = next(c for c in json.loads(doc.stdout)["checks"] if c["name"] == "deployment")
    assert line["verdict"] == FAILS and "l_step.onnx" in line["detail"] and "sha256" in line["detail"]


def test_cli_fails_when_a_variant_answers_differently(bundled_dir, tmp_path, monkeypatch):
    """Weights changed and re-hashed: the files verify, but fp16 no longer answers like fp32."""
    from deploy_helpers import patch_initializer

    import onnx

    from hrm.manifest import load_manifest

    d = shutil.copytree(bundled_dir, tmp_path / "wrong")
    man = load_manifest(d, verify=False)
    model = onnx.load(man.path(man.variant("fp16").graphs["l_step"].file), load_external_data=False)
    name = next(i.name for i in model.graph.initializer if len(i.dims) == 2)
    patch_initializer(d, "fp16", "l_step", name, lambda w: -w)
    res = _cli([str(d), "--json", "--no-timing", "--puzzles", "8"], monkeypatch)
    doc = json.loads(res.stdout)
    line = next(c for c in doc["checks"] if c["name"] == "solve ort-cpu/fp16")
    assert res.exit_code == 1 and doc["exit_code"] == 1 and line["verdict"] == FAILS and "accuracy" in line["detail"]


def test_wheel_install_without_the_bundled_model_says_how(tmp_path, monkeypatch):
    res = _cli(["--checkpoint", str(tmp_path / "sudoku4.safetensors"), "--json", "--no-timing"], monkeypatch)
    doc = json.loads(res.stdout)
    line = next(c for c in doc["checks"] if c["name"] == "deployment")
    assert line["verdict"] == NOT_AVAILABLE and "--checkpoint" in line["detail"] and res.exit_code == 0


def test_cli_takes_the_shared_runtime_options(monkeypatch):
    """--precision / --max-segments / --batch / --threads mean what they mean in every command; what cannot
    run a variant is the manifest's rule (int8: the ORT CPU path only), said before anything else."""
    res = _cli(["--precision", "int8", "--max-segments", "2", "--batch", "4", "--threads", "1", "--puzzles", "4",
                "--json", "--no-timing"], monkeypatch)
    doc = json.loads(res.stdout)
    meta = doc["meta"]
    # fp32 is always there: ORT CPU fp32 is the reference every other run is compared with
    assert (meta["precisions"], meta["max_segments"], meta["batch"]) == (["fp32", "int8"], 2, 4), res.output
    assert meta["ort_options"]["threads"] == 1
    lines = {c["name"]: c for c in doc["checks"]}
    assert "deployment" in lines and "variants fp32, int8" in lines["deployment"]["detail"]
    assert not any(name.endswith("/fp16") for name in lines)  # only the precisions asked for
    assert lines["solve ort-cpu/fp32"]["verdict"] == WORKS and "2 segments" in lines["solve ort-cpu/fp32"]["detail"]
    assert lines["solve ort-cpu/int8"]["verdict"] in (WORKS, FAILS)  # it runs; the gate decides
    refused = lines["solve ort-cuda/int8"]
    assert refused["verdict"] == NOT_AVAILABLE and "an ort-on-CPU path only" in refused["detail"]
    # what the doctor proves itself is not an option here
    r = CliRunner().invoke(main, ["--backend", "trt"])
    assert r.exit_code == 2 and "No such option '--backend'" in r.output


def test_a_trm_deployment_gets_engines_for_its_graph_files_only(tmp_path):
    """TRM's h_step runs the l_step graph: the doctor builds (and records) one engine per graph file, none
    for the alias, and the deployment passes (the bundled TRM, fp32)."""
    from hrm.export import export_deployment
    from hrm.manifest import load_manifest

    pytest.importorskip("tensorrt_rtx")
    dep = tmp_path / "trm"
    export_deployment(BUNDLED.parent / "sudoku4-trm.safetensors", dep, precisions="fp32", validate=False)
    rep = run_doctor(dep, puzzles=4, batch=2, time_segments=False, precisions=["fp32"])
    lines = _lines(rep)
    assert lines["engines fp32"].verdict == WORKS, lines["engines fp32"].detail
    assert lines["engines fp32"].detail.startswith("3 engines"), lines["engines fp32"].detail
    assert rep.exit_code == 0, [c for c in rep.checks if c.verdict == FAILS]
    assert load_manifest(dep).variants["fp32"].engines == {}  # the doctor worked on a copy
