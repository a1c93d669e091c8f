"""hrm-bench measures the ort-contrib graphs side by side with the standard ones, from the same weights:
the rows run on their own deployment, agree with the eager reference, and carry ratios vs the standard
configuration. No timing assertions."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def contrib_doc(bench_deploy, tiny_ckpt_path, tmp_path_factory):
    from hrm.bench.options import BenchOptions
    from hrm.bench.runner import run
    from hrm.export import export_deployment

    contrib = tmp_path_factory.mktemp("bench-contrib") / "tiny"
    export_deployment(tiny_ckpt_path, contrib, precisions=["fp32"], validate=False, segment=True, ops="ort-contrib")
    options = BenchOptions(devices=["cpu"], backends=["ort", "torch"], precisions=["fp32"], batches=[1, 2],
                           quick=True, threads=1, puzzles=2, measure_floor=False,
                           ops_deployments={"ort-contrib": contrib})
    return run(bench_deploy, options), contrib


def test_contrib_rows_run_on_the_contrib_deployment(contrib_doc, bench_deploy):
    doc, contrib = contrib_doc
    t = doc["targets"]
    for name in ("ort-cpu/fp32", "ort-cpu-fused/fp32", "ort-cpu-contrib/fp32", "ort-cpu-contrib-fused/fp32"):
        assert t[name]["status"] == "ok", (name, t[name])
        assert set(t[name]["segment"]) == {"1", "2"}
    assert t["ort-cpu-contrib/fp32"]["config"]["ops"] == "ort-contrib"
    assert t["ort-cpu/fp32"]["config"]["ops"] == "standard"
    assert t["ort-cpu-contrib/fp32"]["backend"]["ops"] == "ort-contrib"  # the session really ran contrib graphs
    assert t["ort-cpu/fp32"]["backend"]["ops"] == "standard"
    assert doc["deployment"]["ops"] == {"bf16": "standard", "fp32": "standard"}
    assert doc["deployment"]["ops_deployments"] == {"standard": str(bench_deploy), "ort-contrib": str(contrib)}
    assert doc["settings"]["ops"] == ["standard", "ort-contrib"]


def test_contrib_rows_agree_and_compare_with_standard(contrib_doc):
    doc, _ = contrib_doc
    e = doc["targets"]["ort-cpu-contrib/fp32"]
    agree = e["agreement"]["torch-eager-fp32"]
    assert agree["fixed"]["token_agreement"] == 1.0 and agree["fixed"]["halting_agreement"] == 1.0
    assert agree["trace"]["diverges_at"] is None
    r = e["ratios"]["ort-standard"]
    assert r["reference"] == "ort-cpu/fp32"
    std = doc["targets"]["ort-cpu/fp32"]
    assert r["segment_b1"] == pytest.approx(e["segment"]["1"]["p50"] / std["segment"]["1"]["p50"], abs=1e-3)
    assert "ort-standard" in doc["targets"]["ort-cpu-contrib-fused/fp32"]["ratios"]
    assert "ort-standard" not in std.get("ratios", {})


def test_cli_exports_both_op_sets_from_a_checkpoint(tiny_ckpt_path, tmp_path):
    from hrm.cli.bench import main

    out = tmp_path / "bench.json"
    args = [str(tiny_ckpt_path), "--cache-dir", str(tmp_path / "cache"), "--backends", "ort", "--batch", "1",
            "--quick", "--segments-only", "--threads", "1", "--json", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["targets"]["ort-cpu/fp32"]["status"] == "ok"
    assert doc["targets"]["ort-cpu-contrib/fp32"]["status"] == "ok"
    dirs = doc["deployment"]["ops_deployments"]
    assert set(dirs) == {"standard", "ort-contrib"} and dirs["standard"] != dirs["ort-contrib"]
    assert "ort-contrib graphs vs the standard graphs" in result.output


def test_cli_refuses_engines_without_standard_graphs(tiny_ckpt_path, tmp_path):
    from hrm.cli.bench import main

    result = CliRunner().invoke(main, [str(tiny_ckpt_path), "--ops", "ort-contrib", "--build-engines",
                                       "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--build-engines needs the standard graphs" in result.output
    assert len(result.output.strip().splitlines()) == 1
