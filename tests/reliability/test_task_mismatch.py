"""A checkpoint whose task does not fit its model (a 9x9 Sudoku task on a seq-16 model) is refused by
the loader, hrm-ckpt convert and hrm-export, each naming both values; nothing is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hrm.errors import CheckpointError

NINE = {"name": "sudoku", "params": {"size": 9}}
#: both values named (hrm.tasks.task_mismatch, the one rule for a task against a model)
WORDS = ("sudoku 9x9 does not fit", "seq_len 81 (task) vs 16 (model)")


def says(text: str) -> bool:
    return all(w in text for w in WORDS)


@pytest.fixture
def mismatched(tmp_path, tiny_cfg, tiny_tensors):
    """Our format written around save_checkpoint's own check, as another tool (or an old one) could."""
    from safetensors.numpy import save_file

    from hrm.checkpoint import FORMAT, FORMAT_VERSION

    path = tmp_path / "nine-on-four.safetensors"
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": tiny_cfg.to_json(), "task": json.dumps(NINE)}
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tiny_tensors.items()}, str(path), metadata=meta)
    return path


def test_loader_refuses(mismatched):
    from hrm.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(mismatched)
    assert says(str(info.value)) and str(mismatched) in str(info.value)


def test_save_refuses(tmp_path, tiny_cfg, tiny_tensors):
    from hrm.checkpoint import save_checkpoint

    with pytest.raises(CheckpointError, match=r"seq_len 81 \(task\) vs 16 \(model\)"):
        save_checkpoint(tmp_path / "x.safetensors", tiny_cfg, tiny_tensors, task=NINE)
    assert list(tmp_path.iterdir()) == []


def test_ckpt_convert_refuses(tmp_path, official_ckpt_path):
    from hrm.cli.ckpt import main

    dst = tmp_path / "out.safetensors"
    r = CliRunner().invoke(main, ["convert", str(official_ckpt_path), str(dst), "--task", "sudoku",
                                  "--task-param", "size=9"])
    assert r.exit_code == 2 and says(r.stderr) and "Traceback" not in r.output, r.output
    assert not dst.exists()
    ok = CliRunner().invoke(main, ["convert", str(official_ckpt_path), str(dst), "--task", "sudoku",
                                   "--task-param", "size=4"])
    assert ok.exit_code == 0, ok.output


def test_export_refuses(tmp_path, mismatched):
    pytest.importorskip("onnx")
    from hrm.cli.export import main

    out = tmp_path / "deploy"
    r = CliRunner().invoke(main, ["--checkpoint", str(mismatched), "--out", str(out), "--precision", "fp32"])
    assert r.exit_code == 2 and says(r.stderr) and "Traceback" not in r.output, r.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["nine-on-four.safetensors"]
