"""Training for HRM (imports torch): the official recipe, on one device.

Public API: :func:`train` (``TrainConfig -> TrainResult``), :class:`TrainConfig`, the named
:data:`PRESETS` and :func:`preset_config`. The pieces (losses, ACT carry, optimizers, data,
evaluation) live in their own small modules so each rule can be tested alone.
"""

from hrm.train.config import TrainConfig
from hrm.train.presets import PRESETS, preset_config
from hrm.train.trainer import TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "preset_config", "train"]
