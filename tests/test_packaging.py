"""Packaging: the hrm.* namespace resolves, the wheel maps the fixed layout, and the runtime is torch-free."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TORCH = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_namespace_resolves_to_fixed_layout():
    import hrm.export
    import hrm.runtime
    import hrm.runtime.backends
    import hrm.trt_plugins

    assert Path(hrm.export.__file__).parent.name == "export"
    assert Path(hrm.runtime.__file__).parent.name == "runtime"
    assert Path(hrm.trt_plugins.__file__).parent.name == "trt_plugins"


def test_runtime_imports_without_torch():
    proc = run_python(BLOCK_TORCH + "import hrm, hrm.config, hrm.manifest, hrm.checkpoint, hrm.tasks, hrm.runtime\n"
                      "assert 'torch' not in sys.modules\nprint('ok')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_block_really_blocks_torch():
    """Guard the guard: the blocker must make `import torch` fail, or the test above proves nothing."""
    proc = run_python(BLOCK_TORCH + "import torch")
    assert proc.returncode != 0 and "blocked" in proc.stderr


def test_package_list_covers_every_package_dir():
    """pyproject lists packages explicitly (package-dir mapping); a new sub-package must be added there."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    mapping = project["tool"]["setuptools"]["package-dir"]
    roots = {"hrm": ROOT / "hrm", "hrm.export": ROOT / "export", "hrm.runtime": ROOT / "runtime",
             "hrm.trt_plugins": ROOT / "trt_plugins"}
    assert set(mapping) >= set(roots)
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= listed, f"packages missing from pyproject: {sorted(found - listed)}"


@pytest.mark.slow
def test_wheel_maps_layout_into_hrm_namespace(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("hrm_deploy-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hrm/export/__init__.py" in names and "hrm/runtime/__init__.py" in names
    assert "hrm/runtime/backends/__init__.py" in names and "hrm/trt_plugins/__init__.py" in names
    assert not any(n.startswith(("runtime/", "export/", "trt_plugins/")) for n in names)
