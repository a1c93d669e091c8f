"""hrm-data and hrm-ckpt: thin CLIs over the dataset generators and checkpoint converter."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from hrm.cli.ckpt import main as ckpt_main
from hrm.cli.data import main as data_main
from hrm.tasks.dataset import read_official_split


def test_generate_sudoku4_folder_is_official_and_labelled(tmp_path):
    out = tmp_path / "s4"
    r = CliRunner().invoke(data_main, ["generate", "sudoku", "--size", "4", "--n-train", "12", "--n-test", "4",
                                       "--out", str(out), "--workers", "1", "--seed", "3"])
    assert r.exit_code == 0, r.output
    train = read_official_split(out, "train")
    assert len(train) == 12 and train.metadata["seq_len"] == 16
    from hrm.tasks.sudoku_solver import solve
    for p in train.puzzles():
        sol = solve(np.asarray(p.tokens) - 1)  # tokens are digit + 1, blank 1 -> 0
        assert sol is not None and np.array_equal(np.asarray(sol).reshape(-1) + 1, p.label)
    assert np.load(out / "train" / "guesses.npy").shape == (12,)


def test_generate_refuses_existing_folder_without_force(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("keep me")
    r = CliRunner().invoke(data_main, ["generate", "maze", "--size", "6", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "use --force" in r.output
    assert (tmp_path / "x" / "f").read_text() == "keep me"


def test_ckpt_convert_official_then_info(tmp_path, official_ckpt_path):
    dst = tmp_path / "ours.safetensors"
    r = CliRunner().invoke(ckpt_main, ["convert", str(official_ckpt_path), str(dst), "--task", "sudoku",
                                       "--task-param", "size=4"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(ckpt_main, ["info", str(dst), "--json"])
    assert r.exit_code == 0 and '"format": "hrm"' in r.output and '"name": "sudoku"' in r.output


def test_ckpt_info_bad_file_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    r = CliRunner().invoke(ckpt_main, ["info", str(bad)])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "bad.safetensors" in r.output
    assert "Traceback" not in r.output
