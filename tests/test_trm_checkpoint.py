"""TRM configs and checkpoints: the family comes from all_config.yaml, our header or the tensor names;
TRM's fields are honoured; unsupported variants are refused by name; hrm-ckpt shows and converts TRM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import numpy_random_tensors, tiny_trm_config, write_official_checkpoint

from hrm.checkpoint import expected_shapes, load_checkpoint, save_checkpoint
from hrm.config import HRMConfig
from hrm.errors import CheckpointError, ConfigError


def test_trm_shapes_one_net_no_H_level_and_mlp_t_tensors():
    att = expected_shapes(tiny_trm_config())
    assert not any(k.startswith("H_level") for k in att)
    assert att["L_level.layers.0.self_attn.qkv_proj.weight"] == (192, 64)
    mlp = expected_shapes(tiny_trm_config(mlp_t=True, pos_encodings="none", puzzle_emb_len=16))
    L = 16 + 16  # seq_len + puzzle_emb_len: the sequence-axis SwiGLU's width
    assert mlp["L_level.layers.1.mlp_t.gate_up_proj.weight"] == (2 * 256, L)
    assert mlp["L_level.layers.1.mlp_t.down_proj.weight"] == (L, 256)
    assert not any("self_attn" in k for k in mlp)


def test_puzzle_emb_len_zero_or_none_is_the_official_ceil():
    for value in (0, None):
        c = HRMConfig(seq_len=16, vocab_size=6, hidden_size=64, num_heads=4, puzzle_emb_ndim=100,
                      puzzle_emb_len=value, arch="trm", H_layers=0)
        assert c.puzzle_len == 2 and c.total_seq_len == 18
    assert tiny_trm_config(puzzle_emb_len=16).total_seq_len == 32


def test_halt_rule_follows_no_ACT_continue():
    assert tiny_trm_config().halt_rule == "q_halt > 0"
    assert tiny_trm_config(no_ACT_continue=False).halt_rule == "q_halt > q_continue"


@pytest.mark.parametrize("field,value,needle", [
    ("mlp_t", True, "field 'mlp_t' is true but arch is 'hrm'"),
    ("no_ACT_continue", True, "field 'no_ACT_continue' is true but arch is 'hrm'"),
    ("arch", "trm_singlez", "field 'arch' is 'trm_singlez'"),
    ("puzzle_emb_ndim", 0, "puzzle_emb_len"),
])
def test_invalid_family_fields_named(field, value, needle):
    d = HRMConfig(seq_len=16, vocab_size=6, puzzle_emb_len=4 if field == "puzzle_emb_ndim" else None).to_dict()
    d[field] = value
    with pytest.raises(ConfigError, match=needle):
        HRMConfig.from_dict(d, source="cfg.json")


@pytest.mark.parametrize("variant", [dict(), dict(mlp_t=True, pos_encodings="none", puzzle_emb_len=16),
                                     dict(pos_encodings="learned", puzzle_emb_len=0)])
def test_official_trm_checkpoint_loads_with_its_family(tmp_path, variant):
    config = tiny_trm_config(**variant)
    tensors = numpy_random_tensors(config, seed=1)
    step = write_official_checkpoint(tmp_path, config, tensors)
    ck = load_checkpoint(step)
    assert ck.format == "official" and ck.config.arch == "trm"
    assert ck.config.to_dict() == {**config.to_dict(), "forward_dtype": "bfloat16"}
    for k, v in tensors.items():
        np.testing.assert_array_equal(ck.tensors[k], v)


def test_trm_yaml_defaults_are_trms(tmp_path):
    """A TRM all_config.yaml without mlp_t / puzzle_emb_len / no_ACT_continue gets TRM's official defaults."""
    config = tiny_trm_config(puzzle_emb_len=16)
    step = write_official_checkpoint(tmp_path, config, numpy_random_tensors(config))
    raw = yaml.safe_load((tmp_path / "all_config.yaml").read_text())
    for key in ("mlp_t", "puzzle_emb_len", "no_ACT_continue"):
        raw["arch"].pop(key)
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump(raw))
    c = load_checkpoint(step).config
    assert (c.mlp_t, c.puzzle_emb_len, c.no_ACT_continue, c.halt_rule) == (False, 16, True, "q_halt > 0")


@pytest.mark.parametrize("name", ["recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1",
                                  "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1",
                                  "recursive_reasoning.transformers_baseline@Model_ACTV2"])
def test_unsupported_official_variants_refused_by_name(tmp_path, name):
    config = tiny_trm_config()
    step = write_official_checkpoint(tmp_path, config, numpy_random_tensors(config))
    raw = yaml.safe_load((tmp_path / "all_config.yaml").read_text())
    raw["arch"]["name"] = name
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CheckpointError, match=f"field 'arch.name' is '{name}'"):
        load_checkpoint(step)


def test_family_from_tensor_names_when_the_yaml_has_no_name(tmp_path):
    config = tiny_trm_config()
    step = write_official_checkpoint(tmp_path, config, numpy_random_tensors(config))
    raw = yaml.safe_load((tmp_path / "all_config.yaml").read_text())
    raw["arch"].pop("name")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump(raw))
    assert load_checkpoint(step).config.arch == "trm"


def test_ours_round_trips_trm_and_refuses_a_family_mismatch(tmp_path):
    config = tiny_trm_config(mlp_t=True, pos_encodings="none")
    tensors = numpy_random_tensors(config)
    path = save_checkpoint(tmp_path / "t.safetensors", config, tensors)
    assert load_checkpoint(path).config == config
    hrm_cfg = HRMConfig(**{**config.to_dict(), "arch": "hrm", "mlp_t": False, "no_ACT_continue": False, "H_layers": 2})
    with pytest.raises(CheckpointError, match="tensors are a TRM model's .* config says arch 'hrm'"):
        save_checkpoint(tmp_path / "bad.safetensors", hrm_cfg, tensors)


def test_hrm_ckpt_info_and_convert_trm(tmp_path):
    from hrm.cli.ckpt import main

    config = tiny_trm_config(mlp_t=True, pos_encodings="none")
    tensors = numpy_random_tensors(config)
    step = write_official_checkpoint(tmp_path / "official", config, tensors)
    runner = CliRunner()
    res = runner.invoke(main, ["info", str(step)])
    assert res.exit_code == 0, res.output
    assert "TRM" in res.output and "one net of 2 layers (mlp_t)" in res.output and "q_halt > 0" in res.output
    dst = tmp_path / "trm.safetensors"
    res = runner.invoke(main, ["convert", str(step), str(dst), "--task", "sudoku", "--task-param", "size=4"])
    assert res.exit_code == 0, res.output
    info = json.loads(runner.invoke(main, ["info", str(dst), "--json"]).output)
    assert info["family"] == "trm" and info["format"] == "hrm" and info["task"]["name"] == "sudoku"
    assert info["parameters"] == sum(v.size for k, v in tensors.items() if k not in ("H_init", "L_init"))
    ck = load_checkpoint(dst)
    for k, v in tensors.items():
        np.testing.assert_array_equal(ck.tensors[k], v)


def test_mlp_t_weights_give_the_sequence_length_without_dataset_json(tmp_path):
    """mlp_t weights are [.., S+P]: like learned positions, they tell seq_len; RoPE ones do not."""
    config = tiny_trm_config(mlp_t=True, pos_encodings="none", puzzle_emb_len=16)
    step = write_official_checkpoint(tmp_path / "a", config, numpy_random_tensors(config), with_dataset_json=False)
    assert load_checkpoint(step).config.seq_len == 16
    rope = tiny_trm_config()
    step = write_official_checkpoint(tmp_path / "b", rope, numpy_random_tensors(rope), with_dataset_json=False)
    with pytest.raises(CheckpointError, match="seq_len"):
        load_checkpoint(step)
    assert load_checkpoint(step, seq_len=16).config.seq_len == 16
