"""The 1-step gradient, the ACT carry / row replacement, halting with exploration, Q targets."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import random_tensors, tiny_config  # noqa: E402

from hrm.model import HRM  # noqa: E402
from hrm.train.act import act_step, empty_carry, halting_decision, load_rows, refill  # noqa: E402
from hrm.train.arrays import PuzzleArrays  # noqa: E402
from hrm.train.stream import PuzzleStream  # noqa: E402


@pytest.fixture()
def model():
    cfg = tiny_config()
    return HRM.from_tensors(cfg, random_tensors(cfg, seed=1)).train()


def _batch(model, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = model.config
    tokens = torch.randint(1, c.vocab_size, (B, c.seq_len), generator=g)
    ids = torch.randint(0, c.num_puzzle_identifiers, (B,), generator=g)
    return tokens, ids


def _grads(model):
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}


def test_one_step_gradient_values_and_grads(model):
    """Values equal the full no-grad segment; gradients equal those of a graph in which every update
    but the last l_step and h_step is detached; the incoming state gets no gradient."""
    tokens, ids = _batch(model)
    z_H0, z_L0 = model.initial_state(tokens.shape[0])
    z_H0 = (z_H0 + 0.1 * torch.randn_like(z_H0)).requires_grad_(True)
    z_L0 = z_L0.clone().requires_grad_(True)

    x = model.embed(tokens, ids)
    z_H, z_L, logits, q_halt, q_cont = model.segment(z_H0, z_L0, x, truncated_grad=True)
    with torch.no_grad():
        ref = model.segment(z_H0, z_L0, model.embed(tokens, ids), truncated_grad=False)
    for got, want in zip((z_H, z_L, logits, q_halt, q_cont), ref):
        assert torch.equal(got.detach(), want)

    (logits.square().mean() + q_halt.sum() + q_cont.sum()).backward()
    assert z_H0.grad is None and z_L0.grad is None  # nothing flows into the carry
    got = _grads(model)
    assert all(g is not None and torch.isfinite(g).all() for g in got.values())
    assert any(g.abs().sum() > 0 for n, g in got.items() if n.startswith("L_level"))
    assert got["embed_tokens.embedding_weight"].abs().sum() > 0  # x gets gradient through the last l_step

    # the same gradient by hand: N*T - 1 detached l_steps and N - 1 detached h_steps, then one of each
    model.zero_grad(set_to_none=True)
    N, T = model.config.H_cycles, model.config.L_cycles
    x = model.embed(tokens, ids)
    zh, zl = z_H0.detach(), z_L0.detach()
    with torch.no_grad():
        for n in range(N):
            for t in range(T):
                if n < N - 1 or t < T - 1:
                    zl = model.l_step(zl, zh, x)
            if n < N - 1:
                zh = model.h_step(zh, zl)
    zl = model.l_step(zl, zh, x)
    zh = model.h_step(zh, zl)
    lg, qh, qc = model.heads(zh)
    (lg.square().mean() + qh.sum() + qc.sum()).backward()
    manual = _grads(model)
    for name in got:
        assert torch.allclose(got[name], manual[name], rtol=1e-5, atol=1e-7), name


def test_halting_decision_rules():
    steps = torch.tensor([1, 2, 3, 4, 4])
    q_halt = torch.tensor([1.0, -1.0, 2.0, -5.0, 3.0])
    q_cont = torch.tensor([0.0, 0.0, 1.0, 5.0, 0.0])
    got = halting_decision(steps, q_halt, q_cont, halt_max_steps=4, exploration_prob=0.0)
    assert got.tolist() == [True, False, True, True, True]  # q_halt > q_continue, or the cap
    # exploring rows draw a minimum of 2..max steps: a row at step 1 can never halt, the cap always does
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        got = halting_decision(steps, q_halt, q_cont, 4, 1.0, g)
        assert not got[0] and got[3] and got[4]
    # halt_max_steps 1: every row halts after one segment (no ACT)
    assert halting_decision(torch.tensor([1, 1]), torch.tensor([-9.0, 9.0]), torch.zeros(2), 1, 0.5).all()


def test_act_step_q_target_from_extra_forward(model):
    tokens, ids = _batch(model, B=4)
    carry = empty_carry(model, 4, "cpu")
    load_rows(model, carry, torch.arange(4), tokens.numpy(), tokens.numpy(), ids.numpy())
    carry.steps[:] = torch.tensor([0, 1, 2, 3], dtype=torch.int32)  # row 3 reaches the cap (4) now
    out = act_step(model, carry, torch.Generator().manual_seed(0))
    assert carry.steps.tolist() == [1, 2, 3, 4]
    assert bool(out.halted[3])
    with torch.no_grad():
        x = model.embed(tokens, ids)
        *_, nqh, nqc = model.segment(carry.z_H, carry.z_L, x)  # one more segment from the new carry
    want = torch.sigmoid(torch.where(torch.tensor([False, False, False, True]), nqh, torch.maximum(nqh, nqc)))
    assert torch.allclose(out.target_q_continue, want, atol=1e-6)
    assert not carry.z_H.requires_grad and out.logits.requires_grad


def test_refill_replaces_only_halted_rows(model):
    c = model.config
    n = 10
    data = PuzzleArrays(np.arange(n * c.seq_len).reshape(n, c.seq_len) % c.vocab_size,
                        np.ones((n, c.seq_len)), np.zeros(n))
    stream = PuzzleStream(data, np.random.default_rng(0))
    carry = empty_carry(model, 4, "cpu")
    assert refill(model, carry, stream) == 4  # starts all halted
    act_step(model, carry)
    before = {k: getattr(carry, k).clone() for k in ("inputs", "z_H", "steps")}
    carry.halted[:] = torch.tensor([True, False, True, False])
    assert refill(model, carry, stream) == 2
    for row in (1, 3):
        assert torch.equal(carry.inputs[row], before["inputs"][row])
        assert torch.equal(carry.z_H[row], before["z_H"][row])
        assert carry.steps[row] == 1
    for row in (0, 2):
        assert carry.steps[row] == 0 and not carry.halted[row]
        assert torch.equal(carry.z_H[row], model.H_init.expand_as(carry.z_H[row]))
    assert stream.served == 6


def test_stream_covers_each_epoch_once():
    data = PuzzleArrays(np.arange(7)[:, None].repeat(3, 1), np.ones((7, 3)), np.zeros(7))
    stream = PuzzleStream(data, np.random.default_rng(0))
    first = np.concatenate([stream.take(3)[0][:, 0], stream.take(4)[0][:, 0]])
    assert sorted(first.tolist()) == list(range(7)) and stream.epoch == 0
    stream.take(5)
    assert stream.epoch == 1
