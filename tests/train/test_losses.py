"""Stablemax cross-entropy, ignore labels, the official loss normalisation and Q targets."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hrm.train.losses import (  # noqa: E402
    act_loss,
    log_stablemax,
    q_continue_target,
    softmax_cross_entropy,
    stablemax_cross_entropy,
)


def test_stablemax_by_hand():
    # s(2) = 3, s(-1) = 1/2, s(0) = 1 -> sum 4.5
    logits = torch.tensor([[[2.0, -1.0, 0.0], [2.0, -1.0, 0.0]]])
    labels = torch.tensor([[0, 2]])  # position 0 is ignored (label 0 = PAD = ignore)
    loss = stablemax_cross_entropy(logits, labels, ignore_label_id=0)
    assert loss.dtype == torch.float64  # upstream computes stablemax in float64
    assert loss[0, 0].item() == 0.0
    assert loss[0, 1].item() == pytest.approx(math.log(4.5), rel=1e-12)
    # without ignoring, label 0 -> -log(3 / 4.5)
    loss_all = stablemax_cross_entropy(logits, labels, ignore_label_id=None)
    assert loss_all[0, 0].item() == pytest.approx(math.log(1.5), rel=1e-12)


def test_log_stablemax_is_a_distribution():
    x = torch.randn(5, 7, dtype=torch.float64) * 10
    assert torch.allclose(log_stablemax(x).exp().sum(-1), torch.ones(5, dtype=torch.float64))


def test_softmax_variant_matches_torch():
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[1, 2, 0, 4], [0, 0, 3, 1]])
    got = softmax_cross_entropy(logits, labels)
    ref = torch.nn.functional.cross_entropy(logits.permute(0, 2, 1), labels, reduction="none")
    assert torch.allclose(got, torch.where(labels != 0, ref, 0))


def test_act_loss_normalisation_and_q_halt_target():
    """LM loss: per-sequence mean over valid tokens, summed over the batch (pretrain.py then divides
    by the batch size); q_halt target = "every valid token right"."""
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6)
    labels = torch.tensor([[2, 3, 0, 0], [5, 5, 5, 5], [0, 0, 0, 1]])
    labels[0, :2] = logits[0, :2].argmax(-1)  # row 0: both valid tokens right
    q_halt = torch.tensor([0.3, -1.0, 2.0])
    q_cont = torch.tensor([0.0, 0.5, -0.5])
    target = torch.tensor([0.2, 0.9, 0.5])
    out = act_loss(logits, q_halt, q_cont, labels, target)
    per_tok = stablemax_cross_entropy(logits, labels)
    lm = per_tok[0].sum() / 2 + per_tok[1].sum() / 4 + per_tok[2].sum() / 1
    assert out.lm.item() == pytest.approx(lm.item(), rel=1e-9)
    assert out.seq_correct[0].item() is True
    correct = out.seq_correct.float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert out.q_halt.item() == pytest.approx(bce(q_halt, correct, reduction="sum").item(), rel=1e-6)
    assert out.q_continue.item() == pytest.approx(bce(q_cont, target, reduction="sum").item(), rel=1e-6)
    assert out.total.item() == pytest.approx(lm.item() + 0.5 * (out.q_halt.item() + out.q_continue.item()), rel=1e-6)
    assert out.token_accuracy[0].item() == 1.0


def test_act_loss_without_q_target_and_all_ignored_row():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    labels = torch.tensor([[0, 0, 0], [1, 2, 3]])
    out = act_loss(logits, torch.zeros(2), torch.zeros(2), labels, None)
    assert out.q_continue.item() == 0.0
    assert out.seq_correct[0].item() is True  # nothing to get wrong (upstream: 0 == 0)
    out.total.backward()
    assert torch.all(logits.grad[0] == 0)  # the ignored row contributes no LM gradient


def test_q_continue_target_constructed_case():
    next_q_halt = torch.tensor([1.0, -2.0, 0.5, -1.0])
    next_q_cont = torch.tensor([0.0, 3.0, 2.0, -3.0])
    is_last = torch.tensor([False, False, True, False])
    got = q_continue_target(next_q_halt, next_q_cont, is_last)
    # max(next) except at the last step, where continuing means being forced to halt next
    want = torch.sigmoid(torch.tensor([1.0, 3.0, 0.5, -1.0]))
    assert torch.allclose(got, want)
