"""HaltingPolicy: validated once where it is made, overridden per call, the one stopping rule of every side."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hrm.halting import HaltingPolicy
from hrm.runtime.backends.options import OrtOptions


def test_validated_where_made():
    with pytest.raises(ValueError, match="halting must be one of"):
        HaltingPolicy("sometimes")
    with pytest.raises(ValueError, match="max_segments must be an integer >= 1"):
        HaltingPolicy("act", 0)
    with pytest.raises(ValueError, match="halt rule must be one of"):
        HaltingPolicy("act", 4, "q_halt > 1")
    with pytest.raises(ValueError, match="max_segments"):
        HaltingPolicy("act", 4).with_(max_segments=0)


def test_overrides_keep_what_they_do_not_name(tiny_cfg):
    base = HaltingPolicy.for_config(tiny_cfg)
    assert base == HaltingPolicy("fixed", tiny_cfg.halt_max_steps, "q_halt > q_continue")
    assert base.with_() is base
    assert base.with_("act") == HaltingPolicy("act", tiny_cfg.halt_max_steps)
    assert base.with_(max_segments=9).with_("act") == HaltingPolicy("act", 9)
    whole = HaltingPolicy("act", 3, "q_halt > 0")
    assert base.with_(whole) is whole and base.with_(whole, 5) == HaltingPolicy("act", 5, "q_halt > 0")
    assert whole.describe() == {"halting": "act", "max_segments": 3, "halt_rule": "q_halt > 0"}


def test_stops_by_mode_rule_and_cap():
    q_halt, q_cont = np.array([0.5, -0.2, 0.1]), np.array([0.1, -0.5, 0.3])
    hrm, trm, fixed = HaltingPolicy("act", 4), HaltingPolicy("act", 4, "q_halt > 0"), HaltingPolicy("fixed", 4)
    assert hrm.stops(1, q_halt, q_cont).tolist() == [True, True, False]
    assert trm.stops(1, q_halt, q_cont).tolist() == [True, False, True]
    assert fixed.stops(3, q_halt, q_cont) is False and fixed.stops(4, q_halt, q_cont) is True
    assert hrm.stops(4, -1.0, 1.0) and not hrm.stops(3, -1.0, 1.0)
    assert hrm.may_stop(1) and not fixed.may_stop(3) and fixed.may_stop(4)


def test_manifest_makes_the_deployment_policy(tiny_deploy, tmp_path):
    from hrm.errors import ManifestError
    from hrm.manifest import load_manifest, seal

    man = load_manifest(tiny_deploy)
    assert man.halting_policy() == HaltingPolicy("act", man.config.halt_max_steps, man.halt_rule)
    assert man.halting_policy("fixed", 7) == HaltingPolicy("fixed", 7, man.halt_rule)
    bad = tmp_path / "bad"
    shutil.copytree(tiny_deploy, bad)
    raw = json.loads((bad / "manifest.json").read_text())
    raw["recurrence"]["default_halting"] = "sometimes"
    (bad / "manifest.json").write_text(json.dumps(seal(raw)))  # a deliberate rewrite, to reach the check
    with pytest.raises(ManifestError, match=r"manifest.json \[recurrence.default_halting\]: is 'sometimes'"):
        load_manifest(bad)


def test_reference_and_runtime_take_the_same_policy(tiny_deploy, tiny_model, batch16):
    """One policy object drives hrm.model.solve and Session.solve to the same stops (TRM's rule here)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from hrm.model import solve
    from hrm.runtime import Session

    tokens, ids = batch16
    policy = HaltingPolicy("act", 5, "q_halt > 0")
    ref = solve(tiny_model, torch.from_numpy(tokens), torch.from_numpy(ids), halting=policy)
    with Session(tiny_deploy, batch=4, options=OrtOptions(threads=1)) as s:
        got = s.solve(tokens, puzzle_ids=ids, halting=policy)
    assert [r.segments for r in got] == ref.segments.tolist()
    assert all(r.policy is policy for r in got)
    hrm_rule = solve(tiny_model, torch.from_numpy(tokens), torch.from_numpy(ids), halting="act", max_segments=5)
    assert hrm_rule.segments.tolist() != ref.segments.tolist()
