"""An interrupted export leaves nothing half-written: no DIR, no staging leftovers, an old DIR intact."""

from __future__ import annotations

import os

import pytest

from hrm.export import api
from hrm.export.api import export_deployment


class Boom(Exception):
    pass


def _explode_after(monkeypatch, name: str, calls: int, exc: type[BaseException] = Boom) -> None:
    """Make ``api.<name>`` raise on its ``calls``-th call (the earlier ones run for real)."""
    real = getattr(api, name)
    seen = {"n": 0}

    def wrapper(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] >= calls:
            raise exc("simulated failure mid-export")
        return real(*args, **kwargs)

    monkeypatch.setattr(api, name, wrapper)


@pytest.mark.parametrize("where", [("save_graph", 3), ("save_init", 1), ("publish_dir", 1)])
def test_failure_mid_export_leaves_nothing(tmp_path, tiny_ckpt_path, monkeypatch, where):
    if where[0] == "publish_dir":
        from hrm.export import publish as api_module
    else:
        api_module = api
    real = getattr(api_module, where[0])

    def boom(*args, **kwargs):
        raise Boom("simulated failure mid-export")

    monkeypatch.setattr(api_module, where[0], boom if where[1] == 1 else real)
    if where[1] != 1:
        _explode_after(monkeypatch, *where)
    out = tmp_path / "deploy"
    with pytest.raises(Boom):
        export_deployment(tiny_ckpt_path, out, precisions="fp32,fp16", validate=False)
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_during_validation(tmp_path, tiny_ckpt_path, monkeypatch):
    import hrm.export.validate as validate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "validate_variant", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_deployment(tiny_ckpt_path, tmp_path / "deploy", precisions="fp32")
    assert list(tmp_path.iterdir()) == []


def test_force_keeps_old_dir_until_new_one_is_complete(tmp_path, tiny_ckpt_path, monkeypatch):
    from hrm.manifest import load_manifest

    out = tmp_path / "deploy"
    export_deployment(tiny_ckpt_path, out, precisions="fp16", validate=False)
    old = (out / "manifest.json").read_bytes()
    _explode_after(monkeypatch, "save_graph", 5)
    with pytest.raises(Boom):
        export_deployment(tiny_ckpt_path, out, precisions="fp32,fp16", validate=False, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "v1"]
    assert (out / "manifest.json").read_bytes() == old
    monkeypatch.undo()
    export_deployment(tiny_ckpt_path, out, precisions="fp32", validate=False, force=True)
    assert set(load_manifest(out).variants) == {"fp32"}
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "v1", "v2"]  # v1 kept for readers mid-load
    umask = os.umask(0)
    os.umask(umask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~umask for p in out.rglob("*") if p.is_file())  # not 0600


def test_cli_interrupt_message(tmp_path, tiny_ckpt_path, monkeypatch):
    from click.testing import CliRunner

    from hrm.cli.export import main

    _explode_after(monkeypatch, "save_init", 1, KeyboardInterrupt)
    result = CliRunner().invoke(main, ["--checkpoint", str(tiny_ckpt_path), "--out", str(tmp_path / "d"),
                                       "--precision", "fp32", "--no-validate"])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "error: interrupted"
    assert list(tmp_path.iterdir()) == []
