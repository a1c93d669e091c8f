"""The PyTorch TRM against the official TRM code's own numbers.

``fixtures/trm_official.json`` was recorded by ``fixtures/record_trm_official.py`` running the official
``TinyRecursiveReasoningModel_ACTV1`` (SamsungSAILMontreal/TinyRecursiveModels at commit e7b6871, eval
mode, fp32, nothing stubbed) on official-layout checkpoints of three small configs (attention + RoPE,
attention + learned positions, ``mlp_t``). Here the same checkpoints are rebuilt with our own code
(numpy-seeded weights, the official ``step_N`` + ``all_config.yaml`` layout), loaded through
``hrm.checkpoint`` (which must recognise the family from ``arch.name``), and run through
``hrm.model.solve``. Required: identical predictions in every segment; q_halt / q_continue and the
logits within 1e-5 (fp32: the two implementations differ only in op order; the smallest top-2 logit
margin in the fixture is 3e-4, so an argmax cannot flip on rounding alone).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import numpy_random_tensors, write_official_checkpoint  # noqa: E402

from hrm.checkpoint import load_checkpoint  # noqa: E402
from hrm.config import HRMConfig  # noqa: E402
from hrm.model import TRM, RecursiveModel, solve  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "trm_official.json").read_text())
ATOL = 1e-5


@pytest.mark.parametrize("name", sorted(FIXTURE["models"]))
def test_pytorch_trm_matches_the_official_code(name, tmp_path):
    rec = FIXTURE["models"][name]
    config = HRMConfig.from_dict(rec["config"])
    step = write_official_checkpoint(tmp_path, config, numpy_random_tensors(config, seed=FIXTURE["seed"]))
    ckpt = load_checkpoint(step)
    assert ckpt.format == "official" and ckpt.config.arch == "trm"
    assert ckpt.config.to_dict() == {**config.to_dict(), "forward_dtype": "bfloat16"}
    model = RecursiveModel.from_checkpoint(ckpt, forward_dtype="float32")
    assert isinstance(model, TRM)

    tokens = torch.tensor(rec["tokens"], dtype=torch.int32)
    ids = torch.tensor(rec["puzzle_ids"], dtype=torch.int32)
    out = solve(model, tokens, ids, halting="fixed", trace=True)
    segments = rec["segments"]
    assert len(out.trace) == len(segments) == config.halt_max_steps
    for s, want in enumerate(segments):
        assert out.trace[s].tolist() == want["predictions"], f"{name}: segment {s + 1} predictions differ"
        np.testing.assert_allclose(out.q_halt[:, s].numpy(), want["q_halt"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(out.q_continue[:, s].numpy(), want["q_continue"], atol=ATOL, rtol=0)

    # logits of the last segment, recomputed from the same states the loop reached
    with torch.no_grad():
        x = model.embed(tokens, ids)
        z_H, z_L = model.initial_state(tokens.shape[0])
        for _ in range(config.halt_max_steps):
            z_H, z_L, logits, _, _ = model.segment(z_H, z_L, x)
    last = segments[-1]
    np.testing.assert_allclose(logits[0, :4].numpy(), last["logits_slice"], atol=ATOL, rtol=0)
    assert abs(float(logits.mean()) - last["logits_mean"]) < ATOL
    assert abs(float(logits.std()) - last["logits_std"]) < ATOL


def test_act_halts_on_q_halt_above_zero_for_trm():
    """no_ACT_continue: a row halts at its first segment with q_halt > 0, whatever q_continue says
    (here q_continue's bias is +5, so HRM's rule would never halt)."""
    rec = FIXTURE["models"]["mlp_t"]  # its rows cross q_halt = 0 at segments 1, 2 and 3
    config = HRMConfig.from_dict(rec["config"])
    assert config.halt_rule == "q_halt > 0"
    tensors = numpy_random_tensors(config, seed=FIXTURE["seed"])
    tensors["q_head.bias"] = np.array([0.0, 5.0], dtype=np.float32)
    model = TRM.from_tensors(config, tensors)
    tokens = torch.tensor(rec["tokens"], dtype=torch.int32)
    ids = torch.tensor(rec["puzzle_ids"], dtype=torch.int32)
    fixed = solve(model, tokens, ids, halting="fixed")
    act = solve(model, tokens, ids, halting="act")
    q, qc = fixed.q_halt.numpy(), fixed.q_continue.numpy()
    assert not (q > qc).any()
    want = [int(np.nonzero(r > 0)[0][0]) + 1 if (r > 0).any() else config.halt_max_steps for r in q]
    assert act.segments.tolist() == want and len(set(want)) > 1
