"""``export_deployment``: checkpoint in, complete and verified deployment directory out.

Stages (each reported through ``progress``): load the checkpoint -> build and write the graphs (+ the
initial states) -> check them (onnx.checker, shape inference) -> validate against PyTorch -> build
TensorRT engines -> write ``manifest.json`` last. The target is locked, checked and staged by
:mod:`hrm.export.publish`: everything is written into a staging folder and published in one rename at
the end, so an interrupted or failed export leaves nothing under ``out_dir`` (an existing deployment
stays whole and in use until the new one replaces it).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import hrm
from hrm.checkpoint import Checkpoint, check_task, load_checkpoint
from hrm.errors import EXIT_REJECTED, ExportError
from hrm.export.engine import EngineOptions, build_engine, import_tensorrt
from hrm.export.graphs import (DEFAULT_OPSET, STEP_GRAPHS, build_graph, check_opset, check_ops, graph_aliases,
                               graph_io)
from hrm.export.precision import Precision, parse_precisions
from hrm.export.publish import open_target
from hrm.export.quantize import quantize_graph
from hrm.export.writer import EXTERNAL_DATA_THRESHOLD, check_graph, save_graph, save_init
from hrm.identifiers import PuzzleIdentifiers, select_rows, select_tasks, write_deployment_identifiers
from hrm.io import sha256_file
from hrm.manifest import DEFAULT_OPS, STANDARD, GraphEntry, Manifest, Variant, run_refusal


class ValidationFailed(ExportError):
    """The exported graphs do not match the PyTorch reference within tolerance; ``report`` has the details.
    Nothing was written (an existing deployment at the target is unchanged)."""

    exit_code = EXIT_REJECTED

    def __init__(self, message: str, report: "ExportReport") -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ProgressEvent:
    """One progress message. ``stage``: load, graphs, validate, engine, manifest. ``kind``: ``start`` opens
    a stage, ``note`` reports inside it, ``done`` closes it (with ``seconds``)."""

    stage: str
    message: str
    kind: str = "note"
    seconds: float | None = None

    @property
    def done(self) -> bool:
        return self.kind == "done"


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class GraphResult:
    """One row of the closing table: a graph of one precision, its errors and its engine."""

    precision: str
    kind: str
    file: str
    bytes: int
    max_abs: float | None = None
    max_rel: float | None = None
    tolerance: float | None = None
    passed: bool | None = None
    engine_file: str | None = None
    engine_bytes: int | None = None
    build_seconds: float | None = None
    alias_of: str | None = None  # served by this graph kind's file (TRM's h_step: l_step)


@dataclass
class ExportReport:
    """What an export produced (the CLI's table and ``--json`` summary)."""

    out_dir: Path
    manifest_path: Path
    source: dict[str, Any]
    config: dict[str, Any]
    precisions: list[str]
    opset: int
    graphs: list[GraphResult] = field(default_factory=list)
    validation: dict[str, dict[str, Any]] | None = None
    engine: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    ops: str = DEFAULT_OPS
    identifiers: dict[str, Any] | None = None  # puzzle identifiers recorded / rows kept (see _identifiers)

    @property
    def passed(self) -> bool:
        """True when validation ran and every gated check passed, or validation was skipped."""
        return self.validation is None or all(v["passed"] for v in self.validation.values())

    @property
    def notes(self) -> list[str]:
        """Checks past their bound that are reported, not gated (low-precision drift of the recurrence)."""
        from hrm.export.validate import drift_notes

        return [n for p, v in (self.validation or {}).items() for n in drift_notes(v, p, str(self.out_dir))]

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "manifest": str(self.manifest_path), "source": self.source,
                "config": self.config, "precisions": self.precisions, "opset": self.opset, "ops": self.ops,
                "passed": self.passed, "notes": self.notes,
                "graphs": [asdict(g) for g in self.graphs], "validation": self.validation, "engine": self.engine,
                "identifiers": self.identifiers, "seconds": self.seconds}


def library_versions() -> dict[str, str | None]:
    """Versions of everything that shaped the graphs (recorded in the manifest's ``exporter``)."""
    import importlib.metadata as md

    out: dict[str, str | None] = {"hrm_deploy": hrm.__version__}
    for dist, key in (("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("onnxruntime-gpu", "onnxruntime_gpu"),
                      ("polygraphy", "polygraphy"), ("torch", "torch"), ("numpy", "numpy"), ("ml_dtypes", "ml_dtypes")):
        try:
            out[key] = md.version(dist)
        except md.PackageNotFoundError:
            if key != "onnxruntime_gpu":
                out[key] = None
    return out


# ---- the export ----------------------------------------------------------------------------------

def export_deployment(
    checkpoint: str | Path | Checkpoint,
    out_dir: str | Path,
    precisions: str | Sequence[str] = ("fp32", "fp16", "bf16"),
    opset: int = DEFAULT_OPSET,
    validate: bool = True,
    engine: EngineOptions | None = None,
    force: bool = False,
    segment: bool = False,
    progress: ProgressCallback | None = None,
    *,
    seq_len: int | None = None,
    dataset_json: str | Path | None = None,
    task: Mapping[str, Any] | None = None,
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
    validation_batch: int = 2,
    chain_segments: int = 3,
    provider: str = "auto",
    seed: int = 0,
    ops: str = DEFAULT_OPS,
    identifiers: str | Path | PuzzleIdentifiers | None = None,
    tasks: str | Path | Sequence[str] | None = None,
) -> ExportReport:
    """Export ``checkpoint`` (ours or official; path or loaded) to the deployment directory ``out_dir``.

    ``precisions``: any of fp32, fp16, bf16, int8 (fp32 graphs with int8 weight MatMuls,
    :mod:`hrm.export.quantize`; ONNX Runtime CPU only, so no engines for it). ``segment``: also export the fused ``segment`` graph.
    ``ops``: the graph ops, ``standard`` (opset-17 primitives; TensorRT parses them) or
    ``ort-contrib`` (ONNX Runtime's fused com.microsoft ops, :mod:`hrm.export.contrib`; no engines).
    ``engine``: build TensorRT engines with these options (None: no engines). ``checkpoint`` is anything
    :func:`hrm.checkpoint.load_checkpoint` takes (file, published folder, ``hf://``). ``seq_len`` /
    ``dataset_json``: sizes for official checkpoints whose config lacks them; ``task`` (metadata): the
    task to record instead of the checkpoint's or the inferred one. Raises
    :class:`hrm.errors.HRMError` subclasses for user errors and :class:`ValidationFailed` when a graph
    does not match the reference; in every failure case nothing is left under ``out_dir``.

    ``identifiers``: the dataset build's ``identifiers.json`` (or its table), recorded in the deployment
    so the ARC procedure knows which augmentations of which task the model has (:mod:`hrm.identifiers`).
    ``tasks``: keep only the puzzle-embedding rows of these tasks (ids, or an ARC task file / folder /
    challenges file) and of id 0, renumbered; the report's ``identifiers`` block says rows and bytes
    kept. Without ``tasks`` the full table is exported (external data above 1 GiB).
    """
    emit = progress or (lambda event: None)
    out_dir = Path(out_dir).absolute()
    chosen = parse_precisions(precisions)
    opset = check_opset(opset)
    ops = check_ops(ops)
    if engine is not None and all(run_refusal(p.name, ops, "trt", "cuda") for p in chosen):
        raise ExportError(f"--engine: {run_refusal(chosen[0].name, ops, 'trt', 'cuda')}")
    with open_target(out_dir, force) as target:  # locked, checked and staged before any long work
        if engine is not None:
            engine.validate()
        trt = import_tensorrt(engine.flavour) if engine is not None else None  # fail before any long work
        if validate:
            _check_validation_deps()
            from hrm.export.sessions import resolve_provider

            provider = resolve_provider(provider)  # type: ignore[arg-type]
        timer = _Timer(emit)

        with timer("load", "loading checkpoint"):
            ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(
                checkpoint, seq_len=seq_len, dataset_json=dataset_json, task=task)
            check_task(ckpt.task, ckpt.config, ckpt.source)
            target.refuse_source_inside(Path(ckpt.source))
            for line in ckpt.notes():
                timer.note(line)
            timer.note(f"{ckpt.format} checkpoint {ckpt.source.name}: {ckpt.num_parameters:,} parameters, "
                       f"seq_len {ckpt.config.seq_len}, vocab {ckpt.config.vocab_size}")
            ckpt, names, rows, id_report = _identifiers(ckpt, identifiers, tasks, timer)
        kinds = (*STEP_GRAPHS, "segment") if segment else STEP_GRAPHS
        staging = target.stage
        report = ExportReport(out_dir, out_dir / "manifest.json", ckpt.provenance(), ckpt.config.to_dict(),
                              [p.name for p in chosen], opset, ops=ops)
        sources: dict[str, dict[str, Path]] = {}
        variants = _write_graphs(ckpt, chosen, kinds, opset, staging, external_data_threshold, timer, report, ops,
                                 sources, prefix=target.prefix)
        init = save_init(staging, ckpt.tensors, prefix=target.prefix)
        id_entry = None
        if names is not None:
            id_entry = write_deployment_identifiers(staging, names, rows, id_report["source"], prefix=target.prefix)
            report.identifiers = id_report
        if validate:
            _validate(ckpt, chosen, variants, staging, timer, report, validation_batch, chain_segments, provider, seed,
                      init, sources)
        for name in sources:
            shutil.rmtree(staging / f".source-{name}")
        if trt is not None and engine is not None:
            _engines(trt, engine, chosen, variants, staging, timer, report, ops)
        with timer("manifest", "writing manifest.json"):
            exporter: dict[str, Any] = {**library_versions(), "opset": opset,
                                        "graph_builder": "hrm.export (onnx.helper from checkpoint tensors)"}
            if trt is not None:
                exporter["tensorrt"] = {"flavour": trt.flavour, "version": trt.version}
            Manifest(config=ckpt.config, task=ckpt.task, variants=variants, init=init, source=report.source,
                     exporter=exporter, default_halting="act", root=staging,
                     halt_rule=ckpt.config.halt_rule, identifiers=id_entry).save()
            target.publish()
    report.seconds.update(timer.seconds)
    report.seconds["total"] = round(sum(timer.seconds.values()), 3)
    return report


def _check_validation_deps() -> None:
    import importlib.util

    missing = [m for m in ("torch", "onnxruntime", "polygraphy") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"validation needs {', '.join(missing)}: pip install 'hrm-deploy[export]' "
                          "(or pass --no-validate to skip the parity checks)")


def _identifiers(ckpt: Checkpoint, identifiers: str | Path | PuzzleIdentifiers | None,
                 tasks: str | Path | Sequence[str] | None, timer: "_Timer"
                 ) -> tuple[Checkpoint, PuzzleIdentifiers | None, np.ndarray | None, dict[str, Any] | None]:
    """Check the identifiers against the checkpoint and, with ``tasks``, keep only their rows.

    Returns the (possibly pruned) checkpoint, the names to record, the kept rows (None: all) and the
    report block. Every mismatch is an ExportError before any graph is built."""
    n = ckpt.config.num_puzzle_identifiers
    if identifiers is None:
        if tasks is not None:
            raise ExportError("--tasks needs --identifiers: the puzzle-embedding rows of a task are found by "
                              "name in the dataset build's identifiers.json")
        if ckpt.task and ckpt.task.get("name") == "arc":
            timer.note(f"no --identifiers: the {n:,} puzzle-embedding rows have no names, so hrm-run can use only "
                       "the blank identifier 0, un-augmented (pass the dataset's identifiers.json for the official "
                       "augment-and-vote procedure)")
        return ckpt, None, None, None
    ids = identifiers if isinstance(identifiers, PuzzleIdentifiers) else PuzzleIdentifiers.read(identifiers)
    if len(ids) != n:
        raise ExportError(f"{ids.source}: {len(ids):,} puzzle names, but the checkpoint's puzzle embedding has {n:,} "
                          "rows (num_puzzle_identifiers): identifiers.json of another dataset build?")
    width = ckpt.config.puzzle_len * ckpt.config.hidden_size  # row width as exported (embed pads to P x D)
    source = {"file": str(ids.source), "count": len(ids),
              **({"sha256": sha256_file(ids.source)} if Path(ids.source).is_file() else {})}
    report: dict[str, Any] = {"source": source, "count": n, "source_count": n, "tasks": len(ids.by_task),
                              "table_bytes_fp32": {"before": n * width * 4, "after": n * width * 4}}
    if tasks is None:
        timer.note(f"identifiers: {n:,} puzzle names for {len(ids.by_task):,} tasks recorded (full table)")
        return ckpt, ids, None, report
    task_ids = _task_ids(tasks)
    sel = select_tasks(ids, task_ids)
    if sel.missing:
        raise ExportError(f"--tasks: {len(sel.missing)} of {len(task_ids)} tasks have no identifier in {ids.source} "
                          f"(first: {', '.join(sel.missing[:3])}): the model was not trained on them")
    pruned = select_rows(ckpt, sel.rows)
    report.update(count=sel.count, tasks=len(task_ids),
                  table_bytes_fp32={"before": n * width * 4, "after": sel.count * width * 4})
    timer.note(f"identifiers: kept {sel.count:,} of {n:,} puzzle-embedding rows ({len(task_ids)} tasks + the blank "
               f"id); table {n * width * 4 / 2**20:,.1f} MiB -> {sel.count * width * 4 / 2**20:,.1f} MiB (fp32)")
    return pruned, sel.identifiers, sel.rows, report


def _task_ids(tasks: str | Path | Sequence[str]) -> list[str]:
    """Task ids from an ARC task file / folder / challenges file, or a list of ids."""
    if isinstance(tasks, (str, Path)):
        from hrm.tasks.arc_inputs import read_arc_inputs

        read = read_arc_inputs([str(tasks)])
        if read.errors:
            raise ExportError(f"--tasks: {read.errors[0]}" + (f" (and {len(read.errors) - 1} more)"
                                                              if len(read.errors) > 1 else ""))
        ids = [r.task_id for r in read.records]
    else:
        ids = [str(t) for t in tasks]
    if not ids:
        raise ExportError(f"--tasks {tasks}: no tasks found")
    return ids


def _write_graphs(ckpt: Checkpoint, chosen: Sequence[Precision], kinds: Sequence[str], opset: int, staging: Path,
                  threshold: int, timer: "_Timer", report: ExportReport, ops: str = DEFAULT_OPS,
                  sources: dict[str, dict[str, Path]] | None = None, prefix: str = "") -> dict[str, Variant]:
    """Build, save and check every graph (as ``staging/<prefix><precision>/<kind>.onnx``); for a quantized
    precision its pre-quantization graphs go to ``staging/.source-<precision>/`` (recorded in ``sources``;
    validated, then removed before publishing)."""
    variants: dict[str, Variant] = {}
    tensors = {k: np.asarray(v, dtype=np.float32) for k, v in ckpt.tensors.items()}
    ops_note = "" if ops == STANDARD else f", ops {ops}"
    aliases = graph_aliases(ckpt.config)
    built = [k for k in kinds if k not in aliases]
    with timer("graphs", f"building {len(built)} graphs x {len(chosen)} precisions (opset {opset}{ops_note})"):
        if aliases:
            timer.note(", ".join(f"{k} runs the {a.runs} graph (inputs rebound; one network, its weights once)"
                                 for k, a in aliases.items()))
        for p in chosen:
            graphs = {}
            for kind in kinds:
                ins, outs = graph_io(kind, ckpt.config, p)
                if kind in aliases:
                    graphs[kind] = GraphEntry(kind, None, None, [s.to_dict() for s in ins], [s.to_dict() for s in outs],
                                              alias=aliases[kind])
                    report.graphs.append(GraphResult(p.name, kind, graphs[aliases[kind].runs].file, 0,
                                                     alias_of=aliases[kind].runs))
                    continue
                model = build_graph(kind, ckpt.config, tensors, p, opset, ops=ops)
                if p.quantized:
                    src = save_graph(model, staging, f".source-{p.name}/{kind}.onnx", kind, ins, outs, threshold)
                    if sources is not None:
                        sources.setdefault(p.name, {})[kind] = staging / src.file
                    model = quantize_graph(model, kind)
                entry = save_graph(model, staging, f"{prefix}{p.name}/{kind}.onnx", kind, ins, outs, threshold)
                del model
                check_graph(staging / entry.file, outs)
                size = (staging / entry.file).stat().st_size
                if entry.external_data:
                    size += (staging / entry.external_data["file"]).stat().st_size
                graphs[kind] = entry
                report.graphs.append(GraphResult(p.name, kind, entry.file, size))
                timer.note(f"{entry.file}: {size / 2**20:.1f} MiB, checker + shape inference ok")
            variants[p.name] = Variant(p.name, graphs, ops=ops)
    return variants


def _validate(ckpt: Checkpoint, chosen: Sequence[Precision], variants: Mapping[str, Variant], staging: Path,
              timer: "_Timer", report: ExportReport, batch: int, chain_segments: int, provider: str, seed: int,
              init_files: Mapping[str, Mapping[str, str]], sources: Mapping[str, Mapping[str, Path]] | None = None
              ) -> None:
    from hrm.export.validate import ValidationInputs, drift_notes, failures, validate_quantized, validate_variant
    from hrm.model import RecursiveModel

    report.validation = {}
    with timer("validate", f"validating against PyTorch ({provider})"):
        model = RecursiveModel.from_checkpoint(ckpt)
        data = ValidationInputs.make(ckpt.config, ckpt.task, batch=batch, seed=seed)
        init = tuple(np.load(staging / init_files[k]["file"]) for k in ("H_init", "L_init"))
        workdir = Path(tempfile.mkdtemp(prefix=".validate-", dir=staging))
        try:
            for p in chosen:
                files = {k: staging / g.file for k, g in variants[p.name].files.items()}
                if p.quantized:
                    result = validate_quantized(model, (sources or {})[p.name], files, p, data, init, workdir,  # type: ignore[arg-type]
                                                provider, chain_segments)
                else:
                    result = validate_variant(model, files, p, data, init, workdir, provider, chain_segments)  # type: ignore[arg-type]
                variants[p.name].validation = result
                report.validation[p.name] = result
                for row in report.graphs:
                    if row.precision == p.name and row.kind in result["graphs"]:
                        g = result["graphs"][row.kind]
                        row.max_abs, row.max_rel, row.tolerance, row.passed = (g["max_abs"], g["max_rel"],
                                                                              g["tolerance"], g["passed"])
                seg = result["segment"]
                chain = result["chain"]
                timer.note(f"{p.name}: {'passed' if result['passed'] else 'FAILED'}; composed segment max_rel "
                           f"{seg['max_rel']:.2e} (tol {seg['tolerance']:.1e}), {chain['segments']} chained "
                           f"segments max_rel {chain['max_rel']:.2e}" + ("" if chain["gated"] else " (not gated)")
                           + (" (graphs before quantization)" if p.quantized else ""))
                for note in drift_notes(result, p.name, str(report.out_dir)):
                    timer.note(note)
                if "quantization" in result:
                    qz = result["quantization"]
                    d = qz["drift_vs_fp32"]
                    n = sum(w["weights"] for w in qz["weights"].values())
                    steps = max((w["max_error_steps"] for w in qz["weights"].values()), default=0.0)
                    timer.note(f"{p.name}: {n} int8 weights within {steps:.2f} step of fp32; drift vs fp32 (not gated; "
                               f"gate: hrm-parity): l_step {d['l_step']:.2e}, segment {d['composed_segment']:.2e}, "
                               f"chain {d['chain']:.2e}, chain argmax agreement {d['chain_prediction_agreement']:.1%}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    bad = [f"{p}: {line}" for p, r in report.validation.items() for line in failures(r)]
    if bad:
        report.seconds.update(timer.seconds)
        raise ValidationFailed("validation failed: " + "; ".join(bad) + f"; nothing was written to {report.out_dir}",
                               report)


def _engines(trt: Any, options: EngineOptions, chosen: Sequence[Precision], variants: Mapping[str, Variant],
             staging: Path, timer: "_Timer", report: ExportReport, ops: str = DEFAULT_OPS) -> None:
    report.engine = {"flavour": trt.flavour, "version": trt.version, "options": options.record()}
    with timer("engine", f"building TensorRT engines ({trt.flavour} {trt.version})"):
        for p in chosen:
            if why := run_refusal(p.name, ops, "trt", "cuda"):
                timer.note(f"{p.name}: no engines: {why}")
                continue
            for kind, graph in variants[p.name].files.items():
                if options.graphs is not None and kind not in options.graphs:
                    continue
                onnx_path = staging / graph.file
                entry, seconds = build_engine(trt, onnx_path, onnx_path.with_suffix(".engine"), options, root=staging)
                entry.kind = kind
                variants[p.name].engines[kind] = entry
                for row in report.graphs:
                    if row.precision == p.name and row.kind == kind:
                        row.engine_file, row.build_seconds = entry.file, round(seconds, 3)
                        row.engine_bytes = (staging / entry.file).stat().st_size
                timer.note(f"{entry.file}: built in {seconds:.1f} s")


class _Timer:
    """Stage timing + progress events: ``with timer("graphs", "message"):`` and ``timer.note("...")``."""

    def __init__(self, emit: ProgressCallback) -> None:
        self.emit, self.stage, self.seconds = emit, "", {}

    def __call__(self, stage: str, message: str) -> "_Timer":
        self.stage, self.message = stage, message
        return self

    def __enter__(self) -> "_Timer":
        self.start = time.time()
        self.emit(ProgressEvent(self.stage, self.message, "start"))
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        seconds = round(time.time() - self.start, 3)
        self.seconds[self.stage] = seconds
        if exc_type is None:
            self.emit(ProgressEvent(self.stage, self.message, "done", seconds))

    def note(self, message: str) -> None:
        self.emit(ProgressEvent(self.stage, message, "note"))
