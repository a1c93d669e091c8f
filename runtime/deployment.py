"""A deployment directory opened for running: manifest + initial states + task, torch-free.

``load_deployment(dir)`` is the runtime's only entry to the exporter's output. It re-hashes the files
it will read (through :func:`hrm.manifest.load_manifest`), loads ``H_init``/``L_init`` (fp32 on disk,
cast to each variant's state dtype on request) and resolves each graph's I/O into concrete
:class:`TensorSpec` objects for a given batch size, checked against :data:`hrm.manifest.IO_NAMES` so a
renamed tensor fails here, with the file named, rather than deep inside a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm.config import HRMConfig
from hrm.errors import ManifestError
from hrm.manifest import IO_NAMES, STEP_GRAPHS, Manifest, Variant, load_manifest
from hrm.runtime.dtypes import from_float32, host_dtype


@dataclass(frozen=True)
class TensorSpec:
    """One graph input/output resolved for a batch size: name, manifest dtype, concrete shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * host_dtype(self.dtype).itemsize


@dataclass
class Deployment:
    """An opened deployment directory. Cheap to pass around; backends read graphs through it."""

    manifest: Manifest
    _task: Any = field(default=None, repr=False)
    _init: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # ---- basic facts ------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.manifest.root

    @property
    def config(self) -> HRMConfig:
        return self.manifest.config

    @property
    def precisions(self) -> list[str]:
        return sorted(self.manifest.variants)

    def variant(self, precision: str) -> Variant:
        return self.manifest.variant(precision)

    @property
    def task(self):
        """The task (``hrm.tasks``) named by the manifest, or None for a task-less deployment."""
        if self._task is None and self.manifest.task:
            from hrm.tasks import task_from_metadata

            self._task = task_from_metadata(self.manifest.task)
        return self._task

    # ---- initial states ---------------------------------------------------------------------
    def init_vector(self, key: str) -> np.ndarray:
        """``H_init`` or ``L_init`` as stored (fp32 [hidden])."""
        if key not in self._init:
            entry = self.manifest.init[key]
            path = self.manifest.path(entry["file"])
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ManifestError(f"{path}: cannot read {key}: {exc}") from None
            want = (self.config.hidden_size,)
            if arr.shape != want:
                raise ManifestError(f"{path}: {key} has shape {list(arr.shape)}, expected {list(want)} (hidden_size)")
            self._init[key] = np.ascontiguousarray(arr, dtype=np.float32)
        return self._init[key]

    def init_rows(self, precision: str) -> tuple[np.ndarray, np.ndarray]:
        """(H_init, L_init) broadcast to one row [S+P, D] in the variant's host storage dtype."""
        dtype = self.variant(precision).state_dtype
        rows = []
        for key in ("H_init", "L_init"):
            v = from_float32(self.init_vector(key), dtype)
            rows.append(np.ascontiguousarray(np.broadcast_to(v, (self.config.total_seq_len, self.config.hidden_size))))
        return rows[0], rows[1]

    # ---- graph I/O ----------------------------------------------------------------------------
    def io_specs(self, precision: str, kind: str, batch: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """Inputs and outputs of graph ``kind`` with the dynamic batch dimension set to ``batch``,
        in the order of :data:`hrm.manifest.IO_NAMES`."""
        var = self.variant(precision)
        if kind not in var.graphs:
            raise ManifestError(f"{self.root / 'manifest.json'}: variant {precision} has no '{kind}' graph")
        g = var.graphs[kind]
        want_in, want_out = IO_NAMES[kind]
        ins = _resolve(g.inputs, want_in, batch, f"{g.file} inputs")
        outs = _resolve(g.outputs, want_out, batch, f"{g.file} outputs")
        return ins, outs


def _resolve(entries: list[dict[str, Any]], names: tuple[str, ...], batch: int, where: str) -> list[TensorSpec]:
    by_name = {e.get("name"): e for e in entries}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ManifestError(f"{where}: expected tensors {list(names)}, manifest lists {sorted(map(str, by_name))}")
    out = []
    for n in names:
        e = by_name[n]
        shape = tuple(int(d) if isinstance(d, int) else batch for d in e["shape"])
        host_dtype(e["dtype"])  # validates the name
        out.append(TensorSpec(n, e["dtype"], shape))
    return out


def load_deployment(root: str | Path | Deployment, verify: bool = True, precision: str | None = None) -> Deployment:
    """Open ``root`` (a deployment directory or its manifest.json). With ``verify``, the graphs of
    ``precision`` (every variant if None) and the init files are re-hashed first."""
    if isinstance(root, Deployment):
        return root
    manifest = load_manifest(root, verify=verify, precision=precision)
    for name, var in manifest.variants.items():
        missing = [k for k in STEP_GRAPHS if k not in var.graphs]
        if missing:  # load_manifest checks this too; kept so the runtime's assumption is explicit
            raise ManifestError(f"{manifest.root}: variant {name} lacks graphs {missing}")
    dep = Deployment(manifest)
    dep.init_vector("H_init")
    dep.init_vector("L_init")
    return dep
