"""hrm.sources: the folder rule (which weight file a folder or repo listing means), hf:// references,
and resolution of folders on disk (torch-free: nothing is loaded here)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from hrm.errors import CheckpointError
from hrm.sources import HubRef, as_source_text, config_for, format_of, pick_checkpoint, resolve_local

HF_REPO = ["checkpoint", "all_config.yaml", "hrm_act_v1.py", "losses.py", "README.md", ".gitattributes"]


@pytest.mark.parametrize("paths, expected, why", [
    (HF_REPO, "checkpoint", "the only checkpoint file"),
    # numeric order, not text order: step_1000 is later than step_999 and step_50
    (["step_5", "step_999", "step_1000", "step_50", "all_config.yaml"], "step_1000", "latest of 4 step_N files"),
    (["step_7", "all_config.yaml"], "step_7", "the only step_N file"),
    (["README.md", "arc_v1_public/step_518071", "arc_v1_public/all_config.yaml", "arc_v1_public/trm.py"],
     "arc_v1_public/step_518071", "in subfolder arc_v1_public/"),
    (["run/step_1", "run/step_20", "run/all_config.yaml"], "run/step_20", "latest of 2"),
    (["checkpoint", "all_config.yaml", "older/step_5"], "checkpoint", "the only checkpoint file"),  # top level wins
    (["model.safetensors", "notes.txt"], "model.safetensors", "the only checkpoint file"),
])
def test_folder_rule_picks(paths, expected, why):
    rel, reason = pick_checkpoint(paths, "DIR")
    assert rel == expected
    assert why in reason


@pytest.mark.parametrize("paths, fragments", [
    (["arc_v1_public/step_518071", "arc_v1_public/all_config.yaml", "sudoku_mlp/step_65100", "README.md"],
     ["2 subfolders hold checkpoints", "arc_v1_public/ (step_518071)", "sudoku_mlp/ (step_65100)",
      "e.g. DIR/arc_v1_public"]),
    (["checkpoint", "step_5", "step_9"], ["several checkpoints", "checkpoint", "2 step_N files (latest step_9)"]),
    (["best.safetensors", "last.safetensors"], ["several checkpoints", "best.safetensors, last.safetensors"]),
    (["README.md", "model.py"], ["no checkpoint found", "found README.md, model.py"]),
    (["a/b/step_5"], ["no checkpoint found"]),  # two levels down is not looked at
    ([], ["no checkpoint found", "found nothing"]),
])
def test_folder_rule_refuses_to_guess(paths, fragments):
    with pytest.raises(CheckpointError) as info:
        pick_checkpoint(paths, "DIR")
    message = str(info.value)
    assert message.startswith("DIR: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("text, repo, revision, subpath", [
    ("hf://sapientinc/HRM-checkpoint-sudoku-extreme", "sapientinc/HRM-checkpoint-sudoku-extreme", None, ""),
    ("hf://o/r@v1.0/arc_v1_public/step_518071", "o/r", "v1.0", "arc_v1_public/step_518071"),
    ("hf://o/r@refs%2Fpr%2F3/", "o/r", "refs/pr/3", ""),
    ("hf://o/r.v2/sub", "o/r.v2", None, "sub"),
])
def test_hub_reference_parses_and_prints_back(text, repo, revision, subpath):
    ref = HubRef.parse(text)
    assert (ref.repo_id, ref.revision, ref.subpath) == (repo, revision, subpath)
    assert HubRef.parse(str(ref)) == ref


@pytest.mark.parametrize("text, fragment", [
    ("hf://owner", "expected hf://owner/repo"),
    ("hf://o/r@", "empty revision"),
    ("hf://o/r/../x", "'..'"),
    ("hf://o/bad name", "not a valid Hugging Face name"),
])
def test_bad_hub_reference_one_line(text, fragment):
    with pytest.raises(CheckpointError, match=fragment):
        HubRef.parse(text)


def test_pathlib_spelling_of_hf_reference_is_read_back():
    """A command that typed --checkpoint as a path gets Path('hf://o/r') == 'hf:/o/r'; it still means the hub."""
    assert as_source_text(Path("hf://o/r@main/sub")) == "hf://o/r@main/sub"
    assert as_source_text("hf://o/r") == "hf://o/r"
    assert as_source_text(Path("runs/hf/step_5")) == "runs/hf/step_5"


def test_config_beside_then_one_folder_up():
    have = {"run/all_config.yaml", "all_config.yaml"}
    exists = lambda p: str(p) in have  # noqa: E731
    assert str(config_for(PurePosixPath("run/step_5"), exists)) == "run/all_config.yaml"
    have.discard("run/all_config.yaml")
    assert str(config_for(PurePosixPath("run/step_5"), exists)) == "all_config.yaml"
    assert config_for(PurePosixPath("a/b/step_5"), exists) is None


def _fake_weights(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04 torch zip")  # torch.save's zip magic; resolution never loads it


def test_resolve_hf_layout_on_disk(tmp_path):
    for name in HF_REPO:
        (tmp_path / name).write_text("x")
    _fake_weights(tmp_path / "checkpoint")
    (tmp_path / ".cache" / "huggingface").mkdir(parents=True)  # hf download --local-dir leaves this; skipped
    r = resolve_local(tmp_path)
    assert (r.weights, r.config, r.format) == (tmp_path / "checkpoint", tmp_path / "all_config.yaml", "official")
    assert r.ignored == (".gitattributes", "README.md", "hrm_act_v1.py", "losses.py")
    assert any("ignored: .gitattributes, README.md, hrm_act_v1.py, losses.py" in line for line in r.describe())
    assert r.to_dict()["found"] == "the only checkpoint file"


def test_resolve_trm_nested_layout_on_disk(tmp_path):
    (tmp_path / "README.md").write_text("x")
    _fake_weights(tmp_path / "arc_v1_public" / "step_518071")
    (tmp_path / "arc_v1_public" / "all_config.yaml").write_text("arch: {}\n")
    r = resolve_local(tmp_path)
    assert r.weights == tmp_path / "arc_v1_public" / "step_518071"
    assert r.config == tmp_path / "arc_v1_public" / "all_config.yaml"
    assert "in subfolder arc_v1_public/" in r.found


def test_named_file_finds_config_one_folder_up(tmp_path):
    """pretrain.py's layout: checkpoints/<run>/step_N with all_config.yaml in <run>/ or its parent."""
    _fake_weights(tmp_path / "run" / "ckpts" / "step_9")
    (tmp_path / "run" / "all_config.yaml").write_text("arch: {}\n")
    r = resolve_local(tmp_path / "run" / "ckpts" / "step_9")
    assert r.config == tmp_path / "run" / "all_config.yaml" and r.found == "named directly"


def test_unknown_file_format_named(tmp_path):
    (tmp_path / "weights.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="weights.txt: unknown checkpoint format"):
        format_of(tmp_path / "weights.txt")
    with pytest.raises(CheckpointError, match="no such file or directory"):
        resolve_local(tmp_path / "missing")


def test_hf_source_without_huggingface_hub_says_what_to_install(monkeypatch):
    import sys

    from hrm.sources import resolve_checkpoint

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed: import raises ImportError
    with pytest.raises(CheckpointError, match=r"hf:// sources need huggingface_hub: pip install 'hrm-deploy\[hub\]'"):
        resolve_checkpoint("hf://o/r")
