"""Exact resume: a run paused and resumed from its ``resume.pt`` continues with the same loss curve as
the run that never stopped, for HRM and for TRM (EMA on). Tolerance: none — on the CPU with the same
thread count every logged number and every final weight is identical (``==``), because the state file
holds everything the next step reads (weights, AdamW moments, EMA shadow, carry, data order and RNG,
halting RNG, metric window)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.errors import ConfigError  # noqa: E402
from hrm.train import preset_config, train  # noqa: E402
from hrm.train.resume import RESUME_FILE, resume_config  # noqa: E402

MICRO = {
    "hrm": dict(hidden_size=32, num_heads=2, H_layers=1, L_layers=1, halt_max_steps=3),
    "trm": dict(arch="trm", hidden_size=32, num_heads=2, L_layers=1, H_cycles=2, L_cycles=2, halt_max_steps=3,
                puzzle_emb_len=4, mlp_t=True, pos_encodings="none"),
}
STEPS, PAUSE = 16, 7  # the pause falls inside a log window and between evaluations


def _cfg(family, tmp_path, name, data_cache, **kw):
    return preset_config("sudoku4-tiny", arch=MICRO[family], steps=STEPS, eval_every=5, log_every=3, n_train=300,
                         n_eval=32, batch_size=16, ema=family == "trm", out=str(tmp_path / name),
                         data_cache=data_cache, progress=False, threads=1, **kw)


def _curve(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _strip_time(records):
    return [{k: v for k, v in r.items() if k not in ("elapsed", "seconds")} for r in records]


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_resumed_run_continues_with_the_same_loss_curve(family, tmp_path, data_cache):
    whole = train(_cfg(family, tmp_path, "whole", data_cache))

    paused = train(_cfg(family, tmp_path, "pieces", data_cache, pause_at=PAUSE))
    assert paused.stopped_by == "pause" and paused.steps == PAUSE
    assert (paused.out_dir / RESUME_FILE).is_file()
    resumed = train(resume_config(paused.out_dir, command="resume"))
    assert resumed.steps == STEPS and resumed.stopped_by == "steps"

    a, b = _strip_time(_curve(whole.out_dir)), _strip_time(_curve(resumed.out_dir))
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert a == b  # every loss, accuracy, lr and eval number, exactly
    wa = load_checkpoint(whole.last_checkpoint).tensors
    wb = load_checkpoint(resumed.last_checkpoint).tensors
    assert all((wa[k] == wb[k]).all() for k in wa)
    run = json.loads((resumed.out_dir / "run.json").read_text())
    assert run["resumed"][0]["step"] == PAUSE


def test_resume_refuses_a_changed_run_field(tmp_path, data_cache):
    paused = train(_cfg("hrm", tmp_path, "r", data_cache, pause_at=2))
    with pytest.raises(ConfigError, match="'lr'"):
        resume_config(paused.out_dir, lr=0.5)
    changed = _cfg("hrm", tmp_path, "r", data_cache, resume=str(paused.out_dir)).replace(batch_size=8)
    with pytest.raises(ConfigError, match="'batch_size' is 8"):
        train(changed)
    with pytest.raises(ConfigError, match="not found"):
        resume_config(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))
