"""The ``trt`` backend's own logic on a CPU, against a recording stand-in for TensorRT and CUDA
(tests/runtime/fake_trt.py): one context per (engine, batch size, binding set) that is never changed
after its first enqueue, shared USER_MANAGED scratch memory, capture only after an eager enqueue of every
context at its final shape, a refused/failed capture falling back to eager, TensorRT-RTX's runtime config
and runtime cache, the one logger and the version gate. What TensorRT itself does with these calls is
tested on a GPU in test_trt.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import fake_trt
from hrm.errors import EngineMismatchError
from hrm.manifest import IO_NAMES, STEP_GRAPHS

MEMORY = {"embed": 4096, "l_step": 65536, "h_step": 32768, "heads": 8192, "segment": 131072}


@pytest.fixture
def fake(tiny_deploy, tmp_path, monkeypatch):
    """A copy of the tiny deployment with fake fp32 engines, and the fakes installed; returns a maker."""
    from deploy_helpers import copy_deployment

    import hrm.runtime.backends.trt as trt_backend
    import hrm.runtime.gpu as gpu
    import hrm.runtime.trt_lib as trt_lib
    from hrm.io import sha256_file
    from hrm.manifest import EngineEntry, load_manifest

    def make(flavour="tensorrt", version="10.3.0.26", capturable=True, fail_capture=False, kinds=STEP_GRAPHS):
        d = copy_deployment(tiny_deploy, tmp_path / f"d{len(list(tmp_path.iterdir()))}")
        man = load_manifest(d, verify=False)
        for kind in kinds:
            rel = str(Path(man.variants["fp32"].graphs[kind].file).with_suffix(".engine"))  # beside its graph
            (d / rel).write_bytes(kind.encode())
            man.variants["fp32"].engines[kind] = EngineEntry(kind, rel, sha256_file(d / rel), flavour, version,
                                                             "Fake GPU", "8.7")
        man.save()
        log = fake_trt.Log()
        io = {k: (list(IO_NAMES[k][0]), list(IO_NAMES[k][1]), "DataType.FLOAT") for k in (*STEP_GRAPHS, "segment")}
        module = fake_trt.make_module(log, flavour, version, capturable, MEMORY, io)
        monkeypatch.setitem(sys.modules, flavour, module)
        monkeypatch.setattr(trt_lib, "_LOGGERS", {})
        monkeypatch.setattr(trt_backend, "cuda_memory", fake_trt.FakeCudaMemory)
        monkeypatch.setattr(gpu, "DeviceBuffer", fake_trt.FakeDeviceBuffer)
        graph = fake_trt.fake_graph_class(log, fail=fail_capture)
        monkeypatch.setattr(gpu, "CudaGraph", graph)
        return d, log, graph
    return make


def _backend(d, **kw):
    from hrm.runtime.backends.options import TrtOptions
    from hrm.runtime.backends.trt import TrtBackend
    from hrm.runtime.deployment import load_deployment

    b = TrtBackend(load_deployment(d), "fp32", "cuda", TrtOptions(check=False, **kw))
    b.activate()
    return b


def _drive(b, plan=((1, 3), (4, 3), (1, 2), (4, 2))):
    for batch, segments in plan:
        b.allocate(batch)
        for _ in range(segments):
            b.segment()
            b.read_heads()


def _by_context(log):
    out: dict[int, list[tuple]] = {}
    for e in log.events:
        if e[0] in ("create", "set_device_memory", "set_input_shape", "set_tensor_address", "execute"):
            out.setdefault(e[1], []).append(e)
    return out


def test_one_context_per_engine_batch_and_binding_never_changed_after_first_enqueue(fake):
    d, log, _ = fake()
    b = _backend(d)
    _drive(b)
    contexts = _by_context(log)
    assert contexts
    batches_of_kind: dict[str, set] = {}
    for cid, events in contexts.items():
        kind, how = events[0][2], events[0][3]
        assert events[0][0] == "create" and how == "USER_MANAGED"
        first_exec = next(i for i, e in enumerate(events) if e[0] == "execute")
        # everything is set before the first enqueue, nothing after it
        assert all(e[0] == "execute" for e in events[first_exec:]), (kind, events)
        # the first enqueue is eager: capture only ever records contexts that already ran at their shape
        assert events[first_exec][-1] is False
        shapes = {e[3][0] for e in events if e[0] == "set_input_shape"}
        assert len(shapes) == 1, (kind, shapes)  # one batch size per context
        batches_of_kind.setdefault(kind, set()).add((shapes.pop(), tuple(e[3] for e in events if e[0] == "set_tensor_address")))
        names = [e[2] for e in events if e[0] == "set_tensor_address"]
        assert sorted(names) == sorted([*IO_NAMES[kind][0], *IO_NAMES[kind][1]])
    # l_step reads z_L[i], z_H[j] and writes z_L[1-i]: inside a segment i alternates, and j differs before and
    # after the h_step, so four binding sets per batch size, each its own context
    assert len([k for k in batches_of_kind["l_step"] if k[0] == 4]) == 4
    assert {k[0] for k in batches_of_kind["embed"]} == {1, 4}
    # no context was created or changed while capturing
    assert not [e for e in log.events if e[-1] and e[0] != "execute"]
    # one shared scratch block, as large as the largest engine needs
    mems = {e[2:4] for e in log.events if e[0] == "set_device_memory"}
    assert len(mems) == 1 and next(iter(mems))[1] == max(MEMORY[k] for k in STEP_GRAPHS)
    b.deactivate()
    assert b._scratch is None


def test_graphs_captured_once_per_batch_and_replayed_after_batch_switches(fake):
    d, log, graph = fake()
    b = _backend(d)
    _drive(b)
    captured = [e for e in log.events if e[0] == "captured"]
    assert len(captured) == 2  # batch 1 and batch 4 (tiny model: the ping-pong parity at segment start is fixed)
    # after 1 -> 4 -> 1 -> 4, the last segments replay graphs; nothing was re-captured or re-bound
    tail = log.events[log.events.index(captured[-1]):]
    assert [e for e in tail if e[0] == "launch"]
    assert not [e for e in tail if e[0] in ("create", "set_input_shape", "set_tensor_address")]
    b.deactivate()
    assert all(g.freed for g in graph.made)


def test_failed_capture_warns_once_and_runs_eagerly(fake):
    d, log, _ = fake(fail_capture=True)
    b = _backend(d)
    with pytest.warns(UserWarning, match="CUDA graph capture failed"):
        _drive(b, ((2, 3),))
    assert b.cuda_graph is False
    assert not [e for e in log.events if e[0] in ("captured", "launch")]
    # segments after the failure are eager enqueues
    assert log.events[-1][0] == "execute" and log.events[-1][-1] is False


def test_batch_outside_the_profile_names_the_rebuild(fake):
    d, _, _ = fake()
    b = _backend(d)
    with pytest.raises(EngineMismatchError, match=r"batch 32 is outside its optimisation profile.*hrm-export"):
        b.allocate(32)


def test_runtime_uses_the_one_logger(fake):
    import hrm.runtime.trt_lib as trt_lib

    d, log, _ = fake()
    b = _backend(d)
    runtime_logger = next(e[1] for e in log.events if e[0] == "runtime")
    assert runtime_logger is trt_lib.logger(b._trt)
    b.deactivate()


def test_tensorrt_older_than_10_3_is_refused_naming_jetpack(fake):
    d, _, _ = fake(version="8.6.2")
    with pytest.raises(EngineMismatchError, match=r"TensorRT 8\.6\.2 is too old.*10\.3.*JetPack 6\.1 or 6\.2"):
        _backend(d)


def test_rtx_runtime_config_cache_and_capturability(fake):
    d, log, _ = fake(flavour="tensorrt_rtx", version="1.7.1.116", capturable=False)
    b = _backend(d)
    assert {c.strategy for c in b._configs.values()} == {"USER_MANAGED"}
    assert {c.dynamic_shapes_kernel_specialization_strategy for c in b._configs.values()} == {"EAGER"}
    assert len({id(c.cache) for c in b._configs.values()}) == 1  # one runtime cache shared by the engines
    with pytest.warns(UserWarning, match="not stream-capturable"):
        _drive(b, ((2, 3),))
    assert not [e for e in log.events if e[0] == "captured"]
    assert [e for e in log.events if e[0] == "is_stream_capturable"]
    b.deactivate()
    saved = d / "v1" / "fp32" / "tensorrt_rtx.runtime_cache"  # inside the published version, beside the engines
    assert saved.read_bytes().startswith(b"rtx-cache")
    # the next session starts from it
    b2 = _backend(d)
    assert ("runtime_cache_load", saved.read_bytes(), False) in log.events
    b2.deactivate()


def test_rtx_capturable_contexts_are_captured(fake):
    d, log, _ = fake(flavour="tensorrt_rtx", version="1.7.1.116", capturable=True)
    b = _backend(d)
    _drive(b, ((2, 3),))
    assert [e for e in log.events if e[0] == "captured"] and b.cuda_graph
    b.deactivate()
