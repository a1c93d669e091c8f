"""deploy/gpu/lease.sh, dry run on the CPU (LEASE_DEVICE=cpu, the tests' tiny model): install check, doctor,
benchmark and training run in one command within the budget, every step's result lands in OUT named after
the device, and a second lease continues from the checkpoint the first brought back. Also: the install
check fails loudly, exit 3, when the CUDA execution provider is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "gpu" / "lease.sh"
TINY = ("--arch hidden_size=32 --arch num_heads=2 --arch H_layers=1 --arch L_layers=1 --arch expansion=2 "
        "--arch halt_max_steps=2 --batch-size 8 --steps 3 --eval-every 3 --eval-batch-size 16 --log-every 1 "
        "--threads 1 --no-compile")


def _env(tmp_path, out, **extra):
    return {**os.environ, "OUT": str(out), "LEASE_DEVICE": "cpu", "LEASE_NO_INSTALL": "1", "LEASE_BENCH": "tiny:1",
            "LEASE_BACKENDS": "ort", "LEASE_BUDGET": "240", "LEASE_TRAIN_MIN_S": "30", "LEASE_TRAIN_EXTRA": TINY,
            "LEASE_DOCTOR_ARGS": "--puzzles 4 --no-timing", "HRM_TRT_FLAVOUR": "tensorrt",  # no engine builds
            "HRM_BENCH_CACHE": str(tmp_path / "bench-cache"), "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _run(env, timeout=300):
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=SCRIPT.parents[2])


def _steps(out):
    return [json.loads(line) for line in (out / "lease-cpu.steps.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from hrm.tasks.datagen import generate_folder

    root = tmp_path_factory.mktemp("lease-data")
    generate_folder("sudoku", root / "sudoku9", 24, 8, seed=3, size=9, workers=1)
    return root


def test_one_command_runs_every_step_and_a_second_lease_continues(tmp_path, data):
    from hrm.checkpoint import load_checkpoint

    out = tmp_path / "out"
    res = _run(_env(tmp_path, out, LEASE_DATA=str(data)))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    steps = _steps(out)
    assert [s["step"] for s in steps] == ["install", "doctor", "bench-tiny", "train"], steps
    assert all(s["rc"] == 0 for s in steps) and sum(s["seconds"] for s in steps) <= 240
    doctor = json.loads((out / "doctor-cpu.json").read_text())
    assert doctor["exit_code"] == 0 and {c["name"] for c in doctor["checks"]} >= {"CUDA", "TensorRT", "deployment"}
    bench = json.loads((out / "bench-tiny-cpu.json").read_text())
    assert bench["complete"] and bench["targets"]["ort-cpu/fp16"]["status"] == "ok"
    assert bench["targets"]["ort-cpu-contrib/fp16"]["status"] == "ok"  # both graph flavours
    first = load_checkpoint(out / "train-sudoku9-cpu" / "last.safetensors")
    assert first.config.hidden_size == 32 and first.task["params"]["size"] == 9  # sudoku9 recipe, tiny arch won
    for name in ("install", "doctor", "bench-tiny", "train"):
        assert (out / f"{name}-cpu.log").is_file()

    # the next lease continues from what this one brought back
    out2 = tmp_path / "out2"
    res2 = _run(_env(tmp_path, out2, LEASE_DATA=str(data), LEASE_STEPS="install train",
                     LEASE_INIT=str(out / "train-sudoku9-cpu" / "last.safetensors")))
    assert res2.returncode == 0, res2.stdout[-3000:] + res2.stderr[-2000:]
    assert [s["step"] for s in _steps(out2)] == ["install", "train"]
    second = load_checkpoint(out2 / "train-sudoku9-cpu" / "last.safetensors")
    assert second.task["training"]["init_from"]["sha256"] == first.sha256


def test_missing_cuda_execution_provider_stops_the_lease_loudly(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA EP")
    out = tmp_path / "out"
    res = _run(_env(tmp_path, out, LEASE_DEVICE="cuda"), timeout=120)
    assert res.returncode == 3
    assert "INSTALL CHECK FAILED" in res.stderr and "CUDAExecutionProvider" in res.stderr
    steps = [json.loads(line) for f in out.glob("lease-*.steps.jsonl") for line in f.read_text().splitlines()]
    assert [s["step"] for s in steps] == ["install"] and steps[0]["rc"] != 0
