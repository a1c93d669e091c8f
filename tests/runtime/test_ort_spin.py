"""ORT thread-pool spinning: by default only where one session does a segment's work (the fused graph),
off for the four step-graph sessions (their idle pools would spin on the running one's cores); forced
either way on request; answers unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("spin,fused,expected", [(True, False, True), (False, False, False), (None, False, False),
                                                  (None, True, True), (False, True, False)])
def test_session_config_follows_spin(tiny_deploy, spin, fused, expected):
    from hrm.runtime.backends.ort import OrtBackend
    from hrm.runtime.backends.options import OrtOptions
    from hrm.runtime.deployment import load_deployment

    dep = load_deployment(tiny_deploy)
    if fused and "segment" not in dep.variant("fp32").graphs:
        pytest.skip("fixture deployment has no fused segment graph")
    with OrtBackend(dep, options=OrtOptions(threads=1, spin=spin, fused=fused)) as be:
        so = be.sessions["l_step"].get_session_options()
        for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            if expected:  # unset: ORT's default, which is to spin
                with pytest.raises(RuntimeError, match="does not have configuration"):
                    so.get_session_config_entry(key)
            else:
                assert so.get_session_config_entry(key) == "0"
        assert be.describe()["spin"] is expected


def test_cli_no_spin_same_answers(tiny_deploy):
    from click.testing import CliRunner

    from hrm.cli.run import main

    puzzles = ["1...2...3...4..." , "..3.1...2...4..."]
    outs = []
    for flags in ([], ["--spin", "--threads", "1"], ["--fused"]):
        res = CliRunner().invoke(main, [str(tiny_deploy), *puzzles, "--json", *flags])
        assert res.exit_code in (0, 1), res.output
        rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{\"id\"")]
        outs.append([(r["answer_tokens"], r["segments"]) for r in rows])
    assert len(outs[0]) == 2 and outs[0] == outs[1] == outs[2]


def test_cli_fused_refused_for_torch(tiny_deploy):
    from click.testing import CliRunner

    from hrm.cli.run import main

    res = CliRunner().invoke(main, [str(tiny_deploy), "1...2...3...4...", "--backend", "torch", "--fused"])
    assert res.exit_code == 2 and "torch backend has no fused option (ort, trt have it)" in res.output
