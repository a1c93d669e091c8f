"""PyTorch reference backend: the checkpoint's ``hrm.model`` model (HRM or TRM) behind the runtime interface.

It is the yardstick the graph backends are measured against (``hrm-parity``) and a fallback where no
ONNX Runtime / TensorRT is installed. The weights come from the checkpoint the deployment was
exported from (``manifest.source.path``, refused if its sha256 differs from the manifest's), from an
explicit ``TorchOptions(checkpoint=...)`` path (not hash-checked: you asked for it), or from a ready
``TorchOptions(model=...)``.
torch is imported in :meth:`activate_impl` only; importing this module does not import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hrm.errors import ManifestError
from hrm.manifest import STATE_DTYPES
from hrm.runtime.backends.base import Backend, BackendError, Heads
from hrm.runtime.backends.options import TorchOptions


def _same_rows(ckpt: Any, manifest: Any) -> Any:
    """A deployment exported with ``--tasks`` keeps a subset of the puzzle-embedding rows: select the
    same rows from the full checkpoint (``hrm.identifiers``)."""
    from hrm.identifiers import deployment_rows, select_rows

    rows = deployment_rows(manifest)
    if rows is None or ckpt.config.num_puzzle_identifiers == rows.size:
        return ckpt
    return select_rows(ckpt, rows)


class TorchBackend(Backend):
    """Runs the model's ``embed / l_step / h_step / heads`` (HRM or TRM) with torch on the CPU or CUDA
    (options: :class:`TorchOptions`)."""

    name = "torch"
    options_class = TorchOptions
    #: Reset rows by writing into the state tensors themselves (subclasses whose CUDA graph reads those
    #: buffers need this); the default copies them first, so tensors handed out earlier stay unchanged.
    _rows_in_place = False

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cpu",
                 options: TorchOptions | None = None) -> None:
        super().__init__(deployment, variant, device, options)
        self.model = self.options.model
        self._given_model = self.model is not None
        self._state: dict[int, dict[str, Any]] = {}
        self.s: dict[str, Any] | None = None

    # ---- life cycle ------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        import torch

        from hrm.model import RecursiveModel

        self._torch = torch
        dtype = STATE_DTYPES[self.precision]
        if self.model is None:
            ckpt = self._load_checkpoint()
            self.model = RecursiveModel.from_checkpoint(ckpt, forward_dtype=dtype)
        else:
            self.model.set_forward_dtype(dtype)
        self.model = self.model.to(self.device).eval()
        ours = {k: v for k, v in self.model.config.to_dict().items() if k != "forward_dtype"}
        theirs = {k: v for k, v in self.deployment.config.to_dict().items() if k != "forward_dtype"}
        diff = sorted(k for k in ours if ours[k] != theirs.get(k))
        if diff:
            raise ManifestError(f"torch backend: the model's config differs from the deployment's in {diff}")

    def _load_checkpoint(self) -> Any:
        from hrm.checkpoint import load_checkpoint

        man = self.deployment.manifest
        if self.options.checkpoint is not None:
            return _same_rows(load_checkpoint(self.options.checkpoint), man)
        src = man.source or {}
        if not src.get("path"):
            raise ManifestError(f"{man.root / 'manifest.json'}: no source checkpoint recorded; pass checkpoint=PATH (--checkpoint)")
        path = Path(src["path"])
        candidates = [path] if path.is_absolute() else [man.root / path, Path.cwd() / path]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise ManifestError(f"source checkpoint {src['path']} (from {man.root / 'manifest.json'}) not found; "
                                "pass checkpoint=PATH (--checkpoint)")
        ckpt = load_checkpoint(found)
        want = src.get("sha256")
        if want and ckpt.sha256 != want:
            raise ManifestError(f"{found}: sha256 {ckpt.sha256[:16]}... differs from the manifest's {want[:16]}... "
                                "(the checkpoint changed after export; re-export or pass checkpoint=PATH)")
        return _same_rows(ckpt, man)

    def deactivate_impl(self) -> None:
        self._state.clear()
        self.s = None
        if not self._given_model:
            self.model = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["torch"] = self._torch.__version__ if hasattr(self, "_torch") else None
        return d

    # ---- state ---------------------------------------------------------------------------------------
    def allocate(self, batch: int) -> None:
        if not self.is_active:
            raise RuntimeError("torch backend is not active; call activate() first")
        torch = self._torch
        batch = int(batch)
        if batch not in self._state:
            c = self.deployment.config
            z_H, z_L = self.model.initial_state(batch, torch.device(self.device))
            self._state[batch] = {
                "tokens": torch.zeros((batch, c.seq_len), dtype=torch.int32, device=self.device),
                "ids": torch.zeros(batch, dtype=torch.int32, device=self.device),
                "z_H": z_H, "z_L": z_L, "x": None, "heads": None,
            }
            self.s, self.batch = self._state[batch], batch
            self._embed()
        self.s, self.batch = self._state[batch], batch

    def _embed(self) -> None:
        with self._torch.no_grad():
            self.s["x"] = self.model.embed(self.s["tokens"], self.s["ids"])

    def load_rows(self, rows: Sequence[int], tokens: np.ndarray, puzzle_ids: np.ndarray) -> None:
        rows_a, tok, ids = self._check_rows(rows, tokens, puzzle_ids)
        torch, s = self._torch, self.s
        idx = torch.as_tensor(rows_a, device=self.device)
        s["tokens"][idx] = torch.as_tensor(tok, device=self.device)
        s["ids"][idx] = torch.as_tensor(ids, device=self.device)
        H0, L0 = self.model.initial_state(1, torch.device(self.device))
        if not self._rows_in_place:  # the states may be views another caller still holds
            s["z_H"] = s["z_H"].clone()
            s["z_L"] = s["z_L"].clone()
        s["z_H"][idx] = H0
        s["z_L"][idx] = L0
        self._embed()  # whole batch, same rule as the graph backends

    def l_step(self) -> None:
        with self._torch.no_grad():
            self.s["z_L"] = self.model.l_step(self.s["z_L"], self.s["z_H"], self.s["x"])

    def h_step(self) -> None:
        with self._torch.no_grad():
            self.s["z_H"] = self.model.h_step(self.s["z_H"], self.s["z_L"])

    def heads(self) -> None:
        with self._torch.no_grad():
            self.s["heads"] = self.model.heads(self.s["z_H"])

    def read_heads(self, logits: bool = True) -> Heads:
        self._require_active()
        lg, qh, qc = self.s["heads"]
        return Heads(qh.float().cpu().numpy().copy(), qc.float().cpu().numpy().copy(),
                     lg.float().cpu().numpy() if logits else None)

    def read_state(self) -> np.ndarray:
        self._require_active()
        return self.s["z_H"].float().cpu().numpy().copy()
