"""ORT thread-pool spinning: off on request (shared machines), answers unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("spin", [True, False])
def test_session_config_follows_spin(tiny_deploy, spin):
    from hrm.runtime.backends.ort import OrtBackend
    from hrm.runtime.deployment import load_deployment

    with OrtBackend(load_deployment(tiny_deploy), threads=1, spin=spin) as be:
        so = be.sessions["l_step"].get_session_options()
        for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            if spin:  # unset: ORT's default, which is to spin
                with pytest.raises(RuntimeError, match="does not have configuration"):
                    so.get_session_config_entry(key)
            else:
                assert so.get_session_config_entry(key) == "0"
        assert be.describe()["spin"] is spin


def test_cli_no_spin_same_answers(tiny_deploy):
    from click.testing import CliRunner

    from hrm.cli.run import main

    puzzles = ["1...2...3...4..." , "..3.1...2...4..."]
    outs = []
    for flags in ([], ["--no-spin", "--threads", "1"]):
        res = CliRunner().invoke(main, [str(tiny_deploy), *puzzles, "--json", *flags])
        assert res.exit_code in (0, 1), res.output
        rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{\"id\"")]
        outs.append([(r["answer_tokens"], r["segments"]) for r in rows])
    assert len(outs[0]) == 2 and outs[0] == outs[1]
