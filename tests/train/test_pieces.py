"""Optimizer pieces, the LR schedule, the time budget, presets, and eval's derived ACT numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import random_tensors, tiny_config  # noqa: E402

from hrm.checkpoint import expected_shapes  # noqa: E402
from hrm.model import HRM, solve  # noqa: E402
from hrm.train import PRESETS, preset_config  # noqa: E402
from hrm.train.arrays import PuzzleArrays  # noqa: E402
from hrm.train.budget import TimeBudget  # noqa: E402
from hrm.train.config import model_config  # noqa: E402
from hrm.train.evaluate import evaluate  # noqa: E402
from hrm.train.optim import SignSGD, build_optimizers, lr_scale  # noqa: E402


def test_lr_schedule():
    assert lr_scale(0, 10, 100, 1.0) == 0.0
    assert lr_scale(5, 10, 100, 1.0) == 0.5
    assert lr_scale(50, 10, 100, 1.0) == 1.0  # min_ratio 1: constant after warm-up (upstream default)
    assert lr_scale(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_scale(55, 10, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_scale(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_scale(20, 10, 100, 0.1, time_frac=1.0) == pytest.approx(0.1)  # budget over -> minimum


def test_sign_sgd_touches_only_rows_with_gradient():
    w = torch.nn.Parameter(torch.ones(3, 2))
    opt = SignSGD([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.tensor([[0.0, 0.0], [2.0, -3.0], [0.0, 0.0]])
    opt.step()
    assert torch.equal(w.data[0], torch.ones(2)) and torch.equal(w.data[2], torch.ones(2))
    assert torch.allclose(w.data[1], torch.tensor([1 * (1 - 0.05) - 0.1, 1 * (1 - 0.05) + 0.1]))


def test_optimizers_split_puzzle_embedding():
    model = HRM(tiny_config())
    opt = build_optimizers(model, 1e-3, 0.1, (0.9, 0.95), 1e-2, 0.1, optimizer="adamw")
    assert isinstance(opt.optimizers[0], SignSGD) and isinstance(opt.optimizers[1], torch.optim.AdamW)
    assert opt.optimizers[0].param_groups[0]["params"][0] is model.puzzle_emb.weights
    assert opt.set_lr_scale(0.5) == pytest.approx(5e-4)
    assert opt.optimizers[0].param_groups[0]["lr"] == pytest.approx(5e-3)


def test_time_budget_reserve():
    b = TimeBudget(100.0, eval_segment_batches=40, save_seconds=2.0, warmup_steps=2)
    b.record_step(30.0)  # compile warm-up: ignored
    b.record_step(30.0)
    assert b.reserve() == 2.0
    for _ in range(5):
        b.record_step(0.1)
    assert b.reserve() == pytest.approx(1.25 * 0.5 * 0.1 * 40 + 2.0)
    b.record_eval(8.0)
    assert b.reserve() == pytest.approx(11.0)
    assert not b.exhausted() and TimeBudget(None, 1).fraction() is None


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_shippable(name):
    cfg = preset_config(name)
    seq = {"sudoku": cfg.size ** 2, "maze": cfg.size ** 2}[cfg.task]
    vocab = {"sudoku": cfg.size + 2, "maze": 6}[cfg.task]
    mcfg = model_config(cfg, seq, vocab, 1, "bfloat16")
    params = sum(int(np.prod(s)) for k, s in expected_shapes(mcfg).items() if k not in ("H_init", "L_init"))
    assert params * 2 <= 15e6  # the fp16 checkpoint we ship stays <= 15 MB
    assert mcfg.puzzle_emb_ndim == mcfg.hidden_size


def test_preset_overrides_merge_arch():
    cfg = preset_config("sudoku9", arch={"hidden_size": 128}, steps=5)
    assert cfg.arch["hidden_size"] == 128 and cfg.arch["H_layers"] == 4 and cfg.steps == 5
    assert PRESETS["sudoku9"]["arch"]["hidden_size"] == 256  # the preset itself is untouched


def test_evaluate_derives_act_exactly_like_solve():
    cfg = tiny_config()
    model = HRM.from_tensors(cfg, random_tensors(cfg, seed=0))  # this seed's Q head halts rows at 1..4
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, cfg.vocab_size, (20, cfg.seq_len))
    ids = rng.integers(0, cfg.num_puzzle_identifiers, 20)
    fixed = solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting="fixed")
    act = solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting="act")
    labels = act.predictions.numpy().copy()
    labels[:5] = (labels[:5] % (cfg.vocab_size - 1)) + 1  # five rows wrong under ACT
    labels[5:8, :3] = 0  # ignored positions
    m = evaluate(model, PuzzleArrays(tokens, labels, ids), batch_size=7)
    act_right = (act.predictions.numpy() == labels) | (labels == 0)
    fixed_right = (fixed.predictions.numpy() == labels) | (labels == 0)
    assert m["exact_act"] == pytest.approx(act_right.all(1).mean())
    assert m["exact_fixed"] == pytest.approx(fixed_right.all(1).mean())
    assert m["segments_act"] == pytest.approx(act.segments.float().mean().item())
    assert 1 < m["segments_act"] < cfg.halt_max_steps  # the random Q head halts rows at different segments
