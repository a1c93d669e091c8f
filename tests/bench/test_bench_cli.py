"""hrm-bench end to end on the tiny deployment (--quick): the JSON document's keys, skip reasons, consistent
throughput counts, ratios; and one-line errors for bad input. No timing assertions."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hrm.cli.bench import main

pytest.importorskip("torch")

EXPECTED = [f"{label}/{p}" for label in (
    "ort-cpu", "ort-cpu-fused", "ort-cpu-contrib", "ort-cpu-contrib-fused", "trt-cpu", "torch-eager-cpu",
    "ort-cuda", "ort-cuda-fused", "ort-cuda-graph", "ort-cuda-fused-graph", "ort-cuda-contrib", "ort-cuda-contrib-fused",
    "ort-cuda-contrib-graph", "ort-cuda-contrib-fused-graph", "trt-cuda", "trt-cuda-graph", "torch-eager-cuda",
    "torch-eager-cuda-graph") for p in ("fp32", "fp16")]


@pytest.fixture(scope="module")
def quick_doc(bench_deploy, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchjson") / "bench.json"
    args = [str(bench_deploy), "--device", "cpu", "--device", "cuda", "--backends", "ort,trt,torch",
            "--precisions", "fp32,fp16", "--batch", "1", "--batch", "3", "--quick", "--threads", "1",
            "--puzzles", "3", "--json", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_every_configuration_is_reported(quick_doc):
    doc, _ = quick_doc
    assert doc["schema"] == "hrm-bench/2" and doc["complete"] is True
    assert sorted(doc["targets"]) == sorted(EXPECTED)
    for name in ("ort-cpu/fp32", "ort-cpu-fused/fp32", "torch-eager-cpu/fp32"):
        assert doc["targets"][name]["status"] == "ok", doc["targets"][name]
    for name, e in doc["targets"].items():
        assert e["status"] in ("ok", "skipped"), (name, e)
        if e["status"] == "skipped":
            assert e["reason"], name


def test_skip_reasons_name_the_cause(quick_doc, monkeypatch):
    doc, _ = quick_doc
    t = doc["targets"]
    assert "no fp16 variant" in t["ort-cpu/fp16"]["reason"]
    assert "CUDA only" in t["trt-cpu/fp32"]["reason"]
    # a standard deployment directory has no ort-contrib graphs: those rows say how to get them
    assert "no ort-contrib deployment" in t["ort-cpu-contrib/fp32"]["reason"]
    assert "hrm-export --ops ort-contrib" in t["ort-cpu-contrib/fp32"]["reason"]
    from hrm.bench.targets import cuda_problem

    if cuda_problem():  # this machine: every CUDA configuration skipped with the same explanation
        for name in EXPECTED:
            if "-cuda" in name and name.endswith("fp32"):
                assert t[name]["status"] == "skipped" and t[name]["reason"] == cuda_problem()


def test_environment_and_settings(quick_doc):
    doc, _ = quick_doc
    env = doc["environment"]
    assert env["threads"]["requested"] == 1 and env["threads"]["torch_intra_op"] == 1
    assert "onnxruntime" in env["versions"] and "torch" in env["versions"]
    assert env["device_names"]["cpu"]
    assert doc["command"][0].startswith("hrm-bench ") and " --quick" in doc["command"][0]
    assert "--batch 1 --batch 3" in doc["command"][0] and "--device cpu --device cuda" in doc["command"][0]
    assert doc["settings"]["batches"] == [1, 3] and doc["settings"]["halting"] == ["fixed", "act"]
    assert doc["deployment"]["parameters"] > 0 and doc["deployment"]["task"] == "sudoku"
    floor = doc["floor"]["cpu"]["segment"]["fp32"]
    assert set(floor) == {"1", "3"} and floor["3"]["flops"] == 3 * floor["1"]["flops"]
    assert "skipped" in doc["floor"]["cuda"] or "peaks" in doc["floor"]["cuda"]


def test_measurements_are_consistent(quick_doc):
    doc, _ = quick_doc
    cap = doc["settings"]["max_segments"]
    for name in ("ort-cpu/fp32", "ort-cpu-fused/fp32", "torch-eager-cpu/fp32"):
        e = doc["targets"][name]
        for B in ("1", "3"):
            s = e["segment"][B]
            assert s["n"] >= 2 and s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
        for h in ("fixed", "act"):
            sv = e["solve"][h]
            assert sv["n"] == len(sv["segments"]) == len(sv["answers"]) >= 2
            assert all(1 <= n <= cap for n in sv["segments"])
            if h == "fixed":
                assert set(sv["segments"]) == {cap}
            for B in (1, 3):
                tp = e["throughput"][str(B)][h]
                assert tp["puzzles_per_s"] == pytest.approx(tp["puzzles"] / tp["elapsed_s"], rel=1e-3)
                assert tp["puzzles"] % B == 0
                assert tp["mean_segments"] * tp["puzzles"] == pytest.approx(tp["puzzle_segments"], abs=0.01)
                assert tp["scheduler_steps"] >= math.ceil(tp["puzzle_segments"] / B)
                assert 0 < tp["slot_utilisation"] <= 1
                if h == "fixed":
                    assert tp["mean_segments"] == cap
                    assert tp["scheduler_steps"] == cap * tp["puzzles"] // B


def test_ratios_and_agreement(quick_doc):
    doc, _ = quick_doc
    t = doc["targets"]
    ref = t["torch-eager-cpu/fp32"]
    r = t["ort-cpu/fp32"]["ratios"]["torch-eager-fp32"]
    assert r["reference"] == "torch-eager-cpu/fp32"
    assert r["segment_b1"] == pytest.approx(t["ort-cpu/fp32"]["segment"]["1"]["p50"] / ref["segment"]["1"]["p50"],
                                            abs=1e-3)
    tp = "throughput_b3_act"
    assert r[tp] == pytest.approx(t["ort-cpu/fp32"]["throughput"]["3"]["act"]["puzzles_per_s_median"]
                                  / ref["throughput"]["3"]["act"]["puzzles_per_s_median"], abs=1e-3)
    assert "ratios" not in ref or "torch-eager-fp32" not in ref["ratios"]  # not compared with itself
    agree = t["ort-cpu/fp32"]["agreement"]["torch-eager-fp32"]
    assert agree["fixed"]["token_agreement"] == 1.0 and agree["fixed"]["halting_agreement"] == 1.0  # fp32 ORT = the reference
    trace = agree["trace"]
    assert len(trace["token_agreement_per_segment"]) == doc["settings"]["max_segments"]
    assert trace["diverges_at"] is None and trace["q_halt_seg1_abs_diff"] < 1e-4


def test_human_table(quick_doc):
    _, output = quick_doc
    assert "ort-cpu/fp32" in output and "per segment" in output and "solve at batch 1" in output
    assert "ort-cpu/fp32 / torch-eager-cpu/fp32: segment B=1" in output
    assert "not measured" in output and "no fp16 variant" in output


def test_missing_path_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hrm.cli.bench", str(tmp_path / "nope")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no such file or directory" in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("args, needle", [
    ([], "exactly one of PATH"),
    (["--random-tiny", "--backends", "ort,onnx"], "--backends 'ort,onnx'"),
    (["--random-tiny", "--precisions", "fp8"], "--precision 'fp8'"),
    (["--random-tiny", "--halting", "sometimes"], "--halting"),
])
def test_bad_options_are_one_line(args, needle, tmp_path):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_not_a_deployment_is_one_line(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    result = CliRunner().invoke(main, [str(tmp_path / "x.txt")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "neither a deployment directory" in result.output


def test_checkpoint_is_exported_once_to_the_cache(tiny_ckpt_path, tmp_path):
    from hrm.bench.models import resolve_path

    first, how = resolve_path(tiny_ckpt_path, ["fp32"], cache_dir=tmp_path)
    assert how == "checkpoint" and (first / "manifest.json").is_file()
    stamp = (first / "manifest.json").stat().st_mtime_ns
    again, _ = resolve_path(tiny_ckpt_path, ["fp32"], cache_dir=tmp_path)
    assert again == first and (again / "manifest.json").stat().st_mtime_ns == stamp  # reused, not re-exported
    same, how = resolve_path(first, ["fp32"])
    assert same == first and how == "deployment"


def test_int8_rows(tmp_path):
    """--precisions fp32,int8: the int8 graphs are exported and timed on ORT CPU next to fp32; torch says
    why it has no int8 row, and the floor says why it has no int8 peak (no error entries)."""
    out = tmp_path / "bench.json"
    args = ["--random-tiny", "--backends", "ort,torch", "--ops", "standard", "--precisions", "fp32,int8",
            "--segments-only", "--quick", "--threads", "1", "--json", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    t = doc["targets"]
    for name in ("ort-cpu/int8", "ort-cpu-fused/int8"):
        assert t[name]["status"] == "ok" and t[name]["segment"]["1"]["p50"] > 0
    assert t["torch-eager-cpu/int8"]["status"] == "skipped" and "ort-on-CPU" in t["torch-eager-cpu/int8"]["reason"]
    assert "MatMulInteger" in doc["floor"]["cpu"]["peaks"]["int8"]["skipped"]
