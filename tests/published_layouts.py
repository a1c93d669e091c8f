"""Checkpoint folders laid out the way they are published, built from random weights for tests.

* ``hf``: an official HRM Hugging Face repo (sapientinc/HRM-checkpoint-*): the weight file ``checkpoint``
  (no extension) and ``all_config.yaml`` at the top, the training code copied beside them, a README and
  the repo's .gitattributes; no dataset.
* ``trm``: a third-party TRM release: one subfolder per run (``arc_v1_public/step_518071``) with
  ``all_config.yaml`` beside the step file, a README at the top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from helpers import write_official_checkpoint
from hrm.config import HRMConfig

#: what the official repos hold beside the weights (contents are irrelevant: they must be ignored)
EXTRAS = {
    "README.md": "# HRM checkpoint\n",
    ".gitattributes": "checkpoint filter=lfs diff=lfs merge=lfs -text\n",
    "hrm_act_v1.py": "import torch  # the model code the run used\n",
    "losses.py": "import torch\n",
}


def write_published(directory: Path, config: HRMConfig, tensors: dict[str, np.ndarray], data_path: str,
                    weights: str = "checkpoint", extras: bool = True) -> Path:
    """Weights named ``weights`` (a path relative to ``directory``, e.g. ``arc_v1_public/step_518071``)
    with ``all_config.yaml`` beside them naming ``data_path``, no dataset.json; returns the weight file."""
    target = directory / weights
    step = write_official_checkpoint(target.parent, config, tensors, with_dataset_json=False)
    step.rename(target)
    cfg_file = target.parent / "all_config.yaml"
    cfg = yaml.safe_load(cfg_file.read_text())
    cfg["data_path"] = data_path
    cfg_file.write_text(yaml.safe_dump(cfg))
    if extras:
        for name, text in EXTRAS.items():
            (directory / name).write_text(text)
    return target
