"""Engine-build rules that need no TensorRT: the strict timing cache, the version gate, the recorded
compute capabilities. (TF32 and REQUIRE_USER_ALLOCATION on real TensorRT-RTX builds: test_engine.py.)"""

from __future__ import annotations

import types

import pytest

from hrm.errors import ExportError
from hrm.export.engine import EngineOptions, device_info, load_timing_cache
from hrm.runtime.gpu import GpuInfo
from hrm.runtime.trt_lib import FLAVOURS, TensorRT, import_tensorrt


class Cache:
    def __init__(self, data: bytes) -> None:
        self.data = data


class Config:
    """IBuilderConfig's timing-cache calls; accepts only caches made on "this GPU" (or empty)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def create_timing_cache(self, data: bytes) -> Cache:
        return Cache(bytes(data))

    def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
        self.calls.append((cache.data, ignore_mismatch))
        return ignore_mismatch or cache.data in (b"", b"this-gpu")


def test_timing_cache_is_loaded_strictly(tmp_path):
    path = tmp_path / "trt.cache"
    path.write_bytes(b"this-gpu")
    config = Config()
    cache, note = load_timing_cache(config, path)
    assert cache.data == b"this-gpu" and note is None
    assert config.calls == [(b"this-gpu", False)]  # never ignore_mismatch=True


def test_foreign_timing_cache_is_refused_and_replaced_by_an_empty_one(tmp_path, caplog):
    path = tmp_path / "trt.cache"
    path.write_bytes(b"other-gpu")
    config = Config()
    cache, note = load_timing_cache(config, path)
    assert cache.data == b"" and config.calls == [(b"other-gpu", False), (b"", False)]
    assert "refused" in note and str(path) in note and "empty" in note
    assert "refused" in caplog.text


def test_new_timing_cache_starts_empty_without_a_note(tmp_path):
    cache, note = load_timing_cache(Config(), tmp_path / "new.cache")
    assert cache.data == b"" and note is None


def _module(name: str, version: str):
    return types.SimpleNamespace(__name__=name, __version__=version)


@pytest.mark.parametrize("version, ok", [("8.6.2.3", False), ("10.2.0", False), ("10.3.0.26", True), ("11.0.1", True)])
def test_tensorrt_version_gate(version, ok):
    importer = lambda name: _module(name, version)  # noqa: E731
    if ok:
        assert import_tensorrt("tensorrt", importer=importer).version == version
        return
    why = rf"TensorRT {version} is too old.*10\.3.*JetPack 6\.1 or 6\.2.*JetPack 6\.0 ships TensorRT 8\.6"
    with pytest.raises(Exception, match=why):
        import_tensorrt("tensorrt", importer=importer)


def test_export_names_the_flag_when_tensorrt_is_too_old(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", _module("tensorrt", "8.6.1"))
    from hrm.export.engine import import_tensorrt as export_import

    with pytest.raises(ExportError, match=r"^--engine: TensorRT 8\.6\.1 is too old"):
        export_import("tensorrt")


def _trt(flavour: str) -> TensorRT:
    return TensorRT(flavour, _module(flavour, "10.3.0" if flavour == "tensorrt" else "1.7.1"))


def test_recorded_capabilities_are_real(monkeypatch):
    import hrm.runtime.gpu as gpu

    orin = GpuInfo(True, None, "Orin", "8.7", 1, "12.6", "12.6", "libcudart.so.12 (system loader)")
    monkeypatch.setattr(gpu, "_PROBE", orin)
    assert device_info(_trt("tensorrt"), EngineOptions()) == ("Orin", "8.7")
    assert device_info(_trt("tensorrt_rtx"), EngineOptions()) == ("Orin", ",".join(FLAVOURS["tensorrt_rtx"].default_targets))
    assert device_info(_trt("tensorrt_rtx"), EngineOptions(compute_capabilities=("current", "SM120"))) == ("Orin", "8.7,12.0")
    monkeypatch.setattr(gpu, "_PROBE", GpuInfo(False, "no CUDA runtime: none here"))
    assert device_info(_trt("tensorrt_rtx"), EngineOptions(compute_capabilities=("89",))) == \
        ("none (built without GPU)", "8.9")
    with pytest.raises(ExportError, match="'current' needs a readable GPU here"):
        device_info(_trt("tensorrt_rtx"), EngineOptions(compute_capabilities=("current",)))
    assert device_info(_trt("tensorrt"), EngineOptions()) == ("unknown", "unknown")  # and the check refuses it
