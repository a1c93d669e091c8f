"""Checkpoints: ours round-trips; the official layout loads and reproduces outputs; errors name tensors."""

from __future__ import annotations

import numpy as np
import pytest

from hrm.checkpoint import expected_shapes, load_checkpoint, param_count, save_checkpoint, strip_official_prefixes
from hrm.errors import CheckpointError


def test_expected_shapes_official_count():
    from hrm.config import HRMConfig
    shapes = expected_shapes(HRMConfig(seq_len=81, vocab_size=11))
    assert len(shapes) == 39
    n = sum(int(np.prod(s)) for k, s in shapes.items() if k not in ("H_init", "L_init", "puzzle_emb.weights"))
    assert n == 27_275_266  # the official Sudoku model's parameter count (puzzle_emb is a buffer there)


def test_param_count_matches_the_model_and_the_checkpoint(tiny_ckpt_path, tiny_cfg, tiny_tensors):
    """Counted from expected_shapes; the PyTorch model's own tensors (less H_init/L_init) agree."""
    n = sum(v.size for k, v in tiny_tensors.items() if k not in ("H_init", "L_init"))
    assert param_count(tiny_cfg) == n == load_checkpoint(tiny_ckpt_path).num_parameters
    assert param_count(tiny_cfg.replace(pos_encodings="learned")) == n + tiny_cfg.total_seq_len * tiny_cfg.hidden_size


def test_ours_round_trip(tiny_ckpt_path, tiny_cfg, tiny_tensors):
    ck = load_checkpoint(tiny_ckpt_path)
    assert ck.format == "hrm" and ck.config == tiny_cfg and ck.task["name"] == "sudoku"
    for k, v in tiny_tensors.items():
        np.testing.assert_array_equal(ck.tensors[k], v)
    assert len(ck.sha256) == 64


def test_fp16_storage_halves_size_and_keeps_inits_exact(tmp_path, tiny_cfg, tiny_tensors):
    a = save_checkpoint(tmp_path / "a.safetensors", tiny_cfg, tiny_tensors)
    b = save_checkpoint(tmp_path / "b.safetensors", tiny_cfg, tiny_tensors, dtype="fp16")
    assert b.stat().st_size < 0.6 * a.stat().st_size
    ck = load_checkpoint(b)
    np.testing.assert_array_equal(ck.tensors["H_init"], tiny_tensors["H_init"])


def test_official_layout_loads_and_reproduces_outputs(official_ckpt_path, tiny_cfg, tiny_tensors):
    torch = pytest.importorskip("torch")
    from hrm.model import HRM, solve

    ck = load_checkpoint(official_ckpt_path)
    assert ck.format == "official"
    assert ck.config.forward_dtype == "bfloat16"  # official default when the yaml omits it
    assert ck.config.replace(forward_dtype="float32") == tiny_cfg
    # The official file stores H_init/L_init in bf16: the reference is the bf16-rounded init.
    ref_tensors = dict(tiny_tensors)
    for k in ("H_init", "L_init"):
        ref_tensors[k] = torch.from_numpy(tiny_tensors[k]).bfloat16().float().numpy()
    ref = HRM.from_tensors(tiny_cfg, ref_tensors)
    got = HRM.from_checkpoint(ck, forward_dtype="float32")
    tokens = torch.randint(1, tiny_cfg.vocab_size, (3, tiny_cfg.seq_len), generator=torch.Generator().manual_seed(0))
    a = solve(ref, tokens, halting="fixed", keep_states=True)
    b = solve(got, tokens, halting="fixed", keep_states=True)
    assert torch.equal(a.predictions, b.predictions)
    torch.testing.assert_close(a.z_H_trace[-1], b.z_H_trace[-1], rtol=0, atol=0)


def test_official_directory_picks_latest_step(tmp_path, tiny_cfg, tiny_tensors):
    pytest.importorskip("torch")
    from helpers import write_official_checkpoint
    write_official_checkpoint(tmp_path, tiny_cfg, tiny_tensors, step=5)
    write_official_checkpoint(tmp_path, tiny_cfg, tiny_tensors, step=50)
    assert load_checkpoint(tmp_path).source.name == "step_50"


def test_prefix_variants():
    for prefix in ("_orig_mod.model.inner.", "model.inner.", "_orig_mod.", ""):
        assert list(strip_official_prefixes({prefix + "H_init": 1})) == ["H_init"]


def test_shape_mismatch_names_tensor_and_both_shapes(tmp_path, tiny_cfg, tiny_tensors):
    pytest.importorskip("torch")
    from helpers import write_official_checkpoint
    bad = dict(tiny_tensors)
    bad["puzzle_emb.weights"] = np.zeros((7, tiny_cfg.puzzle_emb_ndim), np.float32)  # dataset says 3 ids
    path = write_official_checkpoint(tmp_path, tiny_cfg, bad)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "puzzle_emb.weights" in msg and "[3, 64]" in msg and "[7, 64]" in msg


def test_missing_and_unexpected_keys_named(tmp_path, tiny_cfg, tiny_tensors):
    bad = {k: v for k, v in tiny_tensors.items() if k != "lm_head.weight"}
    bad["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="missing tensor 'lm_head.weight'.*unexpected tensor 'extra.weight'"):
        save_checkpoint(tmp_path / "x.safetensors", tiny_cfg, bad)
    assert not (tmp_path / "x.safetensors").exists()


def test_unreadable_and_unknown_files(tmp_path):
    junk = tmp_path / "model.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(junk)
    other = tmp_path / "weights.txt"
    other.write_text("hello")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_official_without_config_named(tmp_path, tiny_cfg, tiny_tensors):
    pytest.importorskip("torch")
    from helpers import write_official_checkpoint
    path = write_official_checkpoint(tmp_path, tiny_cfg, tiny_tensors)
    (tmp_path / "all_config.yaml").unlink()
    with pytest.raises(CheckpointError, match="all_config.yaml"):
        load_checkpoint(path)


def test_foreign_safetensors_rejected(tmp_path):
    from safetensors.numpy import save_file
    p = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(p))
    with pytest.raises(CheckpointError, match="not an hrm-deploy checkpoint"):
        load_checkpoint(p)
