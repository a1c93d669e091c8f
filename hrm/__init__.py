"""hrm-deploy: run Hierarchical Reasoning Models (HRM) through ONNX and TensorRT.

Importing ``hrm`` must stay cheap and torch-free: the runtime (``hrm.runtime``) runs on lean Jetson
installs with numpy and one inference backend only. Torch-backed pieces live in ``hrm.model`` and
``hrm.train`` and are imported explicitly.
"""

__version__ = "0.1.0"
