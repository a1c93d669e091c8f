"""TRM through export and the ONNX Runtime path: official-layout checkpoints (attention + RoPE, mlp_t)
export with validation at every precision, the one network is stored once (h_step runs the l_step
graph), and ORT solves with the PyTorch TRM's answers at fp32, fixed and ACT, step graphs and fused."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import numpy_random_tensors, tiny_trm_config, write_official_checkpoint  # noqa: E402

from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.errors import ManifestError  # noqa: E402
from hrm.manifest import GRAPH_ALIASES, load_manifest, seal  # noqa: E402
from hrm.model import RecursiveModel, solve  # noqa: E402

VARIANTS = {
    "attention": dict(),
    # block_scale 0.5: a random mlp_t net at full scale is chaotic (see helpers.numpy_random_tensors)
    "mlp_t": dict(mlp_t=True, pos_encodings="none", puzzle_emb_len=16),
}


def _tensors(config):
    t = numpy_random_tensors(config, seed=5, block_scale=0.5 if config.mlp_t else 1.0)
    t["q_head.bias"] = np.array([-0.1, 0.0], dtype=np.float32)  # rows halt at different segments under ACT
    return t


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def trm_export(request, tmp_path_factory):
    """(name, official step_N path, export report, deployment dir): all precisions + fused segment."""
    from hrm.export import export_deployment

    config = tiny_trm_config(**VARIANTS[request.param])
    root = tmp_path_factory.mktemp(f"trm-{request.param}")
    step = write_official_checkpoint(root / "official", config, _tensors(config))
    report = export_deployment(step, root / "deploy", precisions="fp32,fp16,bf16,int8", segment=True)
    return request.param, step, report, root / "deploy"


def test_official_trm_exports_validated_at_every_precision(trm_export):
    name, _, report, out = trm_export
    assert report.passed, report.validation
    for precision, v in report.validation.items():
        assert v["passed"] and v["segment"]["passed"] and v["chain"]["passed"], (name, precision)
        assert set(v["graphs"]) == {"embed", "l_step", "h_step", "heads", "segment"}
        assert v["graphs"]["h_step"]["runs"] == "l_step"  # checked through the graph it really runs
        assert "hrm.model.TRM" in v["reference"]
    assert "quantization" in report.validation["int8"]
    man = load_manifest(out)
    assert man.config.arch == "trm" and man.halt_rule == "q_halt > 0"
    assert man.recurrence["H_cycles"] == 3 and man.recurrence["halt_rule"] == "q_halt > 0"


def test_the_one_network_is_stored_once(trm_export):
    _, _, _, out = trm_export
    raw = json.loads((out / "manifest.json").read_text())
    for precision, v in raw["variants"].items():
        assert v["graphs"]["h_step"]["alias"] == GRAPH_ALIASES["h_step"].to_dict()
        assert "file" not in v["graphs"]["h_step"]
        folder = (out / v["graphs"]["l_step"]["file"]).parent
        assert sorted(p.name for p in folder.iterdir()) == ["embed.onnx", "heads.onnx", "l_step.onnx", "segment.onnx"]
    import onnx

    names = {i.name for i in onnx.load(str(out / raw["variants"]["fp32"]["graphs"]["l_step"]["file"])).graph.initializer}
    assert not any(n.startswith("H_level") for n in names) and "L_level.layers.1.mlp.down_proj.weight" in names


@pytest.mark.parametrize("fused", [False, True], ids=["steps", "fused"])
@pytest.mark.parametrize("halting", ["fixed", "act"])
def test_ort_answers_identical_to_pytorch_trm(trm_export, halting, fused):
    from hrm.runtime import OrtOptions, Session

    name, step, _, out = trm_export
    model = RecursiveModel.from_checkpoint(load_checkpoint(step), forward_dtype="float32")
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 6, (12, 16)).astype(np.int32)
    ids = rng.integers(0, 3, 12).astype(np.int32)
    ref = solve(model, torch.from_numpy(tokens), torch.from_numpy(ids), halting=halting)
    with Session(out, backend="ort", device="cpu", precision="fp32", batch=5, options=OrtOptions(fused=fused)) as s:
        got = s.solve(tokens, puzzle_ids=ids, halting=halting)
    assert np.array_equal(np.stack([r.answer_tokens for r in got]), ref.predictions.numpy()), name
    assert [r.segments for r in got] == ref.segments.tolist(), name
    if halting == "act":
        assert len(set(ref.segments.tolist())) > 1, "the test model should halt rows at different segments"


def test_continuous_batching_gives_the_act_answers(trm_export):
    from hrm.runtime import Scheduler, Session

    _, step, _, out = trm_export
    model = RecursiveModel.from_checkpoint(load_checkpoint(step), forward_dtype="float32")
    tokens = np.random.default_rng(2).integers(1, 6, (10, 16)).astype(np.int32)
    ref = solve(model, torch.from_numpy(tokens), None, halting="act")
    with Session(out, backend="ort", device="cpu", precision="fp32", batch=3) as s, Scheduler(s, slots=3) as sched:
        got = [f.result() for f in [sched.submit(t, request_id=i) for i, t in enumerate(tokens)]]
    assert [g.segments for g in got] == ref.segments.tolist()
    assert all(np.array_equal(g.answer_tokens, ref.predictions[i].numpy()) for i, g in enumerate(got))


def test_manifest_refuses_an_unknown_alias_and_engines_for_an_alias(trm_export, tmp_path):
    import shutil

    _, _, _, out = trm_export
    dep = tmp_path / "dep"
    shutil.copytree(out, dep)
    raw = json.loads((dep / "manifest.json").read_text())
    raw["variants"]["fp32"]["graphs"]["h_step"]["alias"]["inputs"]["x"] = "z_H"
    (dep / "manifest.json").write_text(json.dumps(seal(raw)))  # sealed: the schema check must catch it, not the digest
    with pytest.raises(ManifestError, match=r"\[variants.fp32.graphs.h_step.alias\]: .* not an alias this hrm-deploy knows"):
        load_manifest(dep)
    raw = json.loads((out / "manifest.json").read_text())
    raw["variants"]["fp32"]["engines"] = {"h_step": {"file": raw["variants"]["fp32"]["graphs"]["l_step"]["file"],
                                                     "sha256": "0" * 64, "flavour": "tensorrt",
                                                     "trt_version": "10", "compute_capability": "8.7"}}
    (dep / "manifest.json").write_text(json.dumps(seal(raw)))
    with pytest.raises(ManifestError, match=r"\[variants.fp32.engines.h_step\]: an engine for 'h_step', which has no graph file"):
        load_manifest(dep)


def test_mlp_t_ort_contrib_flavour_validates(tmp_path):
    """mlp_t has no attention: its contrib graphs use the fused residual RMSNorm only (also over S+P)."""
    import onnx

    from hrm.export import export_deployment
    from hrm.export.onnx_builder import MS_DOMAIN

    config = tiny_trm_config(**VARIANTS["mlp_t"])
    step = write_official_checkpoint(tmp_path / "official", config, _tensors(config))
    report = export_deployment(step, tmp_path / "deploy", precisions="fp32,fp16", ops="ort-contrib")
    assert report.passed
    l_step = load_manifest(tmp_path / "deploy").variants["fp32"].graphs["l_step"].file
    ops = {n.op_type for n in onnx.load(str(tmp_path / "deploy" / l_step)).graph.node
           if n.domain == MS_DOMAIN}
    assert ops == {"SkipSimplifiedLayerNormalization"}
