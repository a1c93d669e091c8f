"""The manifest an export writes: complete, hashes matching the files, a changed byte detected."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from hrm.errors import ManifestError
from hrm.io import sha256_file
from hrm.manifest import FLOAT_PRECISIONS, IO_NAMES, STEP_GRAPHS, load_manifest, seal


def test_manifest_contents(tiny_export, tiny_ckpt_path, tiny_tensors):
    report, out = tiny_export
    m = load_manifest(out, verify=True)
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["format"] == "hrm-deploy-manifest" and raw["format_version"] == 1
    assert m.config == report_config(report)
    assert m.task["name"] == "sudoku"
    assert raw["recurrence"] == {"H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4, "default_halting": "act",
                                "halt_rule": "q_halt > q_continue"}
    assert m.source == {"path": str(tiny_ckpt_path), "format": "hrm", "sha256": sha256_file(tiny_ckpt_path),
                        "given": str(tiny_ckpt_path), "found": "named directly"}  # how the source was resolved
    for key in ("hrm_deploy", "onnx", "onnxruntime", "polygraphy", "torch", "opset"):
        assert m.exporter[key], key
    assert m.exporter["opset"] == 17
    for key in ("H_init", "L_init"):
        arr = np.load(out / m.init[key]["file"])
        assert arr.dtype == np.float32 and np.array_equal(arr, tiny_tensors[key])
    assert set(m.variants) == set(FLOAT_PRECISIONS)
    for name, var in m.variants.items():
        assert raw["variants"][name]["state_dtype"] == var.state_dtype
        assert set(var.graphs) == {*STEP_GRAPHS, "segment"}
        assert var.validation["passed"]
        for kind, g in var.graphs.items():
            assert g.file == f"v1/{name}/{kind}.onnx" and g.sha256 == sha256_file(out / g.file)
            assert [i["name"] for i in g.inputs] == list(IO_NAMES[kind][0])
            assert [o["name"] for o in g.outputs] == list(IO_NAMES[kind][1])
            assert g.external_data is None
    state = m.variants["bf16"].graphs["l_step"].outputs[0]
    assert state == {"name": "z_L_new", "dtype": "bfloat16", "shape": ["batch", 17, 64]}


def report_config(report):
    from hrm.config import HRMConfig

    return HRMConfig.from_dict(report.config)


@pytest.mark.parametrize("victim", ["v1/fp16/l_step.onnx", "v1/init/H_init.npy", "v1/bf16/heads.onnx"])
def test_changed_byte_is_detected(tmp_path, tiny_export, victim):
    _, out = tiny_export
    copy = tmp_path / "deploy"
    shutil.copytree(out, copy)
    load_manifest(copy, verify=True)
    path = copy / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match the manifest"):
        load_manifest(copy, verify=True)


def test_external_data_is_hashed_and_verified(tmp_path, tiny_ckpt_path):
    from hrm.export import export_deployment

    out = tmp_path / "deploy"
    report = export_deployment(tiny_ckpt_path, out, precisions="fp16,bf16", external_data_threshold=0)
    assert report.passed  # ORT (fp16) and the bf16 emulation both read external data
    m = load_manifest(out, verify=True)
    for kind, g in m.variants["fp16"].graphs.items():
        if kind in ("embed", "heads"):  # the tiny model's tables are under onnx's 1 KiB per-tensor threshold
            assert g.external_data is None
            continue
        assert g.external_data == {"file": f"v1/fp16/{kind}.onnx.data", "sha256": sha256_file(out / g.external_data["file"])}
    data = out / "v1/fp16/l_step.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ManifestError, match="l_step.onnx.data"):
        load_manifest(out, verify=True)


def test_manifest_written_last_and_files_readable(tiny_export):
    _, out = tiny_export
    manifest_time = (out / "manifest.json").stat().st_mtime
    files = [p for p in out.rglob("*") if p.is_file()]
    assert all(p.stat().st_mtime <= manifest_time for p in files)
    umask = os.umask(0)
    os.umask(umask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in files)  # not the 0600 of mkstemp
    assert not [p for p in out.rglob(".*")]  # no temp/staging leftovers


def test_unknown_halt_rule_is_refused_naming_the_key(tmp_path, tiny_export):
    """A halting rule this reader does not know is an error, not HRM's rule by default."""
    _, out = tiny_export
    copy = shutil.copytree(out, tmp_path / "deploy")
    raw = json.loads((copy / "manifest.json").read_text())
    raw["recurrence"]["halt_rule"] = "q_halt > 1"
    (copy / "manifest.json").write_text(json.dumps(seal(raw)))  # sealed, as a newer hrm-deploy would write it
    with pytest.raises(ManifestError, match=r"\[recurrence\]: 'halt_rule' is 'q_halt > 1'; this hrm-deploy knows"):
        load_manifest(copy, verify=False)
