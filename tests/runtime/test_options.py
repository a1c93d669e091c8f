"""Per-backend option objects: validated when made, device rules resolved in one place, refused by the wrong backend."""

from __future__ import annotations

import pytest

from hrm.runtime.backends.options import OptionsError, OrtOptions, TorchOptions, TrtOptions, options_for


def test_values_are_validated_at_construction():
    with pytest.raises(OptionsError, match="threads must be >= 1"):
        OrtOptions(threads=0)
    with pytest.raises(OptionsError, match="optimization must be one of"):
        OrtOptions(optimization="max")
    with pytest.raises(OptionsError, match="device_id must be >= 0"):
        OrtOptions(device_id=-1)


def test_device_rules_live_in_for_device():
    # threads are a CPU setting: kept on the CPU, dropped on CUDA
    assert OrtOptions(threads=3).for_device("cpu").threads == 3
    assert OrtOptions(threads=3).for_device("cuda").threads is None
    # spin: on only where one session does the work (fused, or CUDA) unless asked
    assert OrtOptions().for_device("cpu").spin is False
    assert OrtOptions(fused=True).for_device("cpu").spin is True
    assert OrtOptions().for_device("cuda").spin is True
    assert OrtOptions(spin=True).for_device("cpu").spin is True and OrtOptions(spin=False, fused=True).for_device("cpu").spin is False
    with pytest.raises(OptionsError, match="cuda_graph needs device 'cuda'"):
        OrtOptions(cuda_graph=True).for_device("cpu")


def test_options_for_names_what_a_backend_lacks():
    assert options_for("ort", threads=2, fused=True) == OrtOptions(threads=2, fused=True)
    assert options_for("trt") == TrtOptions() and options_for("torch", checkpoint="x.safetensors").checkpoint == "x.safetensors"
    with pytest.raises(OptionsError, match=r"the torch backend has no fused option \(ort, trt have it\)"):
        options_for("torch", fused=True)
    with pytest.raises(OptionsError, match=r"the trt backend has no threads option \(ort has it\)"):
        options_for("trt", threads=2)
    with pytest.raises(OptionsError, match="takes OrtOptions, got TrtOptions"):
        options_for("ort", TrtOptions())
    with pytest.raises(OptionsError, match="unknown backend 'onnx'"):
        options_for("onnx")


def test_describe_is_json_able(tmp_path):
    import json

    d = TorchOptions(checkpoint=tmp_path / "m.safetensors", model=object()).describe()
    assert d == {"checkpoint": str(tmp_path / "m.safetensors"), "model": "object"}
    assert json.dumps(OrtOptions(threads=2).for_device("cpu").describe())


def test_backend_refuses_another_backends_options(tiny_deploy):
    pytest.importorskip("onnxruntime")
    from hrm.runtime import Session

    with pytest.raises(OptionsError, match="ort backend takes OrtOptions, got TrtOptions"):
        Session(tiny_deploy, backend="ort", options=TrtOptions())
    with Session(tiny_deploy, backend="ort", options=OrtOptions(threads=1, fused=True)) as s:
        described = s.backend.describe()
    assert described["threads"] == 1 and described["spin"] is True and described["fused"] is True


def test_session_takes_a_backend_instance_or_loader(tiny_deploy):
    """Like Polygraphy's runners: a ready backend, or a callable returning one, called on first use only."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from hrm.runtime import Session, load_deployment
    from hrm.runtime.backends.ort import OrtBackend

    dep = load_deployment(tiny_deploy)
    tokens = np.random.default_rng(2).integers(1, dep.config.vocab_size, (3, dep.config.seq_len)).astype(np.int32)
    with Session(dep, options=OrtOptions(threads=1), batch=2) as named:
        want = [r.answer_tokens.tolist() for r in named.solve(tokens)]
    calls = []

    def loader():
        calls.append(1)
        return OrtBackend(dep, "fp16", "cpu", OrtOptions(threads=1))

    lazy = Session(dep, backend=loader, batch=2)
    lazy.close()  # nothing loaded, nothing to free
    assert calls == []
    with lazy:
        assert lazy.backend.precision == "fp16" and calls == [1]
        assert len(lazy.solve(tokens)) == 3 and calls == [1]
    with Session(dep, backend=OrtBackend(dep, "fp32", "cpu", OrtOptions(threads=1)), batch=2) as given:
        assert [r.answer_tokens.tolist() for r in given.solve(tokens)] == want
    with pytest.raises(ValueError, match="brings its own"):
        Session(dep, backend=OrtBackend(dep), options=OrtOptions())
    with pytest.raises(TypeError, match="expected a name, a Backend or a callable returning one; got str"):
        Session(dep, backend=lambda: "ort").activate()
