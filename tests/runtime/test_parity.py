"""hrm-parity passes its gates on a faithful export and fails when a weight of the export is changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from deploy_helpers import copy_deployment, patch_initializer  # noqa: E402

from hrm.cli.parity import main  # noqa: E402
from hrm.evaluation.parity import Comparison, evaluate_gates  # noqa: E402


def parity(deploy, *args):
    return CliRunner().invoke(main, [str(deploy), "--n", "12", "--batch", "6", *args])


def test_gates_pass_on_the_export(tiny_deploy):
    r = parity(tiny_deploy, "--precision", "fp32,fp16", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["passed"] and len(rep["gates"]) == 4
    by = {(c["precision"], c["halting"]): c for c in rep["comparisons"]}
    assert by[("fp32", "fixed")]["answer_agreement"] == 1.0 and by[("fp32", "act")]["halting_agreement"] == 1.0
    assert by[("fp32", "fixed")]["token_agreement"] == 1.0
    assert len(by[("fp32", "fixed")]["drift_mean"]) == 4  # one per segment (halt_max_steps)
    assert max(by[("fp32", "fixed")]["drift_max"]) < 1e-4
    assert 1e-5 < max(by[("fp16", "fixed")]["drift_max"]) < 5e-2
    assert by[("fp16", "act")]["accuracy"] is not None  # generated puzzles carry labels


def test_gate_fails_when_an_export_weight_changes(tiny_deploy, tmp_path):
    d = copy_deployment(tiny_deploy, tmp_path / "perturbed")
    rng = np.random.default_rng(0)
    patch_initializer(d, "fp32", "heads", "lm_head.weight", lambda w: w + rng.standard_normal(w.shape) * w.std())
    r = parity(d, "--precision", "fp32")
    assert r.exit_code == 1, r.output
    assert "FAIL fp32 answers identical" in r.output and "gate failed" in r.output


def test_table_output(tiny_deploy):
    r = parity(tiny_deploy, "--precision", "fp32", "--dataset", "generated")
    assert r.exit_code == 0, r.output
    assert "PASS fp32 answers identical (fp32, fixed)" in r.output and "z_H drift per segment" in r.output


def test_dataset_npz_and_official_folder(tiny_deploy, tmp_path):
    from hrm.runtime.deployment import load_deployment
    from hrm.tasks.dataset import write_official_split

    task = load_deployment(tiny_deploy).task
    puzzles = task.generate(6, np.random.default_rng(5))
    np.savez(tmp_path / "d.npz", inputs=np.stack([p.tokens for p in puzzles]).astype(np.uint8),
             labels=np.stack([p.label for p in puzzles]).astype(np.uint8), puzzle_ids=np.zeros(6, np.int32))
    r = parity(tiny_deploy, "--dataset", str(tmp_path / "d.npz"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["meta"]["n"] == 6
    write_official_split(tmp_path / "official", "test", np.stack([p.tokens for p in puzzles]),
                         np.stack([p.label for p in puzzles]), task=task)
    r = parity(tiny_deploy, "--dataset", str(tmp_path / "official"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["meta"]["n"] == 6


def test_low_precision_gate_is_about_accuracy():
    ok = Comparison("fp16", "act", 1000, 0.9, 0.99, 0.503, 0.500)
    bad = Comparison("bf16", "act", 1000, 0.9, 0.99, 0.494, 0.500)
    none = Comparison("fp16", "fixed", 10, 1.0, 1.0, None, None)
    g = evaluate_gates([ok, bad, none])
    assert [x.passed for x in g] == [True, False, False]
    assert "no labels" in g[2].detail
