"""Checkpoints as they are published: folders laid out like the official HRM Hugging Face repos (Sudoku at
full size, Maze and ARC with small configs) and a TRM-style nested release export with no sizing flags and
say which task they inferred; the inference is overridable and refuses names that do not fit the weights."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers import random_tensors, tiny_config, tiny_trm_config
from hrm.checkpoint import load_checkpoint
from hrm.cli.ckpt import main as ckpt_main
from hrm.cli.export import main as export_main
from hrm.config import HRMConfig
from hrm.manifest import load_manifest
from hrm.tasks import get_task
from published_layouts import write_published

SUDOKU_PATH = "data/sudoku-extreme-1k-aug-1000"


def _export(*args):
    return CliRunner().invoke(export_main, [str(a) for a in args])


def _info(*args):
    return CliRunner().invoke(ckpt_main, ["info", *(str(a) for a in args)])


def _one_error_line(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def full_sudoku_repo(tmp_path_factory):
    """sapientinc/HRM-checkpoint-sudoku-extreme's layout with random weights of the official shapes (27M)."""
    cfg = HRMConfig(seq_len=81, vocab_size=11)  # official arch (hrm_v1.yaml); sizes of build_sudoku_dataset
    repo = tmp_path_factory.mktemp("HRM-checkpoint-sudoku-extreme")
    write_published(repo, cfg, random_tensors(cfg), SUDOKU_PATH)
    return repo


def test_full_size_sudoku_repo_info_says_what_it_found_and_inferred(full_sudoku_repo):
    result = _info(full_sudoku_repo)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "weights checkpoint (the only checkpoint file); config all_config.yaml" in out
    assert "ignored: .gitattributes, README.md, hrm_act_v1.py, losses.py" in out
    assert f"task sudoku 9x9 inferred from data_path {SUDOKU_PATH} (seq_len 81, vocab 11)" in out
    # 27,275,266 as counted by the paper (puzzle_emb is a buffer there) + its 512 puzzle-embedding values
    assert "27,275,778 parameters" in out and "seq_len 81 (+1 puzzle), vocab 11, 1 puzzle ids" in out


def test_full_size_sudoku_repo_exports_with_inferred_task(full_sudoku_repo, tmp_path):
    # --precision fp32 only keeps this under 10 s; the default three precisions: test_full_size_sudoku_repo_default_export
    result = _export("--checkpoint", full_sudoku_repo, "--out", tmp_path / "d", "--precision", "fp32", "--json")
    assert result.exit_code == 0, result.output
    assert f"task sudoku 9x9 inferred from data_path {SUDOKU_PATH}" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["passed"]
    assert summary["source"]["inferred"] == [f"task sudoku 9x9 inferred from data_path {SUDOKU_PATH} (seq_len 81, vocab 11)"]
    m = load_manifest(tmp_path / "d")
    assert m.task == get_task("sudoku", size=9).metadata()
    assert (m.config.seq_len, m.config.vocab_size, m.config.num_puzzle_identifiers) == (81, 11, 1)
    assert m.source["path"] == str(full_sudoku_repo / "checkpoint") and m.source["given"] == str(full_sudoku_repo)


@pytest.mark.extended
def test_full_size_sudoku_repo_default_export(full_sudoku_repo, tmp_path):
    """No flag at all (fp32, fp16, bf16 validated): ~70 s on 2 loaded cores."""
    result = _export("--checkpoint", full_sudoku_repo, "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    m = load_manifest(tmp_path / "d")
    assert set(m.variants) == {"fp32", "fp16", "bf16"} and all(v.validation["passed"] for v in m.variants.values())
    assert m.task["name"] == "sudoku"


@pytest.mark.parametrize("data_path, cfg_changes, task", [
    # HRM-checkpoint-maze-30x30-hard: build_maze_dataset's default output folder
    ("data/maze-30x30-hard-1k", dict(seq_len=900, vocab_size=6, num_puzzle_identifiers=1), ("maze", {"size": 30})),
    # HRM-checkpoint-ARC-2: puzzle ids come from puzzle_emb.weights (1,045,829 rows in the real one)
    ("data/arc-2-aug-1000", dict(seq_len=900, vocab_size=12, num_puzzle_identifiers=37), ("arc", {})),
])
def test_small_maze_and_arc_repos_export_with_no_flags(tmp_path, data_path, cfg_changes, task):
    cfg = tiny_config(**cfg_changes, hidden_size=32, num_heads=2, puzzle_emb_ndim=32, H_layers=1, L_layers=1)
    repo = tmp_path / "repo"
    write_published(repo, cfg, random_tensors(cfg), data_path)
    result = _export("--checkpoint", repo, "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    name, params = task
    want = get_task(name, **params).metadata()
    assert f"task {name} 30x30 inferred from data_path {data_path}" in result.stderr
    m = load_manifest(tmp_path / "d")
    assert m.task == want and all(v.validation["passed"] for v in m.variants.values())
    assert (m.config.seq_len, m.config.vocab_size, m.config.num_puzzle_identifiers) == (
        cfg.seq_len, cfg.vocab_size, cfg.num_puzzle_identifiers)


def test_trm_style_nested_release_is_found(tmp_path):
    """A third-party TRM release: arc_v1_public/step_518071 + all_config.yaml (the TRM arch name, TRM's
    data_paths list) in a subfolder: found, its family and task inferred, and exported with no sizing flags."""
    import yaml

    cfg = tiny_trm_config(seq_len=900, vocab_size=12, num_puzzle_identifiers=5, hidden_size=32, num_heads=2,
                          puzzle_emb_ndim=32, L_layers=1, puzzle_emb_len=16)
    weights = write_published(tmp_path, cfg, random_tensors(cfg), "unused", weights="arc_v1_public/step_518071",
                              extras=False)
    (tmp_path / "README.md").write_text("# TRM checkpoints\n")
    cfg_file = weights.parent / "all_config.yaml"
    raw = yaml.safe_load(cfg_file.read_text())
    del raw["data_path"]
    raw["data_paths"] = ["data/arc1concept-aug-1000"]
    cfg_file.write_text(yaml.safe_dump(raw))

    result = _info(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["path"] == str(weights) and info["source"]["config"] == str(cfg_file)
    assert info["source"]["found"] == "the only step_N file, in subfolder arc_v1_public/"
    assert info["task"]["name"] == "arc" and info["config"]["num_puzzle_identifiers"] == 5
    assert "task arc 30x30 inferred from data_paths data/arc1concept-aug-1000 (seq_len 900, vocab 12)" in info["notes"]
    assert info["family"] == "trm" and info["halt_rule"] == "q_halt > 0" and info["config"]["puzzle_emb_len"] == 16
    result = _export("--checkpoint", tmp_path, "--out", tmp_path / "deploy", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    man = load_manifest(tmp_path / "deploy")
    assert man.config.arch == "trm" and man.task["name"] == "arc" and man.variants["fp32"].graphs["h_step"].alias

    # a second run beside it makes the top folder ambiguous: listed, not guessed; naming the subfolder works
    write_published(tmp_path, cfg, random_tensors(cfg), "data/arc-aug-1000", weights="arc_v2/step_10", extras=False)
    line = _one_error_line(_info(tmp_path), "2 subfolders hold checkpoints", "arc_v1_public/ (step_518071)",
                           "arc_v2/ (step_10)")
    assert line.startswith("error: ")
    assert load_checkpoint(tmp_path / "arc_v2").source == tmp_path / "arc_v2" / "step_10"


@pytest.fixture
def unknown_repo(tmp_path, tiny_cfg, tiny_tensors):
    """The tiny (4x4-Sudoku-shaped) model published with a data path no official builder writes."""
    write_published(tmp_path / "repo", tiny_cfg, tiny_tensors, "data/my-puzzles")
    return tmp_path / "repo"


def test_unknown_data_path_gives_todays_error_then_task_fills_in(unknown_repo, tmp_path):
    _one_error_line(_export("--checkpoint", unknown_repo, "--out", tmp_path / "d"),
                    "seq_len is not in all_config.yaml", "--seq-len", "--task")
    result = _export("--checkpoint", unknown_repo, "--out", tmp_path / "d", "--precision", "fp32",
                     "--task", "sudoku", "--task-param", "size=4")
    assert result.exit_code == 0, result.output
    assert "task sudoku 4x4 (--task)" in result.stderr
    m = load_manifest(tmp_path / "d")
    assert m.task == get_task("sudoku", size=4).metadata() and m.config.seq_len == 16


def test_inferred_task_that_does_not_fit_the_weights_is_an_error(tmp_path, tiny_cfg, tiny_tensors):
    """A folder whose data path says Sudoku 9x9 holding a vocab-6 model: said, not exported with a wrong task."""
    write_published(tmp_path / "repo", tiny_cfg, tiny_tensors, SUDOKU_PATH)
    _one_error_line(_export("--checkpoint", tmp_path / "repo", "--out", tmp_path / "d"),
                    f"task sudoku 9x9 inferred from data_path {SUDOKU_PATH}", "vocab_size 11 (task) vs 6 (model)",
                    "--task")
    # --seq-len sizes it instead: the inferred task no longer fits and is not recorded (said so)
    ck = load_checkpoint(tmp_path / "repo", seq_len=16)
    assert ck.task is None and any("no task recorded" in n for n in ck.notes())


def test_dataset_json_still_wins_and_the_task_is_recorded(tmp_path, tiny_cfg, tiny_tensors):
    """On the training machine the dataset sits where data_path says: its sizes are used (data/tiny names no
    task, so none is recorded), and --task still records one after checking it against those sizes."""
    from helpers import write_official_checkpoint

    step = write_official_checkpoint(tmp_path, tiny_cfg, tiny_tensors)  # data/tiny/test/dataset.json beside it
    ck = load_checkpoint(step)
    assert ck.task is None and ck.notes()[-1] == f"sizes from {tmp_path / 'data/tiny/test/dataset.json'}"
    ck = load_checkpoint(step, task=get_task("sudoku", size=4).metadata())
    assert ck.task["params"] == {"size": 4} and "task sudoku 4x4 (--task)" in ck.notes()


def test_task_flag_on_our_format(tiny_ckpt_path):
    ck = load_checkpoint(tiny_ckpt_path, task=get_task("maze", size=4).metadata())  # same seq 16, vocab 6
    assert ck.task["name"] == "maze" and "task maze 4x4 (--task), replacing the recorded sudoku 4x4" in ck.notes()
    _one_error_line(_info(tiny_ckpt_path, "--task", "sudoku"), "--task sudoku 9x9 does not fit",
                    "seq_len 81 (task) vs 16 (model)")
    _one_error_line(_info(tiny_ckpt_path, "--task-param", "size=4"), "--task-param needs --task")
