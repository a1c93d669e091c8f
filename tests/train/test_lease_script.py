"""deploy/gpu/h100_lease.sh, dry run on the CPU: the background chain trains Sudoku then maze and
``watch`` brings back checkpoints, metrics and logs. What a GPU lease relies on, minus the GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "gpu" / "h100_lease.sh"
TINY = ("--arch hidden_size=32 --arch num_heads=2 --arch H_layers=1 --arch L_layers=1 --arch expansion=2 "
        "--arch halt_max_steps=2 --batch-size 8 --steps 3 --eval-every 3 --eval-batch-size 16 --log-every 1 "
        "--threads 1 --no-compile")


def _run(args, env, timeout=240):
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=SCRIPT.parents[2])


def _data_tgz(tmp_path):
    from hrm.tasks.datagen import generate_folder

    generate_folder("sudoku", tmp_path / "data" / "sudoku9", 24, 8, seed=3, size=9, workers=1)
    generate_folder("maze", tmp_path / "data" / "maze7", 24, 8, seed=3, size=7)
    tgz = tmp_path / "data.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in ("sudoku9", "maze7"):
            tar.add(tmp_path / "data" / name, arcname=name)
    return tgz


def _env(runs):
    return {**os.environ, "LEASE_DEVICE": "cpu", "LEASE_RUNS": str(runs), "LEASE_EXTRA": TINY,
           "LEASE_NO_INSTALL": "1", "LEASE_SETTLE": "0", "LEASE_POLL": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_chain_trains_both_models_in_turn_and_watch_collects(tmp_path):
    from hrm.checkpoint import load_checkpoint

    tgz = _data_tgz(tmp_path)
    runs, out = tmp_path / "runs", tmp_path / "out"
    env = _env(runs)
    started = _run(["train", str(tgz), "120", "120", "7"], env)
    assert started.returncode == 0, started.stderr
    watched = _run(["watch", str(out), "200"], env)
    assert watched.returncode == 0, watched.stderr
    assert (runs / "chain.done").is_file(), (runs / "chain.log").read_text()
    for name, task, size in (("sudoku9", "sudoku", 9), ("maze", "maze", 7)):
        log = (out / f"train_{name}.log").read_text()
        assert "failed" not in log, log
        assert (out / f"{name}.metrics.jsonl").read_text().count('"kind": "eval"') >= 1
        ckpt = load_checkpoint(out / f"{name}.best.safetensors")
        assert ckpt.task["name"] == task and ckpt.task["params"]["size"] == size
        assert ckpt.config.hidden_size == 32  # LEASE_EXTRA came last and won over the preset


def test_zero_budget_skips_a_model_and_a_lease_continues_another(tmp_path):
    tgz = _data_tgz(tmp_path)
    runs, out = tmp_path / "runs", tmp_path / "out"
    env = _env(runs)
    assert _run(["train", str(tgz), "0", "120", "7"], env).returncode == 0
    assert _run(["watch", str(out), "200"], env).returncode == 0
    assert (out / "maze.best.safetensors").is_file()
    assert not (runs / "sudoku9").exists() and not (out / "sudoku9.best.safetensors").exists()
    # a second lease continues from what the first brought back
    from hrm.checkpoint import load_checkpoint

    first = load_checkpoint(out / "maze.best.safetensors")
    env2 = {**_env(tmp_path / "runs2"), "LEASE_INIT_MAZE": str(out / "maze.best.safetensors")}
    assert _run(["train", str(tgz), "0", "120", "7"], env2).returncode == 0
    assert _run(["watch", str(tmp_path / "out2"), "200"], env2).returncode == 0
    second = load_checkpoint(tmp_path / "out2" / "maze.best.safetensors")
    assert second.task["training"]["init_from"]["sha256"] == first.sha256


def test_usage_on_unknown_verb():
    res = _run(["fly"], dict(os.environ))
    assert res.returncode == 2 and "watch OUT SECONDS" in res.stdout
