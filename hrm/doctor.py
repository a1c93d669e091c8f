"""``hrm-doctor``: the first command on a new device. What is installed, and does the path work here?

It answers two questions, each line with a verdict (:data:`VERDICTS`):

1. **Components**: Python, numpy, the CUDA driver and runtime (and which ``libcudart``), the GPU and its
   compute capability, TensorRT (flavour and version, or why it does not import or is refused), ONNX
   Runtime (version and providers), Polygraphy.
2. **The path, proven on this device**: export the bundled model (``models/sudoku4.safetensors``) into a
   temporary folder, or use the deployment given; build TensorRT engines for every precision the device
   supports; solve a fixed set of generated puzzles with every backend that can run here (``trt``,
   ``ort`` on CUDA, ``ort`` on the CPU) and compare answers and per-segment z_H with ONNX Runtime CPU fp32
   (fp32: identical answers; fp16/bf16: within the parity gate of :mod:`hrm.evaluation.parity`); capture and
   replay CUDA graphs at two batch sizes (answers identical to eager runs); time one segment at batch 1.

Which runs are possible is the manifest's rule (:func:`hrm.manifest.run_refusal`), as for every ``Session``;
the precisions, the segment cap, the batch and the ONNX Runtime options (``--threads``, ``--spin``) come
from the shared runtime options (:mod:`hrm.cli.options`); the backends, devices and halting (``fixed``: every
segment's z_H is compared) are the doctor's own, since proving all of them is its job.

``works`` / ``fails`` (with the error) / ``not available`` (why). ``not available`` is not a failure: a
Jetson without onnxruntime-gpu still passes; something installed that does not work fails, and so does
the run (:attr:`DoctorReport.exit_code`). Everything is library calls (export, Session, the parity
comparator): the doctor proves the same code users run, nothing of its own.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hrm.errors import EXIT_OK, EXIT_REJECTED

WORKS, FAILS, NOT_AVAILABLE = "works", "fails", "not available"
VERDICTS = (WORKS, FAILS, NOT_AVAILABLE)
BUNDLED = Path(__file__).resolve().parents[1] / "models" / "sudoku4.safetensors"
GRAPH_BATCHES = (1, 4)


@dataclass
class Check:
    """One line of the report."""

    section: str  # "component" | "path"
    name: str
    verdict: str
    detail: str


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 (:data:`hrm.errors.EXIT_REJECTED`) when something that is available fails, else 0."""
        return EXIT_REJECTED if any(c.verdict == FAILS for c in self.checks) else EXIT_OK

    def add(self, section: str, name: str, verdict: str, detail: str) -> Check:
        assert verdict in VERDICTS, verdict
        c = Check(section, name, verdict, detail)
        self.checks.append(c)
        return c

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "meta": self.meta, "checks": [asdict(c) for c in self.checks]}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _attempt(report: DoctorReport, section: str, name: str, fn: Callable[[], str]) -> bool:
    """Run ``fn`` (returns the detail of a working line); an exception makes the line ``fails``."""
    try:
        report.add(section, name, WORKS, fn())
        return True
    except _NotAvailable as why:
        report.add(section, name, NOT_AVAILABLE, str(why))
    except Exception as exc:  # noqa: BLE001 - the doctor reports every failure as a line, never a traceback
        report.add(section, name, FAILS, _one_line(exc))
    return False


class _NotAvailable(Exception):
    """Raised inside a check: this line does not apply here, and why."""


# ---- components ----------------------------------------------------------------------------------

def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def check_components(report: DoctorReport) -> dict[str, Any]:
    """The component lines; returns what the path checks need (gpu info, tensorrt, onnxruntime)."""
    from hrm.runtime.gpu import probe

    found: dict[str, Any] = {}
    report.add("component", "python", WORKS, f"{platform.python_version()} ({platform.machine()})")
    report.add("component", "numpy", WORKS, np.__version__)
    gpu = found["gpu"] = probe()
    if gpu.available:
        report.add("component", "CUDA", WORKS, f"driver {gpu.driver}, runtime {gpu.runtime} ({gpu.cudart})")
        report.add("component", "GPU", WORKS, f"{gpu.name}, compute capability {gpu.compute_capability}"
                                              + (f", {gpu.count} devices" if gpu.count > 1 else ""))
    else:
        report.add("component", "CUDA", NOT_AVAILABLE, gpu.reason or "no CUDA")
        report.add("component", "GPU", NOT_AVAILABLE, "no usable CUDA device (see CUDA)")

    def tensorrt() -> str:
        from hrm.errors import HRMError
        from hrm.runtime.trt_lib import import_tensorrt

        try:
            trt = import_tensorrt("auto")
        except HRMError as exc:
            if "not importable" in str(exc):
                raise _NotAvailable(str(exc)) from None
            raise
        found["trt"] = trt
        return f"{trt.flavour} {trt.version}"
    _attempt(report, "component", "TensorRT", tensorrt)

    def onnxruntime() -> str:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise _NotAvailable(f"onnxruntime is not importable ({exc}): pip install 'hrm-deploy[ort]' "
                                "(CPU) or onnxruntime-gpu") from None
        found["ort"] = ort
        dist = "onnxruntime-gpu" if _version("onnxruntime-gpu") else "onnxruntime"
        return f"{dist} {ort.__version__}; providers {', '.join(ort.get_available_providers())}"
    _attempt(report, "component", "ONNX Runtime", onnxruntime)

    def polygraphy() -> str:
        if (v := _version("polygraphy")) is None:
            raise _NotAvailable("not installed (needed only for export validation: pip install 'hrm-deploy[export]')")
        importlib.import_module("polygraphy")
        return v
    _attempt(report, "component", "Polygraphy", polygraphy)
    return found


# ---- the path ------------------------------------------------------------------------------------

@dataclass
class Run:
    """One backend configuration to prove: solved, compared with the reference, timed."""

    backend: str
    device: str
    precision: str
    options: Any  # the backend's options object (hrm.runtime.backends.options)

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.device}/{self.precision}"


def _solve(dep: Any, run: Run, puzzles: list[Any], batch: int,
           max_segments: int | None) -> tuple[Any, list[np.ndarray], Any]:
    """Fixed-halting solve; returns (Outcome, per-segment z_H [N, ...] in puzzle order, backend description)."""
    from hrm.evaluation.parity import Outcome
    from hrm.runtime.session import Session

    answers, segments, states, described = [], [], [], {}
    with Session(dep, backend=run.backend, device=run.device, precision=run.precision, batch=batch,
                 max_segments=max_segments, options=run.options) as sess:
        for start in range(0, len(puzzles), batch):
            chunk = puzzles[start:start + batch]
            per_seg: list[np.ndarray] = []
            results = sess.solve(chunk, halting="fixed",
                                 state_hook=lambda counts, z, k=len(chunk), acc=per_seg: acc.append(z[:k].copy()))
            answers.append(np.stack([r.answer_tokens for r in results]))
            segments.append(np.array([r.segments for r in results]))
            states.append(per_seg)
        described = sess.backend.describe()
    n_seg = min(len(s) for s in states)
    per_segment = [np.concatenate([s[i] for s in states]) for i in range(n_seg)]
    return Outcome(np.concatenate(answers), np.concatenate(segments)), per_segment, described


def _compare(run: Run, ref: tuple[Any, list[np.ndarray]], got: tuple[Any, list[np.ndarray]],
             labels: list[Any]) -> str:
    """The parity comparator and gate of :mod:`hrm.evaluation.parity`; raises when the gate fails."""
    from hrm.evaluation.compare import relative_drift
    from hrm.evaluation.parity import compare, evaluate_gates

    drift = [relative_drift(a, b) for a, b in zip(got[1], ref[1])]
    c = compare(run.precision, "fixed", ref[0], got[0], labels, drift)
    gate = evaluate_gates([c])[0]
    detail = (f"{c.answer_agreement:.0%} of {c.n} answers equal ort-cpu/fp32; z_H drift at the last segment "
              f"mean {c.drift_mean[-1]:.1e} max {c.drift_max[-1]:.1e}; {gate.name}: {gate.detail}")
    if not gate.passed:
        raise AssertionError(detail)
    return detail


def _time_segment(dep: Any, run: Run, repeats: int = 20) -> str:
    """Median wall time of one segment at batch 1: :meth:`SegmentLoop.run_segment`, the unit hrm-bench times."""
    from hrm.runtime.session import Session

    with Session(dep, backend=run.backend, device=run.device, precision=run.precision, batch=1,
                 options=run.options) as s, s.lock:
        loop = s.new_loop(1, "fixed")
        times = []
        for _ in range(repeats + 3):
            t = time.perf_counter()
            loop.run_segment()
            times.append(time.perf_counter() - t)
    return f"{np.median(times[3:]) * 1e3:.3f} ms per segment (median of {repeats}, batch 1)"


def _precisions(gpu: Any) -> tuple[str, ...]:
    """Precisions this device runs: fp32 always; fp16 with a GPU (and on the CPU, where ORT computes it in
    fp32 through casts: still a useful check of the graphs); bf16 on compute capability >= 8.0."""
    if not gpu.available:
        return ("fp32", "fp16")
    major = int(str(gpu.compute_capability).split(".")[0])
    return ("fp32", "fp16") + (("bf16",) if major >= 8 else ())


def _export(checkpoint: Path, workdir: Path, precisions: tuple[str, ...]) -> Path:
    if not checkpoint.is_file():
        raise _NotAvailable(f"{checkpoint} not found (the bundled model ships with a checkout, not the wheel): "
                            "copy models/sudoku4.safetensors here and pass --checkpoint, or pass an exported DIR")
    if importlib.util.find_spec("onnx") is None:
        raise _NotAvailable("exporting needs onnx: pip install 'hrm-deploy[graphs]', or pass an exported DIR")
    from hrm.export import export_deployment

    out = workdir / checkpoint.stem
    export_deployment(checkpoint, out, precisions=",".join(precisions), validate=False, segment=True)
    return out


def _build_engines(dep_dir: Path, trt: Any, precision: str) -> str:
    from hrm.export.engine import EngineOptions, build_engine
    from hrm.manifest import load_manifest

    man = load_manifest(dep_dir, verify=False)
    var = man.variant(precision)
    options = EngineOptions(min_batch=1, opt_batch=max(GRAPH_BATCHES), max_batch=16, flavour=trt.flavour,
                            builder_optimization_level=None)
    seconds = 0.0
    for kind, g in var.files.items():
        path = man.path(g.file)
        entry, s = build_engine(trt, path, path.with_suffix(".engine"), options, root=man.root)
        var.engines[kind] = entry
        seconds += s
    man.save()
    e = next(iter(var.engines.values()))
    return f"{len(var.engines)} engines in {seconds:.1f} s; recorded compute capability {e.compute_capability}"


def run_doctor(directory: str | Path | None = None, *, checkpoint: str | Path | None = None, puzzles: int = 16,
               batch: int = 8, workdir: str | Path | None = None, time_segments: bool = True,
               precisions: Sequence[str] | None = None, max_segments: int | None = None,
               ort_options: Any = None) -> DoctorReport:
    """Run every check (see the module doc). ``directory``: a deployment to use instead of exporting
    ``checkpoint`` (default: the bundled ``models/sudoku4.safetensors``); it is copied first, engines are
    built into the copy. ``workdir``: keep the exported deployment there (default: a temporary folder,
    removed). ``precisions``: prove only these, and fp32, the reference (default: every one this device
    runs, :func:`_precisions`); ``max_segments``: the solves' segment cap (default: the trained one);
    ``ort_options``: the :class:`~hrm.runtime.backends.options.OrtOptions` of every ONNX Runtime run."""
    from hrm.runtime.backends.options import OrtOptions

    ort_options = ort_options if ort_options is not None else OrtOptions()
    chosen = tuple(dict.fromkeys(("fp32", *precisions))) if precisions else None
    report = DoctorReport(meta={"puzzles": puzzles, "batch": batch, "max_segments": max_segments,
                                "precisions": list(chosen) if chosen else None, "ort_options": ort_options.describe()})
    checkpoint = Path(checkpoint) if checkpoint is not None else BUNDLED
    found = check_components(report)
    gpu, trt, ort = found["gpu"], found.get("trt"), found.get("ort")
    tmp = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="hrm-doctor."))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        _prove(report, directory, checkpoint, tmp, gpu, trt, ort, puzzles, batch, time_segments,
               chosen or _precisions(gpu), max_segments, ort_options)
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def _prove(report: DoctorReport, directory: Any, checkpoint: Path, tmp: Path, gpu: Any, trt: Any, ort: Any, n: int,
           batch: int, time_segments: bool, precisions: tuple[str, ...], max_segments: int | None,
           ort_options: Any) -> None:
    from hrm.evaluation.datasets import load_puzzles
    from hrm.manifest import run_refusal
    from hrm.runtime.backends.options import TrtOptions
    from hrm.runtime.deployment import load_deployment

    holder: dict[str, Any] = {}

    def deployment() -> str:
        if directory is not None:
            load_deployment(directory)  # verify the original before copying it
            holder["dir"] = Path(shutil.copytree(directory, tmp / "deployment"))
            how = f"{directory} (copied to {holder['dir']} for engines)"
        else:
            holder["dir"] = _export(checkpoint, tmp, precisions)
            how = f"{checkpoint.name} exported to {holder['dir']}"
        holder["dep"] = load_deployment(holder["dir"])
        return f"{how}; variants {', '.join(holder['dep'].precisions)}; every file's sha256 verified"
    if not _attempt(report, "path", "deployment", deployment):
        return
    dep_dir, dep = holder["dir"], holder["dep"]
    supported = [p for p in precisions if p in dep.precisions]

    # engines: build for every precision this device supports (TensorRT-RTX builds even without a GPU)
    engine_ok: set[str] = set()
    for p in supported:
        def engines(p: str = p) -> str:
            if trt is None:
                raise _NotAvailable("TensorRT is not importable (see TensorRT)")
            if not gpu.available and not trt.traits.targets:
                raise _NotAvailable(f"{trt.flavour} builds on a GPU; {gpu.reason}")
            if why := run_refusal(p, dep.variant(p).ops, "trt", "cuda"):
                raise _NotAvailable(why)
            detail = _build_engines(dep_dir, trt, p)
            engine_ok.add(p)
            return detail
        _attempt(report, "path", f"engines {p}", engines)
    dep = load_deployment(dep_dir)

    puzzles = load_puzzles("generated", dep, n=n, seed=0)
    labels = [getattr(p, "label", None) for p in puzzles]
    reference = Run("ort", "cpu", "fp32", ort_options)
    ref: dict[str, Any] = {}

    def solve_reference() -> str:
        if ort is None:
            raise _NotAvailable("onnxruntime is not importable: no reference run (see ONNX Runtime)")
        out, states, _ = _solve(dep, reference, puzzles, batch, max_segments)
        ref["run"] = (out, states)
        acc = np.mean([np.array_equal(a[lb != 0], lb[lb != 0]) for a, lb in zip(out.answers, labels)])
        return f"reference: {len(puzzles)} generated puzzles, {len(states)} segments, {acc:.0%} solved exactly"
    _attempt(report, "path", f"solve {reference.name}", solve_reference)

    runs: list[tuple[Run, str | None]] = []
    for p in supported:
        if p != "fp32":  # fp32 on the CPU is the reference itself
            runs.append((Run("ort", "cpu", p, ort_options), "the CPU execution provider has no bf16 kernels (bf16 "
                         "runs on CUDA)" if p == "bf16" else None))
    ort_cuda = None if (ort is not None and "CUDAExecutionProvider" in ort.get_available_providers()) else \
        "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    no_gpu = None if gpu.available else f"no GPU: {gpu.reason}"
    for p in supported:
        runs.append((Run("ort", "cuda", p, ort_options), no_gpu or ort_cuda))
        runs.append((Run("trt", "cuda", p, TrtOptions(cuda_graph=False)),
                     no_gpu or (None if p in engine_ok else f"no {p} engines (see engines {p})")))
    # what the manifest says cannot run (int8 off the ORT CPU path, ...) says so, before anything else
    runs = [(run, run_refusal(run.precision, dep.variant(run.precision).ops, run.backend, run.device) or why)
            for run, why in runs]

    working: list[Run] = [reference] if "run" in ref else []
    for run, why in runs:
        def solve(run: Run = run, why: str | None = why) -> str:
            if why:
                raise _NotAvailable(why)
            if "run" not in ref:
                raise _NotAvailable("no ort-cpu/fp32 reference to compare with")
            out, states, _ = _solve(dep, run, puzzles, batch, max_segments)
            detail = _compare(run, ref["run"], (out, states), labels)
            working.append(run)
            return detail
        _attempt(report, "path", f"solve {run.name}", solve)

    # CUDA graphs: captured and replayed at two batch sizes, answers identical to eager
    for backend in ("trt", "ort"):
        def graphs(backend: str = backend) -> str:
            eager = next((r for r in working if r.backend == backend and r.device == "cuda"), None)
            if eager is None:
                raise _NotAvailable(f"no working {backend} on CUDA here (see the solve lines)")
            for b in GRAPH_BATCHES:
                graph = Run(backend, "cuda", eager.precision, replace(eager.options, cuda_graph=True))
                sub = puzzles[: 2 * b]
                g_out, _, desc = _solve(dep, graph, sub, b, max_segments)
                e_out, _, _ = _solve(dep, replace(graph, options=eager.options), sub, b, max_segments)
                if not desc.get("cuda_graph"):
                    raise AssertionError(f"capture fell back to eager at batch {b} (see the warning above)")
                if not np.array_equal(g_out.answers, e_out.answers):
                    raise AssertionError(f"CUDA-graph replay answers differ from eager at batch {b}")
            sizes = " and ".join(map(str, GRAPH_BATCHES))
            return f"{eager.precision}: captured and replayed at batch {sizes}, answers identical to eager"
        _attempt(report, "path", f"cuda graphs {backend}", graphs)

    if time_segments:
        for run in working:
            _attempt(report, "path", f"time {run.name}", lambda run=run: _time_segment(dep, run))
