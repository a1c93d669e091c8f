"""``hrm-export``: the happy path, and one clear error line (no traceback) for each bad input."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from hrm.cli.export import main


def _run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_export_json_summary(tmp_path, tiny_ckpt_path):
    out = tmp_path / "deploy"
    result = _run("--checkpoint", tiny_ckpt_path, "--out", out, "--precision", "fp32,bf16", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["passed"] and summary["precisions"] == ["fp32", "bf16"] and summary["opset"] == 17
    assert {(g["precision"], g["kind"]) for g in summary["graphs"]} == {
        (p, k) for p in ("fp32", "bf16") for k in ("embed", "l_step", "h_step", "heads")}
    assert all(g["max_rel"] <= g["tolerance"] for g in summary["graphs"])
    assert (out / "manifest.json").is_file()
    assert "validate" in result.stderr  # progress goes to stderr, JSON alone on stdout


def test_export_table(tmp_path, tiny_ckpt_path):
    result = _run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d", "--precision", "fp16", "--no-validate")
    assert result.exit_code == 0, result.output
    assert "l_step" in result.stderr and "fp16" in result.stderr and "not validated" in result.stderr


def test_existing_dir_needs_force_and_must_be_a_deployment(tmp_path, tiny_ckpt_path):
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    for force in ((), ("--force",)):  # not a deployment: refused even with --force
        result = _run("--checkpoint", tiny_ckpt_path, "--out", out, "--precision", "fp32", "--no-validate", *force)
        assert result.exit_code == 2
        _one_error_line(result, str(out), "not empty and is not a deployment")
    assert (out / "old.txt").read_text() == "keep me"
    dep = tmp_path / "dep"
    assert _run("--checkpoint", tiny_ckpt_path, "--out", dep, "--precision", "fp32", "--no-validate").exit_code == 0
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", dep, "--precision", "fp32"), str(dep),
                    "a deployment exists there; pass --force")
    result = _run("--checkpoint", tiny_ckpt_path, "--out", dep, "--precision", "fp16", "--no-validate", "--force")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dep", "deploy"]  # no lock, staging or old dir left


def test_empty_existing_dir_is_fine(tmp_path, tiny_ckpt_path):
    out = tmp_path / "deploy"
    out.mkdir()
    assert _run("--checkpoint", tiny_ckpt_path, "--out", out, "--precision", "fp32", "--no-validate").exit_code == 0


def test_missing_checkpoint(tmp_path):
    _one_error_line(_run("--checkpoint", tmp_path / "nope.safetensors", "--out", tmp_path / "d"),
                    "nope.safetensors", "no such file")
    assert not (tmp_path / "d").exists()


def test_unreadable_checkpoint(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    _one_error_line(_run("--checkpoint", bad, "--out", tmp_path / "d"), "broken.safetensors", "not a readable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.safetensors"]


def test_unknown_format(tmp_path):
    bad = tmp_path / "model.xyz"
    bad.write_bytes(b"hello world, not a model")
    _one_error_line(_run("--checkpoint", bad, "--out", tmp_path / "d"), "model.xyz", "unknown checkpoint format")


def test_unwritable_dir_parent_is_a_file(tmp_path, tiny_ckpt_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", blocker / "deploy"), str(blocker / "deploy"))


@pytest.mark.skipif(sys.platform == "win32" or (hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0),
                    reason="root ignores directory permissions")
def test_unwritable_dir_permissions(tmp_path, tiny_ckpt_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", ro / "deploy"), "permission denied")


def test_out_is_a_file(tmp_path, tiny_ckpt_path):
    target = tmp_path / "deploy"
    target.write_text("x")
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", target, "--force"), "not a directory")


def test_engine_without_tensorrt(tmp_path, tiny_ckpt_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    line = _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d", "--engine"),
                           "pip install 'hrm-deploy[trt-check]'", "tensorrt")
    assert "--engine" in line
    assert not (tmp_path / "d").exists()


def test_bad_precision(tmp_path, tiny_ckpt_path):
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d", "--precision", "fp8"), "fp8")


def test_bad_batch_profile(tmp_path, tiny_ckpt_path):
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d", "--engine", "--min-batch", "8",
                         "--max-batch", "4"), "--min-batch")



def test_official_checkpoint_needs_seq_len(tmp_path, tiny_cfg, tiny_tensors):
    """RoPE + no dataset.json: seq_len is not in the weights; one error line naming --seq-len, then it works."""
    from helpers import write_official_checkpoint

    step = write_official_checkpoint(tmp_path / "run", tiny_cfg, tiny_tensors, with_dataset_json=False)
    _one_error_line(_run("--checkpoint", step, "--out", tmp_path / "d"), "--seq-len")
    result = _run("--checkpoint", step, "--out", tmp_path / "d", "--seq-len", tiny_cfg.seq_len, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    from hrm.manifest import load_manifest

    m = load_manifest(tmp_path / "d")
    assert m.source["format"] == "official" and m.config.seq_len == tiny_cfg.seq_len
    assert m.variants["fp32"].validation["passed"]


def test_cuda_validation_without_cuda(tmp_path, tiny_ckpt_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d", "--validation-provider", "cuda"),
                    "CUDAExecutionProvider", "onnxruntime-gpu")
    assert list(tmp_path.iterdir()) == []


def test_validation_without_torch(tmp_path, tiny_ckpt_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    _one_error_line(_run("--checkpoint", tiny_ckpt_path, "--out", tmp_path / "d"), "needs torch", "--no-validate")
