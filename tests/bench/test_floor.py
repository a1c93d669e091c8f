"""The floor's counts: a hand count for the tiny config, torch's own FLOP counter."""

from __future__ import annotations

import pytest

from hrm.bench.floor import DevicePeaks, floor_report, floor_seconds, segment_cost
from hrm.checkpoint import param_count


def test_segment_flops_match_a_hand_count(tiny_cfg):
    # tiny: S = 16 grid + 1 puzzle position = 17, D = 64, I = 256 (multiple of 256 of 2/3 * 2 * 64), V = 6,
    # N = T = 2, 2 + 2 layers -> 2*2*2 L blocks + 2*2 H blocks = 12 blocks per segment.
    assert (tiny_cfg.total_seq_len, tiny_cfg.intermediate_size, tiny_cfg.puzzle_len) == (17, 256, 1)
    B = 2
    block_params = 3 * 64 * 64 + 64 * 64 + 2 * 256 * 64 + 256 * 64  # qkv, o, gate_up, down = 65536
    per_block = 2 * B * 17 * block_params + 4 * B * 17 * 17 * 64  # 4_456_448 + 147_968
    heads = 2 * B * 16 * 64 * 6 + 2 * B * 64 * 2  # lm_head over the 16 grid positions + q head
    cost = segment_cost(tiny_cfg, B, "fp32")
    assert cost.flops == 12 * per_block + heads == 55_278_080
    assert cost.weight_bytes == 4 * (12 * block_params + 6 * 64 + 2 * 64)
    assert cost.unique_weight_bytes == 4 * (4 * block_params + 6 * 64 + 2 * 64)
    assert cost.state_bytes == 4 * 12 * 2 * B * 17 * 64
    assert segment_cost(tiny_cfg, B, "bf16").weight_bytes == cost.weight_bytes / 2


def test_segment_flops_match_torch_flop_counter(tiny_cfg):
    """torch counts the projections (mm/addmm) but not CPU attention, and runs lm_head over the puzzle
    position too (it slices after the projection; the exported graph slices before)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from hrm.model import HRM

    c, B = tiny_cfg, 3
    model = HRM(c).eval()
    x = model.embed(torch.zeros(B, c.seq_len, dtype=torch.int32), torch.zeros(B, dtype=torch.int32))
    z_H, z_L = model.initial_state(B)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.segment(z_H, z_L, x)
    blocks = c.H_cycles * c.L_cycles * c.L_layers + c.H_cycles * c.H_layers
    attention = blocks * 4 * B * c.total_seq_len**2 * c.hidden_size
    extra_lm_head = 2 * B * c.puzzle_len * c.hidden_size * c.vocab_size
    assert counter.get_total_flops() == segment_cost(c, B).flops - attention + extra_lm_head


def test_full_size_sudoku_is_27m():
    from hrm.bench.models import random_config

    config, task = random_config("sudoku")
    assert (config.seq_len, config.total_seq_len, task["name"]) == (81, 82, "sudoku")
    assert 27.0e6 < param_count(config) < 27.6e6
    maze, _ = random_config("maze")
    assert maze.total_seq_len == 901


def test_floor_picks_the_binding_limit(tiny_cfg):
    cost = segment_cost(tiny_cfg, 1)
    slow_math = DevicePeaks("x", matmul_tflops=1e-6, matmul_dtype="fp32", copy_gbps=1e3)
    slow_memory = DevicePeaks("x", matmul_tflops=1e3, matmul_dtype="fp32", copy_gbps=1e-3)
    f = floor_seconds(cost, slow_math)
    assert f["bound"] == "compute" and f["floor_s"] == pytest.approx(cost.flops / 1e6)
    f = floor_seconds(cost, slow_memory)
    assert f["bound"] == "memory"
    assert f["floor_s"] == pytest.approx((cost.weight_bytes + cost.state_bytes) / 1e6)
    report = floor_report(tiny_cfg, [1, 4], "fp32", slow_math)
    assert set(report) == {"1", "4"} and report["4"]["flops"] == segment_cost(tiny_cfg, 4).flops


@pytest.mark.parametrize("variant", [{}, {"mlp_t": True, "pos_encodings": "none", "puzzle_emb_len": 16}],
                         ids=["attention", "mlp_t"])
def test_trm_counts_match_torch_and_the_checkpoint(variant):
    """TRM: one network serves N*(T+1) calls per segment; mlp_t's sequence-axis SwiGLU replaces attention."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from helpers import numpy_random_tensors, tiny_trm_config

    from hrm.model import TRM

    c, B = tiny_trm_config(**variant), 2
    tensors = numpy_random_tensors(c)
    assert param_count(c) == sum(v.size for k, v in tensors.items() if k not in ("H_init", "L_init"))
    model = TRM.from_tensors(c, tensors)
    x = model.embed(torch.zeros(B, c.seq_len, dtype=torch.int32), torch.zeros(B, dtype=torch.int32))
    z_H, z_L = model.initial_state(B)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.segment(z_H, z_L, x)
    blocks = c.H_cycles * (c.L_cycles + 1) * c.L_layers
    attention = 0 if c.mlp_t else blocks * 4 * B * c.total_seq_len ** 2 * c.hidden_size
    extra_lm_head = 2 * B * c.puzzle_len * c.hidden_size * c.vocab_size
    assert counter.get_total_flops() == segment_cost(c, B).flops - attention + extra_lm_head
    block = sum(v.size for k, v in tensors.items() if k.startswith("L_level.layers.0."))
    heads = c.vocab_size * c.hidden_size + 2 * c.hidden_size
    assert segment_cost(c, B).unique_weight_bytes == 4 * (c.L_layers * block + heads)  # the one network, once
    assert segment_cost(c, B).weight_bytes == 4 * (blocks * block + heads)
