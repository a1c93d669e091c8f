"""Reveal curriculum: which cells it gives away, how the fraction anneals, and its wiring into training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.errors import ConfigError
from hrm.train.curriculum import RevealSchedule, reveal


def _sudoku_rows(n=200, seed=0):
    from hrm.tasks import get_task

    ps = get_task("sudoku", size=9).generate(n, np.random.default_rng(seed), difficulty="easy")
    return np.stack([p.tokens for p in ps]), np.stack([p.label for p in ps])


def test_reveal_only_fills_unknown_cells_with_their_labels():
    inputs, labels = _sudoku_rows(50)
    labels = labels.copy()
    labels[:, :3] = 0  # PAD labels are never written
    out = reveal(inputs, labels, 0.5, np.random.default_rng(1))
    assert out.dtype == inputs.dtype and out.shape == inputs.shape
    changed = out != inputs
    assert np.all(out[changed] == labels[changed])  # a revealed cell holds its answer
    assert not changed[:, :3].any()
    known = inputs == labels
    assert not changed[known].any()  # givens untouched
    todo = (inputs != labels) & (labels != 0)
    share = changed.sum() / todo.sum()
    assert 0.45 < share < 0.55  # ~fraction of the unknown cells (thousands of cells: tight)


def test_reveal_extremes():
    inputs, labels = _sudoku_rows(20)
    rng = np.random.default_rng(0)
    assert reveal(inputs, labels, 0.0, rng) is inputs
    assert np.array_equal(reveal(inputs, labels, 1.0, rng), labels)


def test_schedule_anneals_linearly_to_zero():
    s = RevealSchedule(0.9, 0.5)
    assert s.fraction(0.0) == pytest.approx(0.9)
    assert s.fraction(0.25) == pytest.approx(0.45)
    assert s.fraction(0.5) == 0.0 and s.fraction(0.9) == 0.0 and s.fraction(2.0) == 0.0
    for bad in (dict(start=1.0), dict(start=-0.1), dict(until=0.0), dict(until=1.5)):
        with pytest.raises(ValueError):
            RevealSchedule(**{"start": 0.5, "until": 0.5, **bad})


def test_stream_reveals_at_the_fraction_it_is_given():
    from hrm.train.arrays import PuzzleArrays
    from hrm.train.stream import PuzzleStream

    inputs, labels = _sudoku_rows(64)
    data = PuzzleArrays(inputs.astype(np.int32), labels.astype(np.int32), np.zeros(64, np.int32))
    stream = PuzzleStream(data, np.random.default_rng(0))
    rows = {r.tobytes() for r in data.inputs}
    x0, y0, _ = stream.take(32)  # no curriculum: the training rows exactly (no augmenter here)
    assert all(r.tobytes() in rows for r in x0)
    stream.reveal_fraction = 0.999
    x1, y1, _ = stream.take(32)
    assert ((x1 != y1) & (y1 != 0)).mean() < 0.01 and ((x0 != y0) & (y0 != 0)).mean() > 0.3


def test_training_records_the_annealed_fraction(tmp_path):
    pytest.importorskip("torch")
    from hrm.train import preset_config, train

    cfg = preset_config("sudoku4-tiny", n_train=100, n_eval=16, steps=8, log_every=2, eval_every=8, batch_size=8,
                        eval_batch_size=16, reveal=0.8, reveal_until=0.5, data_cache=str(tmp_path / "d"),
                        progress=False, threads=1, out=str(tmp_path / "run"),
                        arch={"hidden_size": 32, "num_heads": 2, "H_layers": 1, "L_layers": 1, "halt_max_steps": 2})
    train(cfg)
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    fr = [r["reveal"] for r in recs if r["kind"] == "train"]
    assert fr == pytest.approx([0.8 * (1 - s / 8 / 0.5) if s / 8 < 0.5 else 0.0 for s in (2, 4, 6, 8)])
    with pytest.raises(ConfigError, match="reveal"):
        preset_config("sudoku4-tiny", reveal=1.0)
