"""``--init-from``: a run starts from a checkpoint's weights; mismatches stop it before it starts."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.errors import ConfigError  # noqa: E402
from hrm.train import preset_config, train  # noqa: E402

MICRO = {"hidden_size": 32, "num_heads": 2, "H_layers": 1, "L_layers": 1, "halt_max_steps": 2}


def _cfg(tmp_path, name, **kw):
    base = dict(n_train=200, n_eval=32, steps=6, eval_every=6, log_every=2, batch_size=16, eval_batch_size=32,
                data_cache=str(tmp_path / "data"), progress=False, threads=1, out=str(tmp_path / name), arch=MICRO)
    base.update(kw)
    return preset_config("sudoku4-tiny", **base)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    return tmp, train(_cfg(tmp, "first"))


def test_starts_from_the_checkpoint_weights(first):
    tmp, a = first
    # lr 0 (and puzzle-embedding lr 0): the weights cannot move, so the run must end where A ended
    b = train(_cfg(tmp, "second", init_from=str(a.last_checkpoint), steps=1, eval_every=1, lr=0.0, puzzle_emb_lr=0.0,
                   arch={**MICRO, "halt_max_steps": 3}))  # a run-time field may change
    ta, tb = load_checkpoint(a.last_checkpoint).tensors, load_checkpoint(b.last_checkpoint).tensors
    assert sorted(ta) == sorted(tb)
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)
    ckpt_b = load_checkpoint(b.last_checkpoint)
    assert ckpt_b.config.halt_max_steps == 3
    rec = ckpt_b.task["training"]["init_from"]
    assert rec["sha256"] == load_checkpoint(a.last_checkpoint).sha256 and rec["steps"] == 6
    run = json.loads((b.out_dir / "run.json").read_text())
    assert run["init_from"]["path"].endswith("last.safetensors")


def test_a_fresh_run_differs(first):
    """Control for the test above: without --init-from the same lr-0 run keeps its random init."""
    tmp, a = first
    c = train(_cfg(tmp, "fresh", steps=1, eval_every=1, lr=0.0, puzzle_emb_lr=0.0))
    ta, tc = load_checkpoint(a.last_checkpoint).tensors, load_checkpoint(c.last_checkpoint).tensors
    assert any(not np.array_equal(ta[k], tc[k]) for k in ta)


def test_architecture_mismatch_is_named(first):
    tmp, a = first
    with pytest.raises(ConfigError, match=r"arch field 'hidden_size' is 32 in the checkpoint but 64"):
        train(_cfg(tmp, "bad", init_from=str(a.last_checkpoint), arch={**MICRO, "hidden_size": 64}))


def test_data_mismatch_is_named(first):
    tmp, a = first
    with pytest.raises(ConfigError, match=r"init-from last.safetensors: the checkpoint has seq_len 16, the training data 49"):
        train(preset_config("maze-tiny", size=7, n_train=50, n_eval=8, steps=1, data_cache=str(tmp / "data"),
                            progress=False, threads=1, out=str(tmp / "maze"), arch=MICRO,
                            init_from=str(a.last_checkpoint)))


def test_cli_flag(first, tmp_path):
    from click.testing import CliRunner

    from hrm.cli.train import main

    tmp, a = first
    res = CliRunner().invoke(main, ["--preset", "sudoku4-tiny", "--init-from", str(a.last_checkpoint), "--arch",
                                    "hidden_size=48", "--n-train", "50", "--steps", "1", "--data-cache",
                                    str(tmp / "data"), "--out", str(tmp_path / "x"), "--no-progress"])
    assert res.exit_code != 0 and "hidden_size" in res.output and "init-from" in res.output
