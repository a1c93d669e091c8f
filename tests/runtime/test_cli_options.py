"""The shared runtime option group: the same flags, meaning the same, in hrm-run / -eval / -parity / -bench / -demo /
-serve."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hrm.cli import bench, demo, eval as eval_cli, parity, run, serve
from hrm.cli.options import OptionError, parse_list

pytest.importorskip("onnxruntime")

COMMANDS = {"hrm-run": run.main, "hrm-eval": eval_cli.main, "hrm-parity": parity.main, "hrm-demo": demo.main,
            "hrm-bench": bench.main, "hrm-serve": serve.main}
# one backend each (hrm-bench measures all); hrm-serve refuses before any Ray cluster starts
MODEL_COMMANDS = ("hrm-run", "hrm-eval", "hrm-parity", "hrm-demo", "hrm-serve")


def test_one_list_parser():
    assert parse_list(" fp32, fp16,fp32 ", ("fp32", "fp16"), "--precision") == ("fp32", "fp16")
    with pytest.raises(OptionError, match="--halting 'fixed,sometimes': expected a comma-separated list of fixed, act"):
        parse_list("fixed,sometimes", ("fixed", "act"), "--halting")
    with pytest.raises(OptionError, match="--precision ' , ': expected"):
        parse_list(" , ", ("fp32",), "--precision")


def test_only_the_group_flags_a_command_runs_itself_may_be_left_out():
    from hrm.cli.options import runtime_options

    with pytest.raises(ValueError, match=r"omit: \['precision'\] not among"):
        runtime_options(omit=("precision",))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_the_flags(name):
    text = CliRunner().invoke(COMMANDS[name], ["--help"], terminal_width=200).output
    shared = ["--device", "--precision", "--halting", "--max-segments", "--threads", "--checkpoint"]
    if name in MODEL_COMMANDS:
        shared += ["--backend", "--fused", "--spin", "--cuda-graph", "--batch"]
    for flag in shared:
        assert flag in text, (name, flag)
    assert "1.16x" not in text  # the stale --fused figure


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_an_option_the_backend_lacks_is_refused_alike(name, tiny_deploy, tmp_path):
    target = {"hrm-demo": ["--out", str(tmp_path / "demo")], "hrm-run": [str(tiny_deploy), "1...2...3...4..."]}
    r = CliRunner().invoke(COMMANDS[name], [*target.get(name, [str(tiny_deploy)]), "--backend", "torch", "--fused"])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines()[-1] == "error: --fused: the torch backend has no fused option (ort, trt have it)"


@pytest.mark.parametrize("name", ["hrm-eval", "hrm-parity", "hrm-bench"])
def test_halting_lists_share_one_parser(name, tiny_deploy):
    r = CliRunner().invoke(COMMANDS[name], [str(tiny_deploy), "--halting", "fixed,sometimes"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: --halting 'fixed,sometimes': expected a comma-separated list of fixed, act"]


def test_parity_fused_gates_the_fused_graph(tiny_deploy, tmp_path):
    """A change to the fused segment graph only: the step graphs pass, --fused runs (and fails) the fused one."""
    pytest.importorskip("torch")
    from deploy_helpers import copy_deployment, patch_initializer

    d = copy_deployment(tiny_deploy, tmp_path / "fused-perturbed")
    rng = np.random.default_rng(0)
    patch_initializer(d, "fp32", "segment", "lm_head.weight", lambda w: w + rng.standard_normal(w.shape) * w.std())
    args = [str(d), "--n", "12", "--batch", "6", "--threads", "1", "--json"]
    steps = CliRunner().invoke(parity.main, args)
    assert steps.exit_code == 0, steps.output
    assert json.loads(steps.output)["meta"]["options"]["fused"] is False
    fused = CliRunner().invoke(parity.main, [*args, "--fused"])
    assert fused.exit_code == 1, fused.output
    rep = json.loads(fused.output)
    assert rep["meta"]["options"]["fused"] is True and rep["meta"]["options"]["threads"] == 1
    assert not rep["passed"] and any(not g["passed"] for g in rep["gates"])


def test_parity_runs_the_halting_modes_asked(tiny_deploy):
    pytest.importorskip("torch")
    r = CliRunner().invoke(parity.main, [str(tiny_deploy), "--n", "6", "--halting", "act", "--max-segments", "3",
                                         "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert [c["halting"] for c in rep["comparisons"]] == ["act"] and rep["meta"]["max_segments"] == 3
