"""HRMConfig: official derivations and named errors."""

from __future__ import annotations

import pytest

from hrm.config import HRMConfig, load_official_config
from hrm.errors import ConfigError


def test_official_sudoku_derivations():
    c = HRMConfig(seq_len=81, vocab_size=11)
    assert c.intermediate_size == 1536
    assert c.puzzle_len == 1 and c.total_seq_len == 82 and c.head_dim == 64


def test_trm_style_puzzle_len_override():
    c = HRMConfig(seq_len=81, vocab_size=11, puzzle_emb_len=16)
    assert c.total_seq_len == 97


@pytest.mark.parametrize("field,value,needle", [
    ("hidden_size", 0, "hidden_size"), ("num_heads", 3, "num_heads"), ("pos_encodings", "alibi", "pos_encodings"),
    ("forward_dtype", "int8", "forward_dtype"), ("halt_max_steps", -1, "halt_max_steps"),
])
def test_invalid_values_name_the_field(field, value, needle):
    d = HRMConfig(seq_len=81, vocab_size=11).to_dict()
    d[field] = value
    with pytest.raises(ConfigError, match=needle):
        HRMConfig.from_dict(d, source="cfg.json")


def test_missing_required_field_named():
    with pytest.raises(ConfigError, match="'vocab_size' is missing"):
        HRMConfig.from_dict({"seq_len": 81}, source="x")


def test_official_yaml_with_interpolation(tmp_path):
    (tmp_path / "all_config.yaml").write_text(
        "arch:\n  hidden_size: 512\n  num_heads: 8\n  puzzle_emb_ndim: ${.hidden_size}\n  H_cycles: 2\n"
        "  L_cycles: 2\n  H_layers: 4\n  L_layers: 4\n  expansion: 4\n  pos_encodings: rope\n"
        "  halt_max_steps: 16\n  halt_exploration_prob: 0.1\n")
    (tmp_path / "dataset.json").write_text('{"seq_len": 81, "vocab_size": 11, "num_puzzle_identifiers": 1}')
    c = load_official_config(tmp_path / "all_config.yaml", dataset_json=tmp_path / "dataset.json")
    assert c.puzzle_emb_ndim == 512 and c.seq_len == 81 and c.forward_dtype == "bfloat16"


def test_official_yaml_without_sizes_and_rope_needs_seq_len(tmp_path):
    (tmp_path / "all_config.yaml").write_text("arch:\n  hidden_size: 64\n  num_heads: 4\n")
    with pytest.raises(ConfigError, match="seq_len"):
        load_official_config(tmp_path / "all_config.yaml", shapes={"embed_tokens.embedding_weight": (11, 64)})
    c = load_official_config(tmp_path / "all_config.yaml", shapes={"embed_tokens.embedding_weight": (11, 64)},
                             overrides={"seq_len": 81})
    assert c.vocab_size == 11 and c.seq_len == 81
