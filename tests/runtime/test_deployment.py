"""Opening deployments: hashes verified, clear errors, init states, dtype helpers, timing JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.errors import ManifestError
from hrm.runtime import load_deployment
from hrm.runtime.dtypes import from_float32, to_float32


def test_load_and_specs(tiny_deploy, tiny_cfg):
    dep = load_deployment(tiny_deploy)
    assert dep.precisions == ["fp16", "fp32"]
    ins, outs = dep.io_specs("fp32", "l_step", 5)
    assert [s.name for s in ins] == ["z_L", "z_H", "x"] and ins[0].shape == (5, tiny_cfg.total_seq_len, 64)
    ins, outs = dep.io_specs("fp16", "heads", 2)
    assert [(s.name, s.dtype) for s in outs] == [("logits", "float16"), ("q_halt", "float32"), ("q_continue", "float32")]
    H, L = dep.init_rows("fp16")
    assert H.shape == (tiny_cfg.total_seq_len, 64) and H.dtype == np.float16
    assert dep.task is not None and dep.task.name == "sudoku"


def test_tampered_graph_and_missing_variant(tiny_deploy, tmp_path):
    from deploy_helpers import copy_deployment

    d = copy_deployment(tiny_deploy, tmp_path / "d")
    with pytest.raises(ManifestError, match="no 'bf16' variant"):
        load_deployment(d).variant("bf16")
    with open(load_deployment(d).manifest.path(load_deployment(d).variant("fp32").graphs["heads"].file), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match="heads.onnx: sha256"):
        load_deployment(d)
    load_deployment(d, precision="fp16")  # only the asked-for variant is re-hashed


def test_torch_backend_refuses_a_changed_source_checkpoint(tiny_deploy, tmp_path):
    pytest.importorskip("torch")
    from deploy_helpers import copy_deployment

    from hrm.manifest import load_manifest
    from hrm.runtime import Session

    d = copy_deployment(tiny_deploy, tmp_path / "d")
    man = load_manifest(d, verify=False)
    man.source["sha256"] = "f" * 64
    man.save()
    with pytest.raises(ManifestError, match="differs from the manifest"):
        Session(d, backend="torch").activate()


def test_bf16_helpers_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 100
    x[:3] = [np.inf, -np.inf, 0.0]
    bits = from_float32(x, "bfloat16")
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bits, want)
    np.testing.assert_array_equal(to_float32(bits, "bfloat16"), torch.from_numpy(x).to(torch.bfloat16).float().numpy())


def test_segment_latency_through_hrm_bench(tiny_deploy):
    """Per-segment latency (what the folded-in runtime.timing printed) is hrm-bench --segments-only."""
    pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    from hrm.cli.bench import main

    r = CliRunner().invoke(main, [str(tiny_deploy), "--backends", "ort", "--ops", "standard", "--batch", "1",
                                  "--batch", "3", "--segments-only", "--quick", "--threads", "1", "--json", "-"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    e = out["targets"]["ort-cpu/fp32"]
    assert sorted(e["segment"]) == ["1", "3"] and e["segment"]["3"]["p50"] > 0 and e["backend"]["backend"] == "ort"
