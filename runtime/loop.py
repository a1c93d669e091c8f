"""The HRM halting loop over backend slots: embed once, segments until each row halts.

One :class:`SegmentLoop` drives one backend at its allocated batch size B. Rows ("slots") are
loaded with :meth:`SegmentLoop.admit` (state reset to H_init / L_init, x recomputed), every
:meth:`SegmentLoop.step` runs one segment on all B rows and reads the heads back **once** (the only
host synchronisation of the segment), then retires rows that halted. ``Session.solve`` admits a
chunk and steps until it drains; the continuous-batching ``Scheduler`` refills freed slots between
steps. Both stop rows by the one :class:`hrm.halting.HaltingPolicy` they are given (the semantics of
``hrm.model.solve``):

* ``fixed``: a row runs exactly ``max_segments`` segments (default ``halt_max_steps``);
* ``act``: a row halts after the first segment where the manifest's halt rule fires
  (``q_halt > q_continue`` for HRM); at least 1, at most ``max_segments``, which may exceed the trained
  ``halt_max_steps``.

A halted row's answer is the argmax of the logits of its halting segment. Logits are read only on
segments where some row can halt (always under ``act``; the last segment under ``fixed``) or when a
trace is wanted, in the same synchronisation as the q values.

Numerics: q values of every active row are checked each segment and logits whenever read; a
non-finite value fails that row with :class:`hrm.errors.NumericsError` naming the row's segment and
source. (NaN anywhere in a state reaches position 0, hence q, within one segment through attention.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hrm.errors import InputError, NumericsError
from hrm.halting import HALTING_MODES, HaltingPolicy  # noqa: F401 (re-exported)
from hrm.tasks.base import check_token_values


#: called after each segment with (per-row segment count [B], 0 = idle row; z_H as fp32 [B, S+P, D])
StateHook = Callable[[np.ndarray, np.ndarray], None]


@dataclass
class Request:
    """One puzzle to solve: inputs, where it came from, and who asked."""

    tokens: np.ndarray  # int32 [S]
    puzzle_id: int = 0
    source: str = "<input>"
    label: np.ndarray | None = None
    puzzle: Any = None  # the hrm.tasks.Puzzle, when there is one
    request_id: Any = None
    submitted: float = field(default_factory=time.perf_counter)

    @classmethod
    def of(cls, item: Any, request_id: Any = None, index: int = 0, source: str | None = None) -> "Request":
        """From a Puzzle (anything with .tokens/.puzzle_id/.source/.label) or a token vector.

        Values are checked before the int32 cast (a float or an int64 beyond int32 would change
        silently): :class:`hrm.errors.InputError` names the input."""
        if hasattr(item, "tokens"):
            where = str(getattr(item, "source", source or f"<input>:{index + 1}"))
            pid = _integer(getattr(item, "puzzle_id", 0), f"{where}: puzzle id")
            return cls(_token_vector(item.tokens, where), pid, where, getattr(item, "label", None), item, request_id)
        where = source or f"<input>:{index + 1}"
        return cls(_token_vector(item, where), 0, where, None, None, request_id)

    def check(self, config: Any) -> None:
        """Refuse what the model cannot read: shape, tokens outside the vocabulary, unknown puzzle ids.
        The one check both ``Session.solve`` and ``Scheduler.submit`` apply before any compute."""
        if self.tokens.shape != (config.seq_len,):
            raise InputError(f"{self.source}: expected {config.seq_len} tokens, got {self.tokens.size}")
        try:
            check_token_values(self.tokens, f"{self.source}", vocab_size=config.vocab_size)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not 0 <= self.puzzle_id < config.num_puzzle_identifiers:
            raise InputError(f"{self.source}: puzzle id {self.puzzle_id} outside [0, {config.num_puzzle_identifiers})")


def _token_vector(tokens: Any, where: str) -> np.ndarray:
    arr = np.asarray(tokens)
    try:
        check_token_values(arr, where)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return arr.reshape(-1).astype(np.int32)


def _integer(value: Any, what: str) -> int:
    """An integral scalar (Python or numpy int) as int; 1.7 or True are refused, not truncated."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{what}: expected an integer, got {value!r}")
    return int(value)


@dataclass
class RowRecord:
    """What happened to one request while it occupied a slot."""

    request: Request
    row: int
    loaded: float
    segments: int = 0
    q_halt: list[float] = field(default_factory=list)
    q_continue: list[float] = field(default_factory=list)
    trace: list[np.ndarray] | None = None
    segment_seconds: float = 0.0
    answer: np.ndarray | None = None
    finished: float = 0.0


@dataclass
class StepResult:
    """Rows that left the loop in one step."""

    finished: list[RowRecord]
    failed: list[tuple[RowRecord, NumericsError]]
    seconds: float


class SegmentLoop:
    """Segments over the slots of one backend (see the module docstring)."""

    def __init__(self, backend: Any, policy: HaltingPolicy, *, trace: bool = False,
                 state_hook: StateHook | None = None) -> None:
        self.backend = backend
        self.policy = policy
        self.trace = bool(trace)
        self.state_hook = state_hook
        self.rows: list[RowRecord | None] = [None] * backend.batch
        self.seq_len = backend.deployment.config.seq_len

    # ---- slots ---------------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        return len(self.rows)

    @property
    def active(self) -> int:
        return sum(r is not None for r in self.rows)

    def free_rows(self) -> list[int]:
        return [i for i, r in enumerate(self.rows) if r is None]

    def admit(self, requests: Sequence[Request]) -> list[int]:
        """Load requests into free slots (one backend.load_rows call); returns their rows."""
        free = self.free_rows()
        if len(requests) > len(free):
            raise ValueError(f"{len(requests)} requests but only {len(free)} free slots")
        if not requests:
            return []
        rows = free[: len(requests)]
        for req in requests:
            if req.tokens.shape != (self.seq_len,):
                raise ValueError(f"{req.source}: expected {self.seq_len} tokens, got {req.tokens.size}")
        tokens = np.stack([r.tokens for r in requests]).astype(np.int32)
        ids = np.array([r.puzzle_id for r in requests], np.int32)
        self.backend.load_rows(rows, tokens, ids)
        now = time.perf_counter()
        for row, req in zip(rows, requests):
            self.rows[row] = RowRecord(req, row, now, trace=[] if self.trace else None)
        return rows

    # ---- one segment -----------------------------------------------------------------------------
    def run_segment(self, logits: bool = False) -> Any:
        """One segment on every slot and its one read-back (q values; logits when asked), nothing else:
        the unit of work :meth:`step` adds halting to, and what a benchmark times per segment."""
        self.backend.segment()
        return self.backend.read_heads(logits=logits)

    def step(self) -> StepResult:
        """Run one segment on every slot, record heads, retire halted / failed rows."""
        t0 = time.perf_counter()
        live = [(i, r) for i, r in enumerate(self.rows) if r is not None]
        if not live:
            return StepResult([], [], 0.0)
        need_logits = self.trace or any(self.policy.may_stop(r.segments + 1) for _, r in live)
        heads = self.run_segment(logits=need_logits)
        preds = heads.predictions() if need_logits else None
        seconds = time.perf_counter() - t0
        if self.state_hook is not None:
            counts = np.zeros(self.slots, np.int64)
            for i, r in live:
                counts[i] = r.segments + 1
            self.state_hook(counts, self.backend.read_state())

        finished: list[RowRecord] = []
        failed: list[tuple[RowRecord, NumericsError]] = []
        now = time.perf_counter()
        for i, rec in live:
            rec.segments += 1
            rec.segment_seconds += seconds
            qh, qc = float(heads.q_halt[i]), float(heads.q_continue[i])
            bad = _non_finite(qh, qc, None if heads.logits is None else heads.logits[i])
            if bad:
                err = NumericsError(f"{rec.request.source}: non-finite {bad} at segment {rec.segments} "
                                    f"(batch row {i}, backend {self.backend.name}/{self.backend.precision})")
                err.segment, err.rows, err.sources = rec.segments, [i], [rec.request.source]
                failed.append((rec, err))
                self.rows[i] = None
                continue
            rec.q_halt.append(qh)
            rec.q_continue.append(qc)
            if rec.trace is not None:
                rec.trace.append(preds[i].copy())
            if self.policy.stops(rec.segments, qh, qc):
                rec.answer = preds[i].copy()
                rec.finished = now
                finished.append(rec)
                self.rows[i] = None
        return StepResult(finished, failed, seconds)


def _non_finite(q_halt: float, q_continue: float, logits: np.ndarray | None) -> str | None:
    if not (np.isfinite(q_halt) and np.isfinite(q_continue)):
        return f"q values (q_halt={q_halt}, q_continue={q_continue})"
    if logits is not None and not np.isfinite(logits).all():
        return "logits"
    return None


def merge_errors(failed: Sequence[tuple[RowRecord, NumericsError]]) -> NumericsError:
    """One error for a batch: the first segment and every row and source that failed."""
    rows = [rec.row for rec, _ in failed]
    sources = [rec.request.source for rec, _ in failed]
    seg = min(e.segment for _, e in failed)
    err = NumericsError(f"non-finite values at segment {seg} in batch rows {rows} ({', '.join(sources)}): "
                        f"{failed[0][1]}")
    err.segment, err.rows, err.sources = seg, rows, sources
    return err
