"""A deployment is self-contained and cannot drift: paths stay inside it, the content is sealed by its
digest, and a malformed manifest is one line naming the key."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from hrm.errors import ManifestError
from hrm.manifest import load_manifest, seal


@pytest.fixture
def copy(rel_deploy, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(rel_deploy, d)
    return d


def rewrite(d, fn, reseal=True):
    raw = json.loads((d / "manifest.json").read_text())
    fn(raw)
    (d / "manifest.json").write_text(json.dumps(seal(raw) if reseal else raw))


def graph(raw, kind="heads"):
    return raw["variants"]["fp32"]["graphs"][kind]


# ---- paths -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, words", [
    ("../../../../etc/passwd", "contains '..'"),
    ("v1/../../outside.onnx", "contains '..'"),
    ("/etc/passwd", "is absolute"),
    ("C:\\\\models\\\\heads.onnx", "is absolute"),
    ("", "not a non-empty string"),
])
def test_paths_must_stay_inside(copy, path, words):
    rewrite(copy, lambda raw: graph(raw).update(file=path))  # even a resealed manifest
    with pytest.raises(ManifestError, match=r"\[variants.fp32.graphs.heads.file\]: file path .*" + words):
        load_manifest(copy, verify=False)


def test_absolute_path_to_another_deployment_is_refused(copy, rel_deploy):
    other = load_manifest(rel_deploy).path(graph(json.loads((rel_deploy / "manifest.json").read_text()))["file"])
    rewrite(copy, lambda raw: graph(raw).update(file=str(other.resolve())))
    with pytest.raises(ManifestError, match="is absolute"):
        load_manifest(copy)


def test_symlink_leading_out_is_refused(copy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    version = copy / "v1"
    shutil.move(str(version / "fp32"), str(outside / "fp32"))
    os.symlink(outside / "fp32", version / "fp32")  # the hashes still match: only the path gives it away
    with pytest.raises(ManifestError, match="leads outside the deployment directory"):
        load_manifest(copy)


def test_symlink_inside_is_fine(copy):
    (copy / "v1" / "fp32").rename(copy / "v1" / "fp32-real")
    os.symlink("fp32-real", copy / "v1" / "fp32")
    load_manifest(copy)


# ---- digest ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    lambda raw: raw["config"].update(H_cycles=3),
    lambda raw: raw["config"].update(L_cycles=1),
    lambda raw: raw["config"].update(halt_max_steps=16),
    lambda raw: raw["config"].update(vocab_size=7),
    lambda raw: raw["recurrence"].update(default_halting="fixed"),
    lambda raw: raw["task"]["params"].update(size=9),
    lambda raw: graph(raw).update(sha256="0" * 64),
], ids=["H_cycles", "L_cycles", "halt_max_steps", "vocab", "default_halting", "task", "hash"])
def test_edits_without_the_exporter_are_refused(copy, edit):
    rewrite(copy, edit, reseal=False)
    with pytest.raises(ManifestError, match=r"\[digest\]: the manifest's content does not match its digest"):
        load_manifest(copy, verify=False)


def test_manifest_without_digest_is_refused(copy):
    rewrite(copy, lambda raw: raw.pop("digest"), reseal=False)
    with pytest.raises(ManifestError, match=r"\[digest\]: missing"):
        load_manifest(copy, verify=False)


def test_resealed_recurrence_must_still_agree_with_the_config(copy):
    rewrite(copy, lambda raw: raw["recurrence"].update(H_cycles=5))
    with pytest.raises(ManifestError, match=r"\[recurrence.H_cycles\]: is 5 but config.H_cycles is 2"):
        load_manifest(copy, verify=False)


def test_resealed_task_must_fit_the_model(copy):
    def nine(raw):
        raw["task"] = {"name": "sudoku", "params": {"size": 9}}
    rewrite(copy, nine)
    with pytest.raises(ManifestError, match=r"\[task\]: task sudoku 9x9 does not fit the model \(seq_len 81 \(task\) "
                                            r"vs 16"):
        load_manifest(copy, verify=False)


# ---- schema --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("[]", "expected an object, found a list"),
    ("null", "expected an object, found null"),
    ('"manifest"', "expected an object, found a string"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ("{\"format\": ", "invalid JSON at line 1"),
    ("\xff\xfe", "not UTF-8"),
])
def test_not_an_object(copy, text, words):
    (copy / "manifest.json").write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(ManifestError, match=words) as info:
        load_manifest(copy)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("edit, key, words", [
    (lambda raw: raw.update(variants=None), "variants", "expected an object, found null"),
    (lambda raw: raw.update(variants=[]), "variants", "expected an object, found a list"),
    (lambda raw: raw["variants"].update(fp32=[]), "variants.fp32", "expected an object, found a list"),
    (lambda raw: graph(raw).update(file=None), "variants.fp32.graphs.heads.file", "expected a string, found null"),
    (lambda raw: graph(raw).update(sha256=12), "variants.fp32.graphs.heads.sha256", "expected a string, found an integer"),
    (lambda raw: graph(raw).update(sha256="abc"), "variants.fp32.graphs.heads.sha256", "64 hex digits"),
    (lambda raw: graph(raw).update(inputs={}), "variants.fp32.graphs.heads.inputs", "expected a list"),
    (lambda raw: graph(raw)["inputs"][0].update(shape=[None, 17]), "variants.fp32.graphs.heads.inputs[0].shape[0]",
     "expected an integer or a string, found null"),
    (lambda raw: raw.update(init=[1]), "init", "expected an object"),
    (lambda raw: raw["init"].pop("L_init"), "init.L_init", "required key 'L_init' is missing"),
    (lambda raw: raw.update(task=3), "task", "expected an object or null, found an integer"),
    (lambda raw: raw["recurrence"].update(default_halting="sometimes"), "recurrence.default_halting", "expected one of"),
    (lambda raw: raw["variants"]["fp32"].update(precision="fp16"), "variants.fp32.precision", "the variant is 'fp32'"),
    (lambda raw: raw.update(config="big"), "config", "expected an object, found a string"),
])
def test_wrong_types_name_the_key(copy, edit, key, words):
    rewrite(copy, edit)
    with pytest.raises(ManifestError) as info:
        load_manifest(copy)
    message = str(info.value)
    assert f"[{key}]: " in message and words in message and "\n" not in message, message


def test_cli_prints_one_line_and_exits_2(copy):
    from click.testing import CliRunner

    from hrm.cli.run import main

    rewrite(copy, lambda raw: graph(raw).update(file="../../../../etc/passwd"))
    r = CliRunner().invoke(main, [str(copy), "1... .... .... ...."])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ") and "contains '..'" in r.stderr


# ---- arc's puzzle_identifiers block and hub's source block ----------------------------------------------

@pytest.fixture(scope="module")
def named_deploy(tmp_path_factory, tiny_ckpt_path):
    """The tiny model exported with puzzle names (hrm-export --identifiers): the block and its file."""
    from hrm.export import export_deployment
    from hrm.identifiers import PuzzleIdentifiers

    out = tmp_path_factory.mktemp("named") / "d"
    export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False,
                      identifiers=PuzzleIdentifiers(("<blank>", "0a1b2c3d", "0a1b2c3d_t1_0213456789")))
    return out


@pytest.fixture
def named(named_deploy, tmp_path):
    return shutil.copytree(named_deploy, tmp_path / "named")


def test_identifiers_file_is_published_inside_the_version_and_sealed(named):
    raw = json.loads((named / "manifest.json").read_text())
    assert raw["puzzle_identifiers"]["file"] == "v1/identifiers.json"
    assert ("v1/identifiers.json", raw["puzzle_identifiers"]["sha256"]) in load_manifest(named).files()
    rewrite(named, lambda raw: raw["puzzle_identifiers"].update(count=99), reseal=False)
    with pytest.raises(ManifestError, match=r"\[digest\]: the manifest's content does not match"):
        load_manifest(named, verify=False)


@pytest.mark.parametrize("path, words", [("../identifiers.json", "contains '..'"),
                                         ("/tmp/ids.json", "is absolute")])
def test_identifiers_paths_must_stay_inside(named, path, words):
    rewrite(named, lambda raw: raw["puzzle_identifiers"].update(file=path))
    with pytest.raises(ManifestError, match=r"\[puzzle_identifiers.file\]: file path .*" + words):
        load_manifest(named, verify=False)


def test_identifiers_rows_path_and_types_are_checked(named):
    rows = {"file": "../rows.npy", "sha256": "0" * 64}
    rewrite(named, lambda raw: raw["puzzle_identifiers"].update(rows=rows))
    with pytest.raises(ManifestError, match=r"\[puzzle_identifiers.rows.file\]: file path .*contains '..'"):
        load_manifest(named, verify=False)
    rewrite(named, lambda raw: raw.update(puzzle_identifiers=[]))
    with pytest.raises(ManifestError, match=r"\[puzzle_identifiers\]: expected an object or null, found a list"):
        load_manifest(named, verify=False)


def test_source_block_is_sealed_and_typed(copy):
    """The source checkpoint is outside the deployment on purpose (the torch backend reads it after its
    sha256 check), but editing where it points is an edit of the manifest."""
    rewrite(copy, lambda raw: raw["source"].update(path="/elsewhere/model.safetensors"), reseal=False)
    with pytest.raises(ManifestError, match=r"\[digest\]"):
        load_manifest(copy, verify=False)
    rewrite(copy, lambda raw: raw["source"].update(sha256="abc"))
    with pytest.raises(ManifestError, match=r"\[source.sha256\]: expected a sha256"):
        load_manifest(copy, verify=False)
    rewrite(copy, lambda raw: raw["source"].update(path=7))
    with pytest.raises(ManifestError, match=r"\[source.path\]: expected a string, found an integer"):
        load_manifest(copy, verify=False)
