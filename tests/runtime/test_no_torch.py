"""hrm.runtime and its ort/trt backends never import torch: proven in a subprocess where torch cannot load."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("onnxruntime")

BLOCK_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test (import of {name!r})")
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def test_blocker_really_blocks():
    r = run_blocked("import torch")
    assert r.returncode != 0 and "blocked" in r.stderr


def test_runtime_solves_with_ort_without_torch(tiny_deploy):
    r = run_blocked(f"""
        import numpy as np
        import hrm.runtime
        import hrm.runtime.backends.ort, hrm.runtime.backends.trt, hrm.runtime.engine_check, hrm.runtime.gpu
        import hrm.evaluation, hrm.tasks.inputs
        import hrm.runtime.backends.torch_ref  # importable; torch only on activate
        from hrm.runtime import Session, Scheduler, load_deployment
        from hrm.runtime.backends.options import OrtOptions
        dep = load_deployment({str(tiny_deploy)!r})
        with Session(dep, backend="ort", batch=2, options=OrtOptions(threads=1)) as s:
            res = s.solve(s.task.parse("1... .... .... ...4\\n.2.. .... .... ....", "<t>"), halting="act")
            sched = Scheduler(s, 2)
            f = sched.submit(res[0].tokens)
            sched.run_until_idle()
        assert len(res) == 2 and f.result().segments >= 1
        assert "torch" not in sys.modules
        print("OK", [r.segments for r in res])
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK")


def test_hrm_run_cli_without_torch(tiny_deploy):
    r = run_blocked(f"""
        import sys
        from hrm.cli.run import main
        sys.argv = ["hrm-run", {str(tiny_deploy)!r}, "--json", "1... .... .... ...4"]
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        assert "torch" not in sys.modules
    """)
    assert r.returncode == 0, r.stderr
    assert '"segments"' in r.stdout


def test_export_without_validation_needs_no_torch(tiny_ckpt_path, tmp_path):
    """The Jetson flow (deploy/jetson/README.md): on the device, graphs (and engines) are rebuilt from the
    checkpoint with --no-validate, torch-free; the graphs are byte-identical to a validated export's, so the
    workstation's validation carries over (same sha256 in both manifests)."""
    pytest.importorskip("onnx")
    from hrm.export import export_deployment
    from hrm.manifest import load_manifest

    validated = tmp_path / "validated"
    export_deployment(tiny_ckpt_path, validated, precisions="fp32,fp16")
    device = tmp_path / "device"
    r = run_blocked(f"""
        import sys
        from hrm.cli.export import main
        sys.argv = ["hrm-export", "--checkpoint", {str(tiny_ckpt_path)!r}, "--out", {str(device)!r},
                    "--precision", "fp32,fp16", "--no-validate"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        assert "torch" not in sys.modules
        print("OK")
    """)
    assert r.returncode == 0, r.stderr
    a, b = load_manifest(validated), load_manifest(device)
    for p in ("fp32", "fp16"):
        assert {k: g.sha256 for k, g in a.variant(p).graphs.items()} == {k: g.sha256 for k, g in b.variant(p).graphs.items()}
