"""The ``ort-contrib`` graph ops (ONNX Runtime's fused com.microsoft ops), on the tiny model:

* every graph kind and precision builds, checks, and contains the fused ops and none of the unfused chains;
* parity on the CPU ORT: each graph against the PyTorch reference and against the standard graph
  (fp32: normwise error <= 1e-5, i.e. max abs <= 1e-5 of the state's max |value| ~ 4 at RMS 1; fp16: the
  exporter's step tolerance 8 eps = 7.8e-3), plus the export's own validation report;
* a full ``solve`` through the runtime (step graphs and fused segment graph) gives the reference's answers;
* TensorRT refuses these graphs (export, engine build, runtime trt backend), with the reason;
* the manifest records the ops and reads back (an older manifest without it means ``standard``).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hrm.errors import ExportError, ManifestError
from hrm.export.compare import normwise
from hrm.export.contrib import CONTRIB_OPS
from hrm.export.graphs import GRAPH_KINDS, build_graph, graph_io
from hrm.export.precision import get_precision
from hrm.export.writer import check_graph, save_graph
from hrm.manifest import FLOAT_PRECISIONS, ORT_CONTRIB, STEP_GRAPHS, load_manifest, seal
from hrm.runtime.backends.options import OrtOptions

torch = pytest.importorskip("torch")

#: The unfused chains the standard graphs spell out (RMSNorm, RoPE, attention core): none may remain.
UNFUSED = {"Pow", "ReduceMean", "Sqrt", "Div", "Neg", "Softmax", "Transpose", "Concat"}


@pytest.fixture(scope="module")
def contrib_export(tmp_path_factory, tiny_ckpt_path):
    """(report, out_dir): the tiny model, fp32/fp16/bf16 + fused segment, ort-contrib, validated."""
    from hrm.export import export_deployment

    out = tmp_path_factory.mktemp("contrib") / "deploy"
    report = export_deployment(tiny_ckpt_path, out, precisions="fp32,fp16,bf16", segment=True, ops=ORT_CONTRIB)
    return report, out


@pytest.fixture(scope="module")
def model(tiny_cfg, tiny_tensors):
    from hrm.model import HRM

    torch.set_num_threads(1)
    return HRM.from_tensors(tiny_cfg, tiny_tensors)


def _blocks(cfg, kind: str) -> int:
    if kind == "l_step":
        return cfg.L_layers
    if kind == "h_step":
        return cfg.H_layers
    if kind == "segment":
        return cfg.H_cycles * (cfg.L_cycles * cfg.L_layers + cfg.H_layers)
    return 0


def _session(model_proto: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


# ---- structure ----------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", FLOAT_PRECISIONS)
@pytest.mark.parametrize("kind", GRAPH_KINDS)
def test_graph_uses_the_fused_ops_only(tmp_path, tiny_cfg, tiny_tensors, kind, precision):
    p = get_precision(precision)
    model = build_graph(kind, tiny_cfg, tiny_tensors, p, ops=ORT_CONTRIB)
    ins, outs = graph_io(kind, tiny_cfg, p)
    entry = save_graph(model, tmp_path, f"{precision}/{kind}.onnx", kind, ins, outs)
    check_graph(tmp_path / entry.file, outs)  # onnx.checker full_check + strict shape inference still pass
    counts = Counter(n.op_type for n in model.graph.node)
    blocks = _blocks(tiny_cfg, kind)
    assert counts["SkipSimplifiedLayerNormalization"] == 2 * blocks
    assert counts["RotaryEmbedding"] == 2 * blocks
    assert counts["MultiHeadAttention"] == blocks
    assert counts["MatMul"] >= 4 * blocks  # qkv, o_proj, gate_up, down: projections stay MatMuls
    if blocks:
        assert not UNFUSED & set(counts), counts
        # casts only where the heads produce fp32 q values; none inside the blocks
        assert counts["Cast"] == (1 if kind == "segment" and precision != "fp32" else 0)
    for n in model.graph.node:
        if n.op_type in CONTRIB_OPS:
            assert n.domain == "com.microsoft"
        else:
            assert n.domain in ("", "ai.onnx"), n
    domains = {o.domain: o.version for o in model.opset_import}
    assert domains.get("") == 17 and domains.get("com.microsoft") == (1 if blocks else None)
    if not blocks:  # embed and heads have no blocks: identical to the standard graphs
        std = build_graph(kind, tiny_cfg, tiny_tensors, p)
        assert [n.op_type for n in model.graph.node] == [n.op_type for n in std.graph.node]


def test_fused_segment_shares_weights_and_tables(tiny_cfg, tiny_tensors):
    model = build_graph("segment", tiny_cfg, tiny_tensors, get_precision("fp16"), ops=ORT_CONTRIB)
    names = [i.name for i in model.graph.initializer]
    assert len(names) == len(set(names))
    assert {"rope_cos_cache", "rope_sin_cache", "rms_norm_gamma_fp16"} <= set(names)
    cache = next(i for i in model.graph.initializer if i.name == "rope_cos_cache")
    assert list(cache.dims) == [tiny_cfg.total_seq_len, tiny_cfg.head_dim // 2]
    assert cache.data_type == onnx.TensorProto.FLOAT16


def test_bf16_emulation_rounds_contrib_outputs(tiny_cfg, tiny_tensors):
    """The bf16 CPU validation derives an fp32 copy that rounds every value-changing op's output to bf16;
    it must see the contrib ops' outputs as bf16 (their types come from the graph's value_info)."""
    from hrm.export.bf16 import emulate_bf16

    model = build_graph("l_step", tiny_cfg, tiny_tensors, get_precision("bf16"), ops=ORT_CONTRIB)
    contrib_outputs = [n.output[0] for n in model.graph.node if n.domain == "com.microsoft"]
    emulated = emulate_bf16(model)
    rounded = {n.input[0] for n in emulated.graph.node if n.name.endswith("/emulate_round")}
    assert contrib_outputs and all(o + "/fp32" in rounded for o in contrib_outputs if o != "z_L_new")


# ---- parity -------------------------------------------------------------------------------------

def _feeds(cfg, kind: str, precision, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (2, cfg.total_seq_len, cfg.hidden_size)
    names = {"l_step": ("z_L", "z_H", "x"), "h_step": ("z_H", "z_L"), "segment": ("z_H", "z_L", "x")}[kind]
    return {n: precision.round_carrier(rng.standard_normal(shape, dtype=np.float32)) for n in names}


def _reference(model, kind: str, precision, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    model.set_forward_dtype(precision.state_dtype)
    t = {k: torch.from_numpy(v).to(model.forward_dtype) for k, v in feeds.items()}
    with torch.no_grad():
        if kind == "l_step":
            out = [model.l_step(t["z_L"], t["z_H"], t["x"])]
        elif kind == "h_step":
            out = [model.h_step(t["z_H"], t["z_L"])]
        else:
            out = list(model.segment(t["z_H"], t["z_L"], t["x"]))
    return [o.float().numpy() for o in out]


@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-5), ("fp16", 8 * 2.0**-10)])
@pytest.mark.parametrize("kind", ["l_step", "h_step", "segment"])
def test_parity_with_reference_and_standard_graph(model, tiny_cfg, tiny_tensors, kind, precision, tolerance):
    p = get_precision(precision)
    if kind == "segment":  # 6 stacks from N(0,1) states amplify fp16 rounding (see validate.py): one more eps-bound
        tolerance = 1e-5 if precision == "fp32" else p.segment_tolerance
    feeds = _feeds(tiny_cfg, kind, p)
    contrib = _session(build_graph(kind, tiny_cfg, tiny_tensors, p, ops=ORT_CONTRIB)).run(None, feeds)
    standard = _session(build_graph(kind, tiny_cfg, tiny_tensors, p)).run(None, feeds)
    ref = _reference(model, kind, p, feeds)
    for i, (c, s, r) in enumerate(zip(contrib, standard, ref)):
        vs_ref, vs_std = normwise(c, r, tolerance), normwise(c, s, tolerance)
        assert vs_ref.max_rel <= tolerance, (kind, precision, i, vs_ref)
        assert vs_std.max_rel <= tolerance, (kind, precision, i, vs_std)
        assert vs_ref.max_rel <= 4 * max(normwise(s, r, tolerance).max_rel, 1e-7) + p.eps, (i, vs_ref)


def test_learned_positions_have_no_rope():
    """pos_encodings="learned": no RotaryEmbedding, attention and norms still fused, fp32 parity holds."""
    from helpers import random_tensors, tiny_config

    from hrm.model import HRM

    cfg = tiny_config(pos_encodings="learned")
    tensors = random_tensors(cfg, seed=1)
    p = get_precision("fp32")
    graph = build_graph("h_step", cfg, tensors, p, ops=ORT_CONTRIB)
    counts = Counter(n.op_type for n in graph.graph.node)
    assert counts["RotaryEmbedding"] == 0 and counts["MultiHeadAttention"] == cfg.H_layers
    feeds = _feeds(cfg, "h_step", p)
    got = _session(graph).run(None, feeds)[0]
    ref = _reference(HRM.from_tensors(cfg, tensors), "h_step", p, feeds)[0]
    assert normwise(got, ref, 1e-5).max_rel <= 1e-5


def test_validation_report(contrib_export):
    report, out = contrib_export
    assert report.passed and report.ops == ORT_CONTRIB
    for name, v in report.validation.items():
        p = get_precision(name)
        assert set(v["graphs"]) == {*STEP_GRAPHS, "segment"}
        for kind, g in v["graphs"].items():
            tol = p.segment_tolerance if kind == "segment" else p.step_tolerance
            assert g["passed"] and g["max_rel"] <= tol, (name, kind, g)
        assert v["chain"]["passed"] and v["chain"]["prediction_agreement"] >= 0.9
    assert max(g["max_rel"] for g in report.validation["fp32"]["graphs"].values()) <= 1e-5


# ---- runtime ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("halting", ["fixed", "act"])
def test_solve_matches_reference(contrib_export, model, tiny_cfg, fused, halting):
    from hrm.model import solve
    from hrm.runtime import Session

    _, out = contrib_export
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, tiny_cfg.vocab_size, (8, tiny_cfg.seq_len)).astype(np.int32)
    ids = rng.integers(0, tiny_cfg.num_puzzle_identifiers, 8).astype(np.int32)
    model.set_forward_dtype("float32")
    ref = solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting=halting)
    with Session(out, backend="ort", batch=4, options=OrtOptions(threads=1, fused=fused)) as s:
        assert s.backend.describe()["ops"] == ORT_CONTRIB
        res = s.solve(tokens, puzzle_ids=ids, halting=halting)
    assert ref.segments.max().item() == tiny_cfg.halt_max_steps or halting == "act"
    np.testing.assert_array_equal(np.stack([r.answer_tokens for r in res]), ref.predictions.numpy())
    np.testing.assert_array_equal([r.segments for r in res], ref.segments.numpy())
    for i, r in enumerate(res):
        np.testing.assert_allclose(r.q_halt, ref.q_halt[i, :r.segments].numpy(), rtol=1e-4, atol=1e-5)


def test_fp16_solve_agrees_with_reference(contrib_export, model, tiny_cfg):
    from hrm.model import solve
    from hrm.runtime import Session

    _, out = contrib_export
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, tiny_cfg.vocab_size, (8, tiny_cfg.seq_len)).astype(np.int32)
    ids = np.zeros(8, np.int32)
    model.set_forward_dtype("float32")
    ref = solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting="fixed").predictions.numpy()
    with Session(out, backend="ort", precision="fp16", batch=8, options=OrtOptions(threads=1)) as s:
        got = np.stack([r.answer_tokens for r in s.solve(tokens, puzzle_ids=ids, halting="fixed")])
    assert (got == ref).mean() >= 0.95


# ---- TensorRT refusal ---------------------------------------------------------------------------

def test_export_with_engine_is_refused_before_any_work(tmp_path, tiny_ckpt_path):
    from hrm.export import EngineOptions, export_deployment

    out = tmp_path / "deploy"
    with pytest.raises(ExportError, match=r"--engine: TensorRT engines are built from --ops standard graphs only"):
        export_deployment(tiny_ckpt_path, out, precisions="fp32", ops=ORT_CONTRIB, engine=EngineOptions())
    assert not out.exists() and not list(tmp_path.iterdir())


def test_engine_build_refuses_a_contrib_graph(contrib_export, tmp_path):
    from hrm.export.engine import EngineOptions, build_engine

    _, out = contrib_export
    graph = out / "v1" / "fp16" / "l_step.onnx"
    with pytest.raises(ExportError) as info:  # refused before TensorRT is touched (trt=None would fail later)
        build_engine(None, graph, tmp_path / "l_step.engine", EngineOptions())
    msg = str(info.value)
    assert str(graph) in msg and "com.microsoft.MultiHeadAttention" in msg and "--ops standard" in msg
    assert not (tmp_path / "l_step.engine").exists()


def test_cli_refuses_engine_for_contrib(tmp_path, tiny_ckpt_path):
    from click.testing import CliRunner

    from hrm.cli.export import main

    result = CliRunner().invoke(main, ["--checkpoint", str(tiny_ckpt_path), "--out", str(tmp_path / "d"),
                                       "--ops", "ort-contrib", "--engine", "--no-validate"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --engine: TensorRT engines are built from --ops standard")
    assert len(result.output.strip().splitlines()) == 1


def test_trt_backend_refuses_contrib_variant(contrib_export):
    from hrm.runtime import load_deployment
    from hrm.runtime.backends.trt import TrtBackend

    _, out = contrib_export
    with pytest.raises(ManifestError, match="ort-contrib graphs .* --ops standard"):
        TrtBackend(load_deployment(out), "fp32").activate()


# ---- manifest -----------------------------------------------------------------------------------

def test_manifest_records_and_round_trips_the_ops(contrib_export, tmp_path):
    _, out = contrib_export
    raw = json.loads((out / "manifest.json").read_text())
    assert {v["ops"] for v in raw["variants"].values()} == {ORT_CONTRIB}
    m = load_manifest(out)
    assert {v.ops for v in m.variants.values()} == {ORT_CONTRIB}
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    m2 = load_manifest(copy)
    m2.save()
    assert json.loads((copy / "manifest.json").read_text())["variants"]["fp16"]["ops"] == ORT_CONTRIB

    def rewrite(fn) -> None:
        d = json.loads(json.dumps(raw))
        fn(d)
        (copy / "manifest.json").write_text(json.dumps(seal(d)))

    def drop_ops(d):  # a manifest written before the field existed
        for v in d["variants"].values():
            del v["ops"]
    rewrite(drop_ops)
    assert {v.ops for v in load_manifest(copy).variants.values()} == {"standard"}

    rewrite(lambda d: d["variants"]["fp32"].update(ops="tensorrt-plugins"))
    with pytest.raises(ManifestError, match=r"variants.fp32\]: 'ops' is 'tensorrt-plugins'"):
        load_manifest(copy)

    engine = {"file": "v1/fp32/l_step.engine", "sha256": "0" * 64, "flavour": "tensorrt", "trt_version": "10.3",
              "compute_capability": "8.7"}
    rewrite(lambda d: d["variants"]["fp32"].update(engines={"l_step": engine}))
    with pytest.raises(ManifestError, match="engines are built from standard graphs only"):
        load_manifest(copy, verify=False)


def test_unknown_ops_name_is_refused(tmp_path, tiny_ckpt_path, tiny_cfg, tiny_tensors):
    from hrm.export import export_deployment

    with pytest.raises(ExportError, match="--ops 'trt-plugins': expected one of standard, ort-contrib"):
        export_deployment(tiny_ckpt_path, tmp_path / "d", precisions="fp32", ops="trt-plugins")
    with pytest.raises(ExportError, match="expected one of"):
        build_graph("l_step", tiny_cfg, tiny_tensors, get_precision("fp32"), ops="contrib")
