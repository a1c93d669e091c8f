"""On a bundled tiny *trained* model (models/**.safetensors, when present): the runtime solves puzzles
exactly like the reference does, trained Q head (ACT) included, from both graph op sets (standard and
ort-contrib). Skipped until such a model is bundled.
``HRM_TRAINED_CHECKPOINT=path`` points it at another checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from helpers import MODELS  # noqa: E402
SMALL = [p for p in sorted(MODELS.rglob("*.safetensors")) if p.stat().st_size < 40 * 2**20] if MODELS.is_dir() else []
if os.environ.get("HRM_TRAINED_CHECKPOINT"):
    SMALL = [Path(os.environ["HRM_TRAINED_CHECKPOINT"])]


@pytest.mark.skipif(not SMALL, reason=f"no bundled trained model under {MODELS} (*.safetensors < 40 MiB)")
@pytest.mark.parametrize("checkpoint", SMALL, ids=lambda p: p.parent.name + "/" + p.name)
@pytest.mark.parametrize("ops", ["standard", "ort-contrib"])
def test_trained_model_parity_and_accuracy(checkpoint, ops, tmp_path):
    from hrm.checkpoint import load_checkpoint
    from hrm.export import export_deployment
    from hrm.evaluation.datasets import load_puzzles
    from hrm.runtime.deployment import load_deployment
    from hrm.runtime.backends.options import OrtOptions
    from hrm.evaluation.parity import run_parity

    if load_checkpoint(checkpoint).task is None:
        pytest.skip(f"{checkpoint} records no task: nothing to generate puzzles with")
    export_deployment(checkpoint, tmp_path / "d", precisions=("fp32",), validate=False, segment=True, ops=ops)
    dep = load_deployment(tmp_path / "d")
    rep = run_parity(dep, load_puzzles("generated", dep, n=32, seed=1), precisions=("fp32",), batch=16,
                     options=OrtOptions(threads=1))
    assert rep.passed, [g.detail for g in rep.gates if not g.passed]
    for c in rep.comparisons:
        assert c.accuracy == c.reference_accuracy and c.token_agreement == 1.0
        if c.halting == "act":
            assert c.halting_agreement == 1.0
