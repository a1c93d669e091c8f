"""The PyTorch HRM: pieces composed by hand equal `solve`; halting modes do what they promise."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hrm.model import HRM, solve  # noqa: E402
from hrm.model.layers import rms_norm, rope_tables  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_cfg, tiny_tensors):
    return HRM.from_tensors(tiny_cfg, tiny_tensors)


@pytest.fixture(scope="module")
def batch(tiny_cfg):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, tiny_cfg.vocab_size, (6, tiny_cfg.seq_len), generator=g)
    ids = torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int32)
    return tokens, ids


def test_pieces_composed_by_hand_equal_solve_fixed(model, batch):
    tokens, ids = batch
    c = model.config
    out = solve(model, tokens, ids, halting="fixed")
    with torch.no_grad():
        x = model.embed(tokens, ids)
        z_H, z_L = model.initial_state(tokens.shape[0])
        for _ in range(c.halt_max_steps):
            for _n in range(c.H_cycles):
                for _t in range(c.L_cycles):
                    z_L = model.l_step(z_L, z_H, x)
                z_H = model.h_step(z_H, z_L)
            logits, q_halt, q_cont = model.heads(z_H)
    assert torch.equal(out.predictions, logits.argmax(-1))
    torch.testing.assert_close(out.q_halt[:, -1], q_halt)
    torch.testing.assert_close(out.q_continue[:, -1], q_cont)


def test_l_step_is_official_injection(model, batch):
    """l_step must be L(z_L + z_H + x): feeding (z_L + z_H + x, 0, 0) gives the same result."""
    tokens, ids = batch
    with torch.no_grad():
        x = model.embed(tokens, ids)
        z_H, z_L = model.initial_state(tokens.shape[0])
        a = model.l_step(z_L, z_H, x)
        b = model.l_step(z_L + z_H + x, torch.zeros_like(z_H), torch.zeros_like(x))
    torch.testing.assert_close(a, b)


def test_fixed_runs_exactly_halt_max_steps(model, batch):
    out = solve(model, *batch, halting="fixed")
    assert out.segments.tolist() == [model.config.halt_max_steps] * batch[0].shape[0]
    assert out.q_halt.shape == (batch[0].shape[0], model.config.halt_max_steps)


def test_act_halts_each_row_at_first_q_halt_above_q_continue(model, batch):
    fixed = solve(model, *batch, halting="fixed", max_segments=8)
    act = solve(model, *batch, halting="act", max_segments=8)
    qh, qc = fixed.q_halt.numpy(), fixed.q_continue.numpy()
    for row in range(batch[0].shape[0]):
        over = np.nonzero(qh[row] > qc[row])[0]
        expect = int(over[0]) + 1 if len(over) else 8
        assert act.segments[row].item() == expect
        # A halted row's answer is the one from its halting segment.
    assert len(set(act.segments.tolist())) > 1, "tiny model should halt rows at different segments"


def test_act_answers_equal_fixed_trace_at_halting_segment(model, batch):
    fixed = solve(model, *batch, halting="fixed", max_segments=8, trace=True)
    act = solve(model, *batch, halting="act", max_segments=8)
    for row, s in enumerate(act.segments.tolist()):
        assert torch.equal(act.predictions[row], fixed.trace[s - 1][row])


@pytest.mark.parametrize("cap", [1, 3, 9])
def test_max_segments_honoured(model, batch, cap):
    for mode in ("fixed", "act"):
        out = solve(model, *batch, halting=mode, max_segments=cap)
        assert int(out.segments.max()) <= cap
        if mode == "fixed":
            assert out.segments.tolist() == [cap] * batch[0].shape[0]


def test_bad_halting_arguments(model, batch):
    with pytest.raises(ValueError, match="halting"):
        solve(model, *batch, halting="sometimes")
    with pytest.raises(ValueError, match="max_segments"):
        solve(model, *batch, max_segments=0)


def test_rows_are_independent_of_batch(model, batch):
    tokens, ids = batch
    full = solve(model, tokens, ids, halting="act", max_segments=6)
    for row in range(tokens.shape[0]):
        one = solve(model, tokens[row:row + 1], ids[row:row + 1], halting="act", max_segments=6)
        assert torch.equal(one.predictions[0], full.predictions[row])
        assert one.segments[0] == full.segments[row]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_forward_close_to_fp32(tiny_cfg, tiny_tensors, batch, dtype):
    ref = HRM.from_tensors(tiny_cfg, tiny_tensors)
    low = HRM.from_tensors(tiny_cfg, tiny_tensors, forward_dtype=dtype)
    with torch.no_grad():
        a = ref(*batch)[0]
        b = low(*batch)[0]
    assert b.dtype == getattr(torch, dtype)
    err = (a - b.float()).abs().max().item()
    assert err < 0.1, err  # post-norm states are O(1); bf16 eps 7.8e-3 over 12 blocks


def test_rms_norm_in_fp32_and_rope_tables():
    h = torch.randn(2, 3, 8, dtype=torch.bfloat16)
    out = rms_norm(h, 1e-5)
    assert out.dtype == torch.bfloat16
    ref = h.float() / torch.sqrt(h.float().pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(out.float(), ref.bfloat16().float())
    cos, sin = rope_tables(8, 5, 10000.0)
    assert cos.shape == (5, 8) and torch.allclose(cos[0], torch.ones(8))
    # NeoX layout: the two halves share frequencies.
    torch.testing.assert_close(cos[:, :4], cos[:, 4:])


def test_puzzle_id_changes_embedding(model, batch):
    tokens, _ = batch
    with torch.no_grad():
        a = model.embed(tokens[:1], torch.tensor([0], dtype=torch.int32))
        b = model.embed(tokens[:1], torch.tensor([1], dtype=torch.int32))
    assert not torch.equal(a[:, 0], b[:, 0]) and torch.equal(a[:, 1:], b[:, 1:])
    assert a.shape == (1, model.config.total_seq_len, model.config.hidden_size)


def test_one_step_grad_segment_same_values_and_grads_only_from_last_steps(model, batch):
    tokens, ids = batch
    with torch.no_grad():
        x = model.embed(tokens, ids)
        z_H, z_L = model.initial_state(tokens.shape[0])
        plain = model.segment(z_H, z_L, x)
    trained = model.segment(z_H, z_L, x, truncated_grad=True)
    for a, b in zip(plain, trained):
        torch.testing.assert_close(a, b.detach())
    assert trained[0].requires_grad and trained[2].requires_grad
