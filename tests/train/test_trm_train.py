"""TRM training pieces: the gradient through the last H cycle, halting on q_halt > 0 without a
Q-continue target, the EMA (what is evaluated and saved), the CPU-time budget, the TRM presets and CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import numpy_random_tensors, tiny_trm_config  # noqa: E402

from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.model import TRM  # noqa: E402
from hrm.train import PRESETS, preset_config, train  # noqa: E402
from hrm.train.act import act_step, empty_carry, refill  # noqa: E402
from hrm.train.arrays import PuzzleArrays  # noqa: E402
from hrm.train.budget import TimeBudget  # noqa: E402
from hrm.train.config import model_config  # noqa: E402
from hrm.train.ema import EMA  # noqa: E402
from hrm.train.resume import load_state  # noqa: E402
from hrm.train.stream import PuzzleStream  # noqa: E402

MICRO_TRM = dict(arch="trm", hidden_size=32, num_heads=2, L_layers=1, H_cycles=2, L_cycles=2, halt_max_steps=3,
                 puzzle_emb_len=4, mlp_t=True, pos_encodings="none")


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("variant", [dict(), dict(mlp_t=True, pos_encodings="none")])
def test_trm_gradient_runs_through_the_whole_last_cycle(variant):
    """Values equal the no-grad segment; parameter gradients equal those of a graph where the first
    H_cycles - 1 cycles are detached and the last (L_cycles l_steps + h_step) is not (official trm.py)."""
    cfg = tiny_trm_config(**variant)
    model = TRM.from_tensors(cfg, numpy_random_tensors(cfg, seed=2)).train()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.vocab_size, (3, cfg.seq_len), generator=g)
    ids = torch.randint(0, cfg.num_puzzle_identifiers, (3,), generator=g)
    z_H0, z_L0 = model.initial_state(3)

    z_H, z_L, logits, q_halt, _ = model.segment(z_H0, z_L0, model.embed(tokens, ids), truncated_grad=True)
    with torch.no_grad():
        ref = model.segment(z_H0, z_L0, model.embed(tokens, ids))
    assert torch.equal(z_H.detach(), ref[0]) and torch.equal(logits.detach(), ref[2])
    (logits.square().mean() + q_halt.sum()).backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    x = model.embed(tokens, ids)
    zH, zL = z_H0, z_L0
    with torch.no_grad():
        for _ in range(cfg.H_cycles - 1):
            for _ in range(cfg.L_cycles):
                zL = model.l_step(zL, zH, x)
            zH = model.h_step(zH, zL)
    for _ in range(cfg.L_cycles):
        zL = model.l_step(zL, zH, x)
    zH = model.h_step(zH, zL)
    lg, qh, _ = model.heads(zH)
    (lg.square().mean() + qh.sum()).backward()
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and "L_level.layers.0.mlp.down_proj.weight" in got
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-7)
    # and it differs from HRM's 1-step gradient (only the last l_step): the test can tell them apart
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        zH, zL = z_H0, z_L0
        for n in range(cfg.H_cycles):
            for t in range(cfg.L_cycles - (1 if n == cfg.H_cycles - 1 else 0)):
                zL = model.l_step(zL, zH, x.detach())
            if n < cfg.H_cycles - 1:
                zH = model.h_step(zH, zL)
    zH = model.h_step(zH, model.l_step(zL, zH, model.embed(tokens, ids)))
    lg, qh, _ = model.heads(zH)
    (lg.square().mean() + qh.sum()).backward()
    one_step = model.L_level.layers[0].mlp.down_proj.weight.grad
    assert not torch.allclose(one_step, got["L_level.layers.0.mlp.down_proj.weight"])


def test_trm_act_step_halts_on_q_halt_and_needs_no_target():
    cfg = tiny_trm_config(halt_exploration_prob=0.0)
    tensors = numpy_random_tensors(cfg, seed=3)
    tensors["q_head.bias"] = np.array([0.35, 9.0], dtype=np.float32)  # HRM's rule would never halt
    model = TRM.from_tensors(cfg, tensors).train()
    rng = np.random.default_rng(0)
    data = PuzzleArrays(rng.integers(1, 6, (40, 16)), rng.integers(1, 6, (40, 16)), np.zeros(40))
    carry = empty_carry(model, 8, "cpu")
    refill(model, carry, PuzzleStream(data, rng))
    out = act_step(model, carry)
    assert out.target_q_continue is None
    assert torch.equal(out.halted, out.q_halt.detach() > 0) and out.halted.any() and not out.halted.all()


def test_ema_is_upstreams_formula_and_swaps_back_exactly():
    cfg = tiny_trm_config()
    model = TRM.from_tensors(cfg, numpy_random_tensors(cfg, seed=4)).train()
    ema = EMA(model, rate=0.9)
    assert "puzzle_emb.weights" not in ema.shadow  # a buffer upstream: not averaged
    w0 = model.lm_head.weight.detach().clone()
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.shadow["lm_head.weight"], 0.1 * (w0 + 1.0) + 0.9 * w0)
    live = model.lm_head.weight.detach().clone()
    with ema.applied(model):
        assert torch.equal(model.lm_head.weight, ema.shadow["lm_head.weight"])
    assert torch.equal(model.lm_head.weight, live)


def test_cpu_budget_counts_cpu_seconds_not_waiting():
    budget = TimeBudget(100.0, eval_segment_batches=1.0, clock="cpu", spent=5.0)
    time.sleep(0.3)
    assert budget.elapsed() < 5.2  # sleeping costs no CPU time
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    assert budget.elapsed() >= 5.2
    assert TimeBudget(1.0, 1.0).clock == "wall"


def test_trm_presets_build_the_official_recipe():
    s, m = preset_config("sudoku4-trm"), preset_config("maze7-trm")
    assert s.ema and m.ema and s.ema_rate == 0.99
    cs = model_config(s, 16, 6, 1, "float32")
    cm = model_config(m, 49, 6, 1, "float32")
    assert (cs.arch, cs.mlp_t, cs.pos_encodings, cs.H_cycles, cs.L_cycles) == ("trm", True, "none", 3, 6)
    assert (cm.arch, cm.mlp_t, cm.pos_encodings, cm.H_cycles, cm.L_cycles) == ("trm", False, "rope", 3, 4)
    assert cs.puzzle_len == cm.puzzle_len == 16 and cs.halt_rule == cm.halt_rule == "q_halt > 0"
    assert all(p["arch"].get("arch", "hrm") in ("hrm", "trm") for p in PRESETS.values())


def test_the_family_decides_the_ema_unless_told():
    """TRM's official recipe has the EMA on (rate 0.999), HRM's off; --family trm on an HRM preset gets it,
    and --ema / --no-ema override either way."""
    assert preset_config("sudoku4-tiny").ema is False
    assert preset_config("sudoku4-tiny", arch={"arch": "trm", "H_layers": 0}).ema is True
    assert preset_config("sudoku4-tiny", arch={"arch": "trm", "H_layers": 0}).ema_rate == 0.999
    assert preset_config("sudoku4-tiny", ema=True).ema is True
    assert preset_config("sudoku4-trm", ema=False).ema is False


def test_trm_run_saves_the_ema_weights(tmp_path, data_cache):
    """The checkpoint holds the EMA copy (upstream saves it), the resume state the live weights."""
    cfg = preset_config("sudoku4-trm", arch=MICRO_TRM, steps=6, eval_every=6, n_train=200, n_eval=16,
                        batch_size=8, ema_rate=0.5, out=str(tmp_path), data_cache=data_cache, progress=False,
                        threads=1)
    result = train(cfg)
    ckpt = load_checkpoint(result.last_checkpoint)
    state = load_state(tmp_path)
    name = "L_level.layers.0.mlp.gate_up_proj.weight"
    np.testing.assert_array_equal(ckpt.tensors[name], state["ema"]["shadow"][name].numpy())
    assert not np.array_equal(ckpt.tensors[name], state["model"][name].numpy())
    assert ckpt.config.arch == "trm" and ckpt.config.mlp_t
    assert torch.equal(result.model.state_dict()[name], state["ema"]["shadow"][name])


def test_cli_family_flag_and_cpu_budget(tmp_path, data_cache):
    from click.testing import CliRunner

    from hrm.cli.train import main

    out = tmp_path / "cli"
    args = ["--preset", "sudoku4-tiny", "--family", "trm", "--arch", "hidden_size=32", "--arch", "L_layers=1",
            "--arch", "L_cycles=2", "--arch", "halt_max_steps=2", "--steps", "100000", "--cpu-budget", "3",
            "--n-eval", "16", "--eval-every", "100000", "--out", str(out), "--data-cache", data_cache,
            "--no-progress", "--threads", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    run = json.loads((out / "run.json").read_text())
    assert run["model_config"]["arch"] == "trm" and run["model_config"]["no_ACT_continue"]
    assert run["result"]["clock"] == "cpu" and run["result"]["stopped_by"] == "time_budget"
    assert run["result"]["train_seconds"] < 3 + 3
    listing = CliRunner().invoke(main, ["--list-presets"])
    assert "sudoku4-trm" in listing.output and "TRM" in listing.output
