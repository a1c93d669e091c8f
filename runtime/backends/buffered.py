"""Device-buffer machinery shared by the graph backends (ort, trt): buffers, ping-pong, row loads.

A graph backend only says how to allocate a tensor (:meth:`BufferedBackend._alloc`) and how to run
one graph on given buffers (:meth:`BufferedBackend._run`). Everything else — which buffers exist per
batch size, the ping-pong of z_H / z_L, resetting rows to H_init / L_init, embed on the whole batch,
and the one-sync read-back — lives here once.

Per batch size B (allocated once, kept until deactivate)::

    tokens [B,S] int32, puzzle_ids [B] int32        inputs of embed (host mirror kept for row loads)
    x [B,S+P,D]                                     written by embed only
    z_H[0], z_H[1], z_L[0], z_L[1] [B,S+P,D]        ping-pong pairs (see base.PingPong)
    logits [B,S,V], q_halt [B], q_continue [B]      written by heads only

plus two batch-independent rows H_init / L_init [S+P, D] that row resets copy from (device to device
on CUDA; no host round trip), and, when the manifest serves a kind through another kind's graph (TRM:
``h_step`` runs the ``l_step`` graph, :class:`hrm.manifest.GraphAlias`), one zero-filled state-shaped
buffer per batch size for the inputs the alias feeds with zeros.

Memory: :class:`HostMemory` (numpy; the CPU execution provider reads the arrays in place) or
:class:`CudaMemory` (one CUDA stream; every copy is async on it; read-backs go through pinned
buffers so a segment's reads cost exactly one synchronisation).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hrm.errors import ManifestError
from hrm.runtime.backends.base import Backend, Heads, PingPong
from hrm.runtime.deployment import TensorSpec
from hrm.runtime.dtypes import host_dtype, to_float32


@dataclass
class Buffer:
    """A tensor the backend owns: spec, address, and whatever keeps the memory alive."""

    spec: TensorSpec
    ptr: int
    host: np.ndarray | None = None  # CPU memory: the array itself
    handle: Any = None  # OrtValue / DeviceArray

    @property
    def nbytes(self) -> int:
        return self.spec.nbytes

    @property
    def row_nbytes(self) -> int:
        return self.spec.nbytes // self.spec.shape[0]


class HostMemory:
    """CPU buffers are numpy arrays; copies are numpy assignments; reads are copies."""

    kind = "cpu"

    def upload(self, buf: Buffer, host: np.ndarray) -> None:
        np.copyto(buf.host, host.reshape(buf.host.shape), casting="no")

    def copy_row(self, dst: Buffer, row: int, src: Buffer) -> None:
        dst.host[row] = src.host

    def read(self, buf: Buffer) -> np.ndarray:
        return buf.host.copy()

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass


class CudaMemory:
    """One CUDA stream; async copies; pinned staging for reads (one sync per read batch)."""

    kind = "cuda"

    def __init__(self) -> None:
        from hrm.runtime.gpu import Stream

        self.stream = Stream()
        self._pinned: dict[tuple[int, str, tuple[int, ...]], Any] = {}
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def upload(self, buf: Buffer, host: np.ndarray) -> None:
        self.stream.h2d(buf.ptr, host)

    def copy_row(self, dst: Buffer, row: int, src: Buffer) -> None:
        self.stream.d2d(dst.ptr + row * dst.row_nbytes, src.ptr, dst.row_nbytes)

    def read(self, buf: Buffer) -> np.ndarray:
        """Queue a device->pinned copy; the returned array is filled after :meth:`synchronize`."""
        from hrm.runtime.gpu import PinnedArray

        key = (buf.ptr, buf.spec.dtype, buf.spec.shape)
        pinned = self._pinned.get(key)
        if pinned is None:
            pinned = self._pinned[key] = PinnedArray(buf.spec.shape, host_dtype(buf.spec.dtype))
        self.stream.d2h(pinned.array, buf.ptr)
        out = np.empty_like(pinned.array)
        self._pending.append((out, pinned.array))
        return out

    def synchronize(self) -> None:
        self.stream.synchronize()
        for out, staged in self._pending:
            np.copyto(out, staged)
        self._pending.clear()

    def close(self) -> None:
        for p in self._pinned.values():
            p.free()
        self._pinned.clear()
        self.stream.free()


def cuda_memory() -> CudaMemory:
    """A CudaMemory, or a BackendError saying what is missing (the CUDA runtime, a driver, a GPU)."""
    from hrm.runtime.backends.base import BackendError
    from hrm.runtime.gpu import probe

    info = probe()
    if not info.available:
        raise BackendError(f"cannot use CUDA here: {info.reason}")
    try:
        return CudaMemory()
    except Exception as exc:  # CudaError from stream creation
        raise BackendError(f"cannot use CUDA here: {exc}") from None


@dataclass
class BatchBuffers:
    """All buffers of one batch size (see the module docstring)."""

    batch: int
    tokens: Buffer
    puzzle_ids: Buffer
    x: Buffer
    z_H: tuple[Buffer, Buffer]
    z_L: tuple[Buffer, Buffer]
    logits: Buffer
    q_halt: Buffer
    q_continue: Buffer
    host_tokens: np.ndarray
    host_ids: np.ndarray
    zeros: Buffer | None = None  # fed to an alias's ZEROS inputs (TRM's h_step: x = 0)
    pp: PingPong = field(default_factory=PingPong)
    cache: dict[Any, Any] = field(default_factory=dict)  # per-backend (IO bindings, CUDA graphs)

    def all(self) -> list[Buffer]:
        return [self.tokens, self.puzzle_ids, self.x, *self.z_H, *self.z_L, self.logits, self.q_halt, self.q_continue,
                *([self.zeros] if self.zeros is not None else [])]


class BufferedBackend(Backend):
    """A backend that runs ONNX/TensorRT graphs on buffers it allocates (ort, trt)."""

    def __init__(self, deployment: Any, variant: Any = "fp32", device: str = "cpu", options: Any = None) -> None:
        super().__init__(deployment, variant, device, options)
        self.fused = bool(self.options.fused)
        #: kinds served by another kind's graph (``GraphAlias`` by kind; TRM: h_step -> l_step)
        self.aliases = {k: g.alias for k, g in self.variant.graphs.items() if g.alias is not None}
        self.memory: HostMemory | CudaMemory | None = None
        self._batches: dict[int, BatchBuffers] = {}
        self._init_rows: tuple[Buffer, Buffer] | None = None
        self.bufs: BatchBuffers | None = None

    @property
    def graph_kinds(self) -> tuple[str, ...]:
        """The graphs this backend loads: the step graphs that have a file of their own (+ the fused
        segment when asked); aliased kinds run their target's graph."""
        from hrm.manifest import STEP_GRAPHS

        files = self.variant.files
        kinds = (*STEP_GRAPHS, "segment") if self.fused else tuple(STEP_GRAPHS)
        return tuple(k for k in kinds if k in files)

    # ---- what a graph backend provides ------------------------------------------------------------
    @abc.abstractmethod
    def _alloc(self, spec: TensorSpec) -> Buffer:
        """Allocate one tensor on this backend's device."""

    def _release(self, buf: Buffer) -> None:
        """Free one tensor (default: drop the references)."""
        buf.handle = None
        buf.host = None

    @abc.abstractmethod
    def _run(self, kind: str, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> None:
        """Enqueue graph ``kind`` reading ``inputs`` and writing ``outputs`` (IO_NAMES order). No sync."""

    def _on_select(self, bufs: BatchBuffers) -> None:
        """Hook called whenever a batch size becomes current (the first time before its rows are
        initialised): e.g. TensorRT sets its contexts' input shapes here."""

    # ---- life cycle pieces for subclasses -----------------------------------------------------------
    def deactivate_impl(self) -> None:
        """Wait for queued work, drop each batch's cache (after :meth:`_release_cache`), free every
        buffer, let the subclass drop its graphs (:meth:`_drop_graphs`), then close the memory."""
        if self.memory is not None:
            self.memory.synchronize()
        for bufs in self._batches.values():
            self._release_cache(bufs.cache)
            bufs.cache.clear()
        self._free_buffers()
        self._drop_graphs()
        if self.memory is not None:
            self.memory.close()
            self.memory = None

    def _release_cache(self, cache: dict[Any, Any]) -> None:
        """Free what a batch's cache holds beyond references (default: nothing; TensorRT frees graphs)."""

    @abc.abstractmethod
    def _drop_graphs(self) -> None:
        """Forget the loaded sessions / engines / contexts."""

    def _free_buffers(self) -> None:
        for bufs in self._batches.values():
            for b in bufs.all():
                self._release(b)
        self._batches.clear()
        if self._init_rows:
            for b in self._init_rows:
                self._release(b)
        self._init_rows = None
        self.bufs = None

    # ---- allocation -------------------------------------------------------------------------------
    def allocate(self, batch: int) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name} backend is not active; call activate() first")
        batch = int(batch)
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if batch not in self._batches:
            self._batches[batch] = self._make_buffers(batch)
            self.bufs, self.batch = self._batches[batch], batch
            self._on_select(self.bufs)
            # Every row starts inert and finite: token 0, puzzle id 0, initial states.
            seq_len = self.deployment.config.seq_len
            self.load_rows(range(batch), np.zeros((batch, seq_len), np.int32), np.zeros(batch, np.int32))
            # One warm-up segment: first runs allocate arenas, pick kernels, JIT (TensorRT-RTX), so the
            # first real segment is not billed for them. Rows are reset when admitted, so it is harmless.
            self.segment()
            self.read_heads(logits=False)
        elif self.bufs is not self._batches[batch]:
            self.bufs, self.batch = self._batches[batch], batch
            self._on_select(self.bufs)

    def _make_buffers(self, batch: int) -> BatchBuffers:
        dep, prec = self.deployment, self.precision
        e_in, e_out = dep.io_specs(prec, "embed", batch)
        l_in, l_out = dep.io_specs(prec, "l_step", batch)
        h_in, h_out = dep.io_specs(prec, "h_step", batch)
        k_in, k_out = dep.io_specs(prec, "heads", batch)
        zL, zH, x = l_in
        _same("l_step.z_L_new", l_out[0], zL)
        _same("h_step.z_H", h_in[0], zH)
        _same("h_step.z_L", h_in[1], zL)
        _same("h_step.z_H_new", h_out[0], zH)
        _same("heads.z_H", k_in[0], zH)
        _same("embed.x", e_out[0], x)
        if self.fused:
            s_in, s_out = dep.io_specs(prec, "segment", batch)
            for got, want, what in zip((*s_in, *s_out), (zH, zL, x, zH, zL, *k_out), ("z_H", "z_L", "x", "z_H_new", "z_L_new",
                                                                                 "logits", "q_halt", "q_continue")):
                _same(f"segment.{what}", got, want)
        if self._init_rows is None:
            H_row, L_row = dep.init_rows(prec)
            row_spec = TensorSpec("init", zH.dtype, (1, *zH.shape[1:]))
            self._init_rows = (self._alloc(row_spec), self._alloc(row_spec))
            for buf, row in zip(self._init_rows, (H_row, L_row)):
                self.memory.upload(buf, row[None])
        logits, q_halt, q_cont = k_out
        zeros = None
        if self.aliases:
            zeros = self._alloc(TensorSpec("zeros", x.dtype, x.shape))
            self.memory.upload(zeros, np.zeros(x.shape, host_dtype(x.dtype)))  # device memory starts undefined
        return BatchBuffers(
            batch=batch,
            tokens=self._alloc(e_in[0]), puzzle_ids=self._alloc(e_in[1]), x=self._alloc(x),
            z_H=(self._alloc(zH), self._alloc(zH)), z_L=(self._alloc(zL), self._alloc(zL)),
            logits=self._alloc(logits), q_halt=self._alloc(q_halt), q_continue=self._alloc(q_cont),
            host_tokens=np.zeros(e_in[0].shape, host_dtype(e_in[0].dtype)),
            host_ids=np.zeros(e_in[1].shape, host_dtype(e_in[1].dtype)), zeros=zeros,
        )

    # ---- the state-holding calls --------------------------------------------------------------------
    def load_rows(self, rows: Sequence[int], tokens: np.ndarray, puzzle_ids: np.ndarray) -> None:
        rows_a, tok, ids = self._check_rows(rows, tokens, puzzle_ids)
        b, mem = self.bufs, self.memory
        b.host_tokens[rows_a] = tok
        b.host_ids[rows_a] = ids
        mem.upload(b.tokens, b.host_tokens)
        mem.upload(b.puzzle_ids, b.host_ids)
        H_row, L_row = self._init_rows
        for r in rows_a.tolist():
            mem.copy_row(b.z_H[b.pp.h], r, H_row)
            mem.copy_row(b.z_L[b.pp.l], r, L_row)
        self._run("embed", (b.tokens, b.puzzle_ids), (b.x,))  # whole batch: see base module rule

    def l_step(self) -> None:
        b = self.bufs
        pp = b.pp
        self._run("l_step", (b.z_L[pp.l], b.z_H[pp.h], b.x), (b.z_L[1 - pp.l],))
        pp.l ^= 1

    def h_step(self) -> None:
        b = self.bufs
        pp = b.pp
        ins, out = {"z_H": b.z_H[pp.h], "z_L": b.z_L[pp.l]}, (b.z_H[1 - pp.h],)
        alias = self.aliases.get("h_step")
        if alias is None:
            self._run("h_step", (ins["z_H"], ins["z_L"]), out)
        else:  # TRM: the l_step graph on (z_L := z_H, z_H := z_L, x := 0)
            self._run(alias.runs, alias.feed(ins, b.zeros), out)
        pp.h ^= 1

    def heads(self) -> None:
        b = self.bufs
        self._run("heads", (b.z_H[b.pp.h],), (b.logits, b.q_halt, b.q_continue))

    def segment(self) -> None:
        """One segment: the fused ``segment`` graph (one launch) when ``fused``, else the step graphs."""
        if not self.fused:
            return super().segment()
        b = self.bufs
        pp = b.pp
        self._run("segment", (b.z_H[pp.h], b.z_L[pp.l], b.x),
                  (b.z_H[1 - pp.h], b.z_L[1 - pp.l], b.logits, b.q_halt, b.q_continue))
        pp.h ^= 1
        pp.l ^= 1
        return None

    def read_heads(self, logits: bool = True) -> Heads:
        self._require_active()
        b, mem = self.bufs, self.memory
        qh, qc = mem.read(b.q_halt), mem.read(b.q_continue)
        lg = mem.read(b.logits) if logits else None
        mem.synchronize()
        return Heads(to_float32(qh, b.q_halt.spec.dtype), to_float32(qc, b.q_continue.spec.dtype),
                     None if lg is None else to_float32(lg, b.logits.spec.dtype))

    def read_state(self) -> np.ndarray:
        self._require_active()
        b = self.bufs
        z = self.memory.read(b.z_H[b.pp.h])
        self.memory.synchronize()
        return to_float32(z, b.z_H[0].spec.dtype)


def _same(what: str, a: TensorSpec, b: TensorSpec) -> None:
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ManifestError(f"graph I/O mismatch: {what} is {a.dtype}{list(a.shape)} but the state is "
                            f"{b.dtype}{list(b.shape)}; the manifest's graphs disagree (re-export)")
