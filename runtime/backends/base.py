"""The one interface every runtime backend implements (ort, trt, torch).

Shaped like a Polygraphy runner: construct cheaply, ``activate()`` (load graphs / engines / model),
use, ``deactivate()`` (free everything); or use it as a context manager. Unlike a Polygraphy runner it
keeps the HRM recurrence state *inside* the backend, on the device, between calls: the loop
(:mod:`hrm.runtime.loop`) only says "load these rows", "run a segment", "read the heads", and never
sees a device tensor. That is what lets the ORT/TRT backends keep z_H / z_L on the GPU for the
whole solve and read back only q values and logits once per segment.

Contract of the state-holding calls (B = the allocated batch size):

* ``allocate(B)`` makes batch size B current. Buffers are allocated once per batch size and kept, so
  switching back is free. Every row starts loaded with token 0 / puzzle id 0 (an inert, finite row).
* ``load_rows(rows, tokens, puzzle_ids)`` writes the inputs of ``rows``, resets their z_H / z_L to
  H_init / L_init and recomputes x. **Rule**: x is recomputed by running ``embed`` on the *whole*
  batch buffer. embed is a per-row gather/scale, so rows not being loaded are rewritten with the same
  bits; running the same shape every time means a row's numerics never depend on which other rows
  are (re)loaded, or when.
* ``segment()`` enqueues the steps of :func:`hrm.manifest.segment_schedule` (N x (T ``l_step`` +
  ``h_step``), then ``heads``) on all B rows. It must not synchronise with the host: results are only
  observed through the ``read_*`` calls.
* ``read_heads(logits)`` waits for the queued work once and returns q_halt / q_continue (fp32 [B])
  and, when asked, logits widened to fp32 [B, S, V].
* ``read_state()`` returns z_H widened to fp32 [B, S+P, D] (parity drift; costs a sync and a copy).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hrm.errors import HRMError
from hrm.manifest import segment_schedule
from hrm.runtime.backends.options import BackendOptions, OptionsError


class BackendError(HRMError):
    """A backend cannot run this deployment here (missing provider, unsupported op, bad engine)."""


@dataclass
class Heads:
    """What the loop reads once per segment. Arrays are host copies, safe to keep."""

    q_halt: np.ndarray  # float32 [B]
    q_continue: np.ndarray  # float32 [B]
    logits: np.ndarray | None = None  # float32 [B, S, V], when asked for

    def predictions(self) -> np.ndarray:
        """argmax over the vocabulary: int32 [B, S] (first maximum on ties, like torch.argmax)."""
        if self.logits is None:
            raise ValueError("logits were not read for this segment")
        return self.logits.argmax(-1).astype(np.int32)


class Backend(abc.ABC):
    """Runs the four HRM graphs of one precision variant on one device, state kept inside."""

    #: registry name ("ort", "trt", "torch")
    name: str = "?"
    #: the options class this backend takes (:mod:`hrm.runtime.backends.options`)
    options_class: type[BackendOptions] = BackendOptions

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cpu",
                 options: BackendOptions | None = None) -> None:
        """``variant``: the manifest's :class:`~hrm.manifest.Variant` as ``Session`` resolved it for this
        backend and device, or a precision name, resolved here the same way (:meth:`Manifest.resolve`)."""
        self.deployment = deployment
        self.device = device
        if options is not None and not isinstance(options, self.options_class):
            raise OptionsError(f"the {self.name} backend takes {self.options_class.__name__}, got {type(options).__name__}")
        #: the options as they apply on this device (resolved once: device-dependent defaults filled in)
        self.options = (options if options is not None else self.options_class()).for_device(device)
        if isinstance(variant, str):
            variant = deployment.manifest.resolve(variant, self.name, device, fused=getattr(self.options, "fused", False))
        self.variant = variant
        self.precision = variant.precision
        self.is_active = False
        self.batch = 0
        self.schedule = segment_schedule(deployment.config)

    # ---- life cycle -----------------------------------------------------------------------------
    def activate(self) -> "Backend":
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            try:
                self.deactivate_impl()
            finally:
                self.is_active = False
                self.batch = 0

    def __enter__(self) -> "Backend":
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    @abc.abstractmethod
    def activate_impl(self) -> None:
        """Load graphs / engines / weights; create streams."""

    @abc.abstractmethod
    def deactivate_impl(self) -> None:
        """Free every buffer, stream, session, graph."""

    def describe(self) -> dict[str, Any]:
        """Facts for reports: backend, device, precision, the resolved options (+ provider, engine flavour...)."""
        return {"backend": self.name, "device": self.device, "precision": self.precision, **self.options.describe()}

    # ---- state-holding calls (see the module docstring) -------------------------------------------
    @abc.abstractmethod
    def allocate(self, batch: int) -> None: ...

    @abc.abstractmethod
    def load_rows(self, rows: Sequence[int], tokens: np.ndarray, puzzle_ids: np.ndarray) -> None: ...

    @abc.abstractmethod
    def l_step(self) -> None:
        """z_L <- L(z_L, z_H + x) on every row."""

    @abc.abstractmethod
    def h_step(self) -> None:
        """z_H <- H(z_H, z_L) on every row."""

    @abc.abstractmethod
    def heads(self) -> None:
        """logits, q_halt, q_continue <- heads(z_H) on every row."""

    def segment(self) -> None:
        """One segment: the step kinds of ``self.schedule`` in order. No host sync."""
        for kind in self.schedule:
            getattr(self, kind)()

    @abc.abstractmethod
    def read_heads(self, logits: bool = True) -> Heads: ...

    @abc.abstractmethod
    def read_state(self) -> np.ndarray: ...

    # ---- helpers ------------------------------------------------------------------------------------
    def _require_active(self) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name} backend is not active; call activate() or use it as a context manager")
        if self.batch <= 0:
            raise RuntimeError(f"{self.name} backend has no batch allocated; call allocate(batch) first")

    def _check_rows(self, rows: Sequence[int], tokens: np.ndarray, puzzle_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._require_active()
        rows_a = np.asarray(rows, dtype=np.int64).reshape(-1)
        seq_len = self.deployment.config.seq_len
        tok = np.ascontiguousarray(tokens, dtype=np.int32).reshape(len(rows_a), seq_len)
        ids = np.ascontiguousarray(puzzle_ids, dtype=np.int32).reshape(len(rows_a))
        if rows_a.size and (rows_a.min() < 0 or rows_a.max() >= self.batch):
            raise IndexError(f"rows {rows_a.tolist()} out of range for batch {self.batch}")
        if len(set(rows_a.tolist())) != rows_a.size:
            raise ValueError(f"rows {rows_a.tolist()} contain duplicates")
        n_ids = self.deployment.config.num_puzzle_identifiers
        if ids.size and (ids.min() < 0 or ids.max() >= n_ids):
            raise ValueError(f"puzzle ids {ids.tolist()} out of range [0, {n_ids})")
        vocab = self.deployment.config.vocab_size
        if tok.size and (tok.min() < 0 or tok.max() >= vocab):
            raise ValueError(f"tokens out of range [0, {vocab})")
        return rows_a, tok, ids


class PingPong:
    """Which of the two z_H / z_L buffers is current.

    Each step reads the current buffer and writes the other one, then flips: no copies, no
    read-write aliasing. After a segment z_L has flipped N*T times and z_H N times, so the parity at
    segment start takes at most two values: a captured segment graph is keyed by it.
    """

    def __init__(self) -> None:
        self.h = 0
        self.l = 0

    @property
    def key(self) -> tuple[int, int]:
        return self.h, self.l
