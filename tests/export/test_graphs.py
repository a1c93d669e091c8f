"""Graph construction: every kind and precision builds, passes the checker and shape inference, uses
only TensorRT-friendly ops, has the manifest's I/O contract and shares weights in the fused segment."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hrm.export.graphs import GRAPH_KINDS, build_graph, graph_io
from hrm.export.precision import get_precision
from hrm.export.writer import check_graph, save_graph
from hrm.manifest import FLOAT_PRECISIONS, IO_NAMES

#: The op vocabulary the exporter may emit: plain opset-17 ops TensorRT 10.3+ parses (no Attention,
#: RMSNormalization or other opset-23 ops, no custom domains).
TRT_SAFE_OPS = {"Gather", "Concat", "Reshape", "Add", "Mul", "MatMul", "Transpose", "Split", "Softmax", "Sigmoid",
                "Cast", "Pow", "ReduceMean", "Sqrt", "Div", "Neg", "Slice", "Identity"}


@pytest.mark.parametrize("precision", FLOAT_PRECISIONS)
@pytest.mark.parametrize("kind", GRAPH_KINDS)
def test_every_graph_builds_and_checks(tmp_path, tiny_cfg, tiny_tensors, kind, precision):
    p = get_precision(precision)
    model = build_graph(kind, tiny_cfg, tiny_tensors, p)
    ins, outs = graph_io(kind, tiny_cfg, p)
    entry = save_graph(model, tmp_path, f"{precision}/{kind}.onnx", kind, ins, outs)
    check_graph(tmp_path / entry.file, outs)  # onnx.checker full_check + strict shape inference
    assert [i.name for i in model.graph.input] == list(IO_NAMES[kind][0])
    assert [o.name for o in model.graph.output] == list(IO_NAMES[kind][1])
    assert {n.op_type for n in model.graph.node} <= TRT_SAFE_OPS
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    for vi in [*model.graph.input, *model.graph.output]:  # batch is the only dynamic dim
        dims = vi.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
        assert all(d.dim_value > 0 for d in dims[1:])


def test_io_contract(tiny_cfg):
    c = tiny_cfg
    ins, outs = graph_io("heads", c, get_precision("fp16"))
    assert [s.to_dict() for s in outs] == [
        {"name": "logits", "dtype": "float16", "shape": ["batch", c.seq_len, c.vocab_size]},
        {"name": "q_halt", "dtype": "float32", "shape": ["batch"]},
        {"name": "q_continue", "dtype": "float32", "shape": ["batch"]}]
    ins, outs = graph_io("embed", c, get_precision("bf16"))
    assert [s.to_dict() for s in ins] == [{"name": "tokens", "dtype": "int32", "shape": ["batch", c.seq_len]},
                                          {"name": "puzzle_ids", "dtype": "int32", "shape": ["batch"]}]
    assert outs[0].to_dict() == {"name": "x", "dtype": "bfloat16", "shape": ["batch", c.total_seq_len, c.hidden_size]}


def test_fp32_has_no_casts_and_low_precision_norms_in_fp32(tiny_cfg, tiny_tensors):
    fp32 = build_graph("l_step", tiny_cfg, tiny_tensors, get_precision("fp32"))
    assert not [n for n in fp32.graph.node if n.op_type == "Cast"]
    fp16 = build_graph("l_step", tiny_cfg, tiny_tensors, get_precision("fp16"))
    casts = [onnx.helper.get_attribute_value(n.attribute[0]) for n in fp16.graph.node if n.op_type == "Cast"]
    # per block: 2 RMSNorms + RoPE on q and k, each cast up to fp32 and back down
    blocks = tiny_cfg.L_layers
    assert casts.count(onnx.TensorProto.FLOAT) == 4 * blocks and casts.count(onnx.TensorProto.FLOAT16) == 4 * blocks
    inferred = onnx.shape_inference.infer_shapes(fp16)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    pows = [n for n in fp16.graph.node if n.op_type == "Pow"]
    assert pows and all(types[n.output[0]] == onnx.TensorProto.FLOAT for n in pows)


def test_low_precision_weights_are_rounded_from_fp32_master(tiny_cfg, tiny_tensors):
    import ml_dtypes

    name = "L_level.layers.0.self_attn.qkv_proj.weight"
    for precision, dtype in (("fp16", np.float16), ("bf16", ml_dtypes.bfloat16)):
        model = build_graph("l_step", tiny_cfg, tiny_tensors, get_precision(precision))
        init = {t.name: t for t in model.graph.initializer}[name]
        got = onnx.numpy_helper.to_array(init)
        want = tiny_tensors[name].T.astype(dtype)
        assert got.dtype == np.dtype(dtype)
        assert np.array_equal(got.astype(np.float32), want.astype(np.float32))


def test_fused_segment_shares_weights(tiny_cfg, tiny_tensors):
    p = get_precision("fp32")
    seg = build_graph("segment", tiny_cfg, tiny_tensors, p)
    names = [t.name for t in seg.graph.initializer]
    assert len(names) == len(set(names))
    weights = {n for n in names if n.endswith(".weight")}
    parts = set()
    for kind in ("l_step", "h_step", "heads"):
        parts |= {t.name for t in build_graph(kind, tiny_cfg, tiny_tensors, p).graph.initializer if t.name.endswith(".weight")}
    assert weights == parts  # one initializer per weight, used by every unrolled step
    qkv = "L_level.layers.0.self_attn.qkv_proj.weight"
    uses = sum(qkv in n.input for n in seg.graph.node)
    assert uses == tiny_cfg.H_cycles * tiny_cfg.L_cycles


def _run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def test_opset_18_matches_opset_17(tiny_cfg, tiny_tensors):
    p = get_precision("fp32")
    rng = np.random.default_rng(1)
    feed = {k: rng.standard_normal((2, tiny_cfg.total_seq_len, tiny_cfg.hidden_size), dtype=np.float32)
            for k in ("z_L", "z_H", "x")}
    m17 = build_graph("l_step", tiny_cfg, tiny_tensors, p, opset=17)
    m18 = build_graph("l_step", tiny_cfg, tiny_tensors, p, opset=18)
    onnx.checker.check_model(m18, full_check=True)
    assert any(n.op_type == "ReduceMean" and len(n.input) == 2 for n in m18.graph.node)
    np.testing.assert_array_equal(_run(m17, feed)[0], _run(m18, feed)[0])


def test_unsupported_opset_is_refused(tiny_cfg, tiny_tensors):
    from hrm.errors import ExportError

    with pytest.raises(ExportError, match="supported opsets"):
        build_graph("embed", tiny_cfg, tiny_tensors, get_precision("fp32"), opset=13)


def test_external_data(tmp_path, tiny_cfg, tiny_tensors):
    """Above the threshold the weights go to <graph>.onnx.data, hashed in the entry; ORT still runs it."""
    from hrm.io import sha256_file

    p = get_precision("fp16")
    model = build_graph("h_step", tiny_cfg, tiny_tensors, p)
    ins, outs = graph_io("h_step", tiny_cfg, p)
    entry = save_graph(model, tmp_path, "fp16/h_step.onnx", "h_step", ins, outs, external_data_threshold=0)
    assert entry.external_data == {"file": "fp16/h_step.onnx.data", "sha256": sha256_file(tmp_path / "fp16/h_step.onnx.data")}
    assert (tmp_path / entry.file).stat().st_size < 20_000 < (tmp_path / "fp16/h_step.onnx.data").stat().st_size
    check_graph(tmp_path / entry.file, outs)
    rng = np.random.default_rng(0)
    shape = (1, tiny_cfg.total_seq_len, tiny_cfg.hidden_size)
    feed = {"z_H": rng.standard_normal(shape).astype(np.float16), "z_L": rng.standard_normal(shape).astype(np.float16)}
    sess = ort.InferenceSession(str(tmp_path / entry.file), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, feed)[0], _run(build_graph("h_step", tiny_cfg, tiny_tensors, p), feed)[0])


@pytest.mark.parametrize("changes", [dict(pos_encodings="learned"), dict(puzzle_emb_ndim=0),
                                     dict(puzzle_emb_ndim=96)])
def test_config_variants_match_torch(tiny_cfg, changes):
    """Learned positions, no puzzle embedding, a padded 2-token puzzle prefix: fp32 parity of embed + l_step."""
    import torch

    from hrm.model import HRM
    from helpers import random_tensors

    cfg = tiny_cfg.replace(**changes)
    tensors = random_tensors(cfg, seed=3)
    model = HRM.from_tensors(cfg, tensors)
    p = get_precision("fp32")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocab_size, (2, cfg.seq_len)).astype(np.int32)
    ids = rng.integers(0, cfg.num_puzzle_identifiers, (2,)).astype(np.int32)
    x = _run(build_graph("embed", cfg, tensors, p), {"tokens": tokens, "puzzle_ids": ids})[0]
    z = rng.standard_normal(x.shape, dtype=np.float32)
    z_L = _run(build_graph("l_step", cfg, tensors, p), {"z_L": z, "z_H": z[::-1].copy(), "x": x})[0]
    with torch.no_grad():
        x_ref = model.embed(torch.from_numpy(tokens), torch.from_numpy(ids)).numpy()
        z_ref = model.l_step(torch.from_numpy(z), torch.from_numpy(z[::-1].copy()), torch.from_numpy(x_ref)).numpy()
    assert np.abs(x - x_ref).max() <= 1e-5 * np.abs(x_ref).max()
    assert np.abs(z_L - z_ref).max() <= 1e-4 * np.abs(z_ref).max()
