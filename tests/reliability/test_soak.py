"""The soak benchmark's own logic on a small run: every answer is compared with solving it alone."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")

from hrm.runtime.backends.options import OrtOptions  # noqa: E402


def test_small_soak_checks_every_answer(rel_deploy):
    from hrm.bench.soak import SoakOptions, run_soak, summary

    doc = run_soak(rel_deploy, SoakOptions(n=120, threads=3, slots=4, pool=16, window=8,
                                           options=OrtOptions(threads=1)))
    assert doc["answered"] == 120 and doc["errors"] == 0 and doc["mismatches"] == 0
    assert doc["soak"]["pool"] <= 16 and doc["scheduler_segments"] > 0
    assert doc["session"]["threads"] == 1 and doc["session"]["batch"] == 4 and doc["session"]["halting"] == "act"
    assert all(doc["resident_mb"][k] for k in ("start", "middle", "end"))
    assert "all identical to solving alone" in summary(doc)


def test_soak_counts_a_mismatch(rel_deploy, monkeypatch):
    """A wrong answer from the scheduler path is counted, not hidden (the check can fail)."""
    from hrm.bench import soak

    real = soak._key
    calls = {"n": 0}

    def key(result):
        calls["n"] += 1
        k = real(result)
        return (k[0], k[1] + 1, k[2], k[3]) if calls["n"] == 20 else k  # one answer after the reference

    monkeypatch.setattr(soak, "_key", key)
    doc = soak.run_soak(rel_deploy, soak.SoakOptions(n=40, threads=2, slots=4, pool=8, window=4,
                                                     options=OrtOptions(threads=1)))
    assert doc["mismatches"] == 1 and doc["answered"] == 40


def test_soak_cli_takes_the_shared_runtime_options(rel_deploy, tmp_path):
    """hrm-bench --soak: device, precision, one --halting and --threads come from the shared option group
    and reach the soak's Session (recorded by Session.describe()); every answer is checked, exit 0."""
    import json

    from click.testing import CliRunner

    from hrm.cli.bench import main

    out = tmp_path / "soak.json"
    r = CliRunner().invoke(main, [str(rel_deploy), "--soak", "30", "--soak-threads", "2", "--batch", "4",
                                  "--threads", "1", "--halting", "fixed", "--max-segments", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["answered"] == 30 and doc["mismatches"] == 0 and "all identical to solving alone" in r.stdout
    s = doc["session"]
    assert (s["backend"], s["device"], s["precision"], s["threads"], s["batch"]) == ("ort", "cpu", "fp32", 1, 4)
    assert (s["halting"], s["max_segments"]) == ("fixed", 2) and doc["scheduler_segments"] > 0
