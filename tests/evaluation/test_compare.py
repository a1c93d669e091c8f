"""The one comparator: metric values on hand-made runs (what parity and the bench both report)."""

from __future__ import annotations

import numpy as np
import pytest

from hrm.evaluation.compare import accuracy, agreement, relative_drift, trace_agreement


def test_agreement_counts_answers_tokens_and_stops():
    ref = np.array([[1, 2, 3, 4], [1, 1, 1, 1], [2, 2, 2, 2]])
    run = np.array([[1, 2, 3, 4], [1, 1, 1, 2], [2, 2, 2, 2]])
    a = agreement(run, [3, 2, 4], ref, [3, 2, 1])
    assert a.n == 3 and a.answer_agreement == pytest.approx(2 / 3) and a.token_agreement == pytest.approx(11 / 12)
    assert a.halting_agreement == pytest.approx(2 / 3)
    assert agreement(run[:2], [3, 2], ref, [3, 2, 1]).n == 2  # compared over the shorter run
    assert agreement([], [], [], []).answer_agreement == 1.0


def test_accuracy_ignores_pad_and_needs_every_label():
    answers = np.array([[5, 9, 3], [5, 4, 3]])
    labels = [np.array([5, 0, 3]), np.array([5, 0, 2])]  # 0 = PAD: its cell is not judged
    assert accuracy(answers, labels) == 0.5
    assert accuracy(answers, [labels[0], None]) is None and accuracy(answers, []) is None


def test_drift_and_trace():
    z = np.ones((2, 3, 4), np.float32)
    assert relative_drift(z * 1.5, z).tolist() == pytest.approx([0.5, 0.5])
    same, other = np.array([1, 2, 3, 4]), np.array([1, 2, 3, 9])
    mine = [([same, other], [0.25, 0.5]), ([same, same], [0.0, 0.0])]
    ref = [([same, same], [0.0, 0.5]), ([same, same], [0.5, 0.0])]
    t = trace_agreement(mine, ref)
    assert t == {"n": 2, "token_agreement_per_segment": [1.0, 0.875], "diverges_at": 2, "q_halt_seg1_abs_diff": 0.5}
