"""``manifest.json``: the one contract between export and runtime.

The runtime loads a deployment only through this file: model config, task, recurrence, and for each
precision variant the graphs (file, sha256, I/O names/shapes/dtypes) and optional TensorRT engines.
Graph kinds are open-ended keys (the four step graphs ``embed``, ``l_step``, ``h_step``, ``heads``, and
the optional fused ``segment``): readers ignore kinds they do not know. How the step graphs compose into
a segment is :func:`segment_schedule`, the one definition the exporter's fused graph, its validation and
every backend follow. Which backend and device may run a variant is one table here too
(:func:`run_refusal`, applied by :meth:`Manifest.resolve`). Each variant records its graph ops (``ops``:
``standard`` | ``ort-contrib``); manifests written before the field existed are ``standard``, so the
format version stays 1. Torch-free and numpy-free on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hrm.config import HRMConfig
from hrm.errors import ManifestError
from hrm.halting import DEFAULT_HALT_RULE, HALT_RULES, HALTING_MODES, HaltingPolicy
from hrm.io import sha256_file, write_text_atomic

FORMAT = "hrm-deploy-manifest"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
STEP_GRAPHS = ("embed", "l_step", "h_step", "heads")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: ``int8`` keeps an fp32 state and fp32 I/O: only the weight MatMuls of the stack graphs are quantized
#: (int8 weights, activations quantized per call; :mod:`hrm.export.quantize`), an ONNX Runtime CPU path.
STATE_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "float32"}
#: Variants whose weights are quantized: no PyTorch twin, no TensorRT engines.
QUANTIZED = ("int8",)
#: The variants whose state dtype is their compute dtype (the exporter's default set).
FLOAT_PRECISIONS = tuple(p for p in PRECISIONS if p not in QUANTIZED)
#: Graph ops, recorded per variant as ``ops``: ``standard`` graphs use only opset-17 primitives
#: (TensorRT parses them); ``ort-contrib`` graphs use ONNX Runtime's fused ``com.microsoft`` ops
#: (ONNX Runtime only, no TensorRT engines). A variant without the field is ``standard``.
STANDARD, ORT_CONTRIB = "standard", "ort-contrib"
GRAPH_OPS = (STANDARD, ORT_CONTRIB)
DEFAULT_OPS = STANDARD

#: The devices the runtime targets, and where each runtime backend runs (the PyTorch reference: any torch device).
DEVICES = ("cpu", "cuda")
BACKEND_DEVICES = {"ort": DEVICES, "trt": ("cuda",)}


class RefusedVariant(ManifestError, ValueError):
    """This backend / device may not run this variant (:func:`run_refusal` says why)."""


def run_refusal(precision: str, ops: str, backend: str, device: str) -> str | None:
    """Why ``backend`` on ``device`` may not run a variant of ``precision`` with ``ops`` graphs; None when it may.

    The one table of these rules: the runtime (:meth:`Manifest.resolve`, once per ``Session``), the bench
    planner and the exporter's ``--engine`` (TensorRT builds for ``trt`` on ``cuda``) all ask here."""
    if precision in QUANTIZED and (backend, device) != ("ort", "cpu"):
        return (f"the {precision} variant is ONNX Runtime's dynamic quantization (DynamicQuantizeLinear + "
                "MatMulInteger), an ort-on-CPU path only: built and measured for the CPU execution provider only "
                "(on a GPU fp16/bf16 is the faster path), no TensorRT engines (TensorRT's int8 needs Q/DQ and "
                "calibration), no PyTorch twin (its reference is fp32: hrm-parity DEPLOYMENT --precision "
                f"{precision} compares the two). Use --backend ort --device cpu, or fp16/bf16 elsewhere")
    devices = BACKEND_DEVICES.get(backend)
    if devices is not None and device not in devices:
        runtime = {"ort": "ONNX Runtime", "trt": "TensorRT"}[backend]
        return f"{runtime} runs on {' or '.join(d.upper() for d in devices)} only, not {device!r}"
    if backend == "trt" and ops != STANDARD:
        return (f"TensorRT engines are built from --ops standard graphs only; the {precision} variant has {ops} graphs "
                "(ONNX Runtime's com.microsoft ops; TensorRT-RTX 1.7.1's parser fails on their RotaryEmbedding): "
                "use --backend ort, or export --ops standard for TensorRT")
    return None


# Tensor names shared by the exporter and every backend.
IO_NAMES = {
    "embed": (("tokens", "puzzle_ids"), ("x",)),
    "l_step": (("z_L", "z_H", "x"), ("z_L_new",)),
    "h_step": (("z_H", "z_L"), ("z_H_new",)),
    "heads": (("z_H",), ("logits", "q_halt", "q_continue")),
    "segment": (("z_H", "z_L", "x"), ("z_H_new", "z_L_new", "logits", "q_halt", "q_continue")),
}


def segment_schedule(config: HRMConfig) -> tuple[str, ...]:
    """The step kinds of one segment, in order: N x (T ``l_step`` + ``h_step``), then ``heads``
    (N = ``H_cycles``, T = ``L_cycles``). A schedule of step kinds, not of weights: which network runs a
    step is the step's business (TRM runs this schedule with one shared network)."""
    return (("l_step",) * config.L_cycles + ("h_step",)) * config.H_cycles + ("heads",)


def run_segment(config: HRMConfig, l_step: Callable, h_step: Callable, heads: Callable,
                z_H: Any, z_L: Any, x: Any) -> tuple[Any, ...]:
    """:func:`segment_schedule` over values, with step functions taking their ``IO_NAMES`` inputs in
    order (``l_step(z_L, z_H, x) -> z_L``, ``h_step(z_H, z_L) -> z_H``, ``heads(z_H) -> (logits, q_halt,
    q_continue)``); returns the fused ``segment`` graph's outputs ``(z_H, z_L, logits, q_halt, q_continue)``.
    Values may be ONNX graph names, arrays or tensors: the exporter builds, and the parity runner and the
    benchmark's static torch segment run, the one schedule."""
    for kind in segment_schedule(config):
        if kind == "l_step":
            z_L = l_step(z_L, z_H, x)
        elif kind == "h_step":
            z_H = h_step(z_H, z_L)
        else:
            out = heads(z_H)
    return (z_H, z_L, *out)


@dataclass
class GraphEntry:
    """One ONNX graph of a variant."""

    kind: str
    file: str
    sha256: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    external_data: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "external_data": self.external_data,
                "inputs": self.inputs, "outputs": self.outputs}


@dataclass
class EngineEntry:
    """A TensorRT engine built from one graph, with what it was built for (checked before use)."""

    kind: str
    file: str
    sha256: str
    flavour: str  # "tensorrt" | "tensorrt_rtx"
    trt_version: str
    device: str
    compute_capability: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "flavour": self.flavour, "trt_version": self.trt_version,
                "device": self.device, "compute_capability": self.compute_capability, "options": self.options}


@dataclass
class Variant:
    """All graphs (and engines) of one precision; ``ops`` is the op set every graph of it uses."""

    precision: str
    graphs: dict[str, GraphEntry]
    engines: dict[str, EngineEntry] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    ops: str = DEFAULT_OPS

    @property
    def state_dtype(self) -> str:
        return STATE_DTYPES[self.precision]

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "state_dtype": self.state_dtype, "ops": self.ops,
                "graphs": {k: g.to_dict() for k, g in self.graphs.items()},
                "engines": {k: e.to_dict() for k, e in self.engines.items()},
                "validation": self.validation}


@dataclass
class Manifest:
    """In-memory manifest. ``root`` is the deployment directory the relative file paths are under."""

    config: HRMConfig
    task: dict[str, Any] | None
    variants: dict[str, Variant]
    init: dict[str, dict[str, str]]
    source: dict[str, Any] = field(default_factory=dict)
    exporter: dict[str, Any] = field(default_factory=dict)
    default_halting: str = "act"
    root: Path = Path(".")
    halt_rule: str = DEFAULT_HALT_RULE
    #: ``puzzle_identifiers`` block (``hrm.identifiers``): the names of the puzzle-embedding rows, or None
    identifiers: dict[str, Any] | None = None

    # ---- access ------------------------------------------------------------------------------
    @property
    def recurrence(self) -> dict[str, Any]:
        c = self.config
        return {"H_cycles": c.H_cycles, "L_cycles": c.L_cycles, "halt_max_steps": c.halt_max_steps,
                "default_halting": self.default_halting, "halt_rule": self.halt_rule}

    def halting_policy(self, mode: str | None = None, max_segments: int | None = None) -> HaltingPolicy:
        """How this deployment's rows stop: ``mode`` (default ``default_halting``), the cap (default
        ``halt_max_steps``) and the recorded halt rule, validated once here."""
        return HaltingPolicy(mode or self.default_halting,
                             self.config.halt_max_steps if max_segments is None else int(max_segments), self.halt_rule)

    def resolve(self, precision: str, backend: str, device: str, *, fused: bool = False) -> Variant:
        """The variant ``backend`` on ``device`` will run (with the fused ``segment`` graph when ``fused``),
        or :class:`RefusedVariant` naming this manifest and why not (:func:`run_refusal`)."""
        var = self.variant(precision)
        why = run_refusal(precision, var.ops, backend, device)
        if why is None and fused and "segment" not in var.graphs:
            why = f"variant {precision} has no fused 'segment' graph; re-export with --segment or run without fused"
        if why is not None:
            raise RefusedVariant(f"{self.root / MANIFEST_NAME}: {why}")
        return var

    def variant(self, precision: str) -> Variant:
        if precision not in self.variants:
            raise ManifestError(f"{self.root / MANIFEST_NAME}: no '{precision}' variant; this deployment has "
                                f"{sorted(self.variants)} (re-export with --precision {precision})")
        return self.variants[precision]

    def path(self, relative: str) -> Path:
        return self.root / relative

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                "task": self.task, "recurrence": self.recurrence, "source": self.source,
                "exporter": self.exporter, "init": self.init,
                **({"puzzle_identifiers": self.identifiers} if self.identifiers else {}),
                "variants": {k: v.to_dict() for k, v in self.variants.items()}}

    def save(self, root: str | Path | None = None) -> Path:
        """Write ``manifest.json`` atomically (the last file an export writes: its presence means done)."""
        root = Path(root) if root is not None else self.root
        path = root / MANIFEST_NAME
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def verify_files(self, precision: str | None = None, engines: bool = False) -> None:
        """Re-hash the files the runtime will read; a changed byte raises ManifestError naming the file."""
        files: list[tuple[str, str]] = [(e["file"], e["sha256"]) for e in self.init.values()]
        if self.identifiers:
            files += [(e["file"], e["sha256"]) for e in (self.identifiers, self.identifiers.get("rows")) if e]
        for name, var in self.variants.items():
            if precision is not None and name != precision:
                continue
            for g in var.graphs.values():
                files.append((g.file, g.sha256))
                if g.external_data:
                    files.append((g.external_data["file"], g.external_data["sha256"]))
            if engines:
                files.extend((e.file, e.sha256) for e in var.engines.values())
        for rel, want in files:
            path = self.path(rel)
            if not path.is_file():
                raise ManifestError(f"{path}: listed in {self.root / MANIFEST_NAME} but missing")
            got = sha256_file(path)
            if got != want:
                raise ManifestError(f"{path}: sha256 {got[:16]}... does not match the manifest's {want[:16]}... "
                                    "(file changed after export; re-export)")


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ManifestError(f"{where}: required key '{key}' is missing")
    return d[key]


def load_manifest(root: str | Path, verify: bool = True, precision: str | None = None) -> Manifest:
    """Read ``DIR/manifest.json``; with ``verify`` re-hash the files of ``precision`` (all if None)."""
    root = Path(root)
    path = root / MANIFEST_NAME if root.is_dir() else root
    root = path.parent
    if not path.is_file():
        raise ManifestError(f"{path}: not found; is {root} a deployment directory written by hrm-export?")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    where = str(path)
    if raw.get("format") != FORMAT:
        raise ManifestError(f"{where}: 'format' is {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{where}: format_version {raw.get('format_version')!r} is not supported "
                            f"(this hrm-deploy reads {FORMAT_VERSION})")
    from hrm.errors import ConfigError
    try:
        config = HRMConfig.from_dict(_require(raw, "config", where), source=f"{where} [config]")
    except ConfigError as exc:
        raise ManifestError(str(exc)) from None
    variants: dict[str, Variant] = {}
    for vname, v in _require(raw, "variants", where).items():
        vwhere = f"{where} [variants.{vname}]"
        if vname not in PRECISIONS:
            raise ManifestError(f"{vwhere}: unknown precision; expected one of {PRECISIONS}")
        graphs = {}
        for kind, g in _require(v, "graphs", vwhere).items():
            gwhere = f"{vwhere}.graphs.{kind}"
            graphs[kind] = GraphEntry(kind, _require(g, "file", gwhere), _require(g, "sha256", gwhere),
                                      _require(g, "inputs", gwhere), _require(g, "outputs", gwhere),
                                      g.get("external_data"))
        missing = [k for k in STEP_GRAPHS if k not in graphs]
        if missing:
            raise ManifestError(f"{vwhere}: graphs {missing} are missing (need {list(STEP_GRAPHS)})")
        engines = {}
        for kind, e in (v.get("engines") or {}).items():
            ewhere = f"{vwhere}.engines.{kind}"
            engines[kind] = EngineEntry(kind, _require(e, "file", ewhere), _require(e, "sha256", ewhere),
                                        _require(e, "flavour", ewhere), str(_require(e, "trt_version", ewhere)),
                                        str(e.get("device", "")), str(_require(e, "compute_capability", ewhere)),
                                        dict(e.get("options") or {}))
        ops = _known(v.get("ops", DEFAULT_OPS), GRAPH_OPS, "ops", vwhere)
        if ops != STANDARD and engines:
            raise ManifestError(f"{vwhere}: lists TensorRT engines for {ops} graphs; engines are built from "
                                "standard graphs only (re-export)")
        variants[vname] = Variant(vname, graphs, engines, v.get("validation"), ops)
    if not variants:
        raise ManifestError(f"{where}: no variants")
    rec = raw.get("recurrence") or {}
    if rec.get("default_halting", "act") not in HALTING_MODES:
        raise ManifestError(f"{where} [recurrence]: 'default_halting' is {rec['default_halting']!r}; expected one of "
                            f"{list(HALTING_MODES)}")
    manifest = Manifest(config=config, task=raw.get("task"), variants=variants, init=_require(raw, "init", where),
                        source=raw.get("source") or {}, exporter=raw.get("exporter") or {},
                        default_halting=rec.get("default_halting", "act"), root=root,
                        halt_rule=_known(rec.get("halt_rule", DEFAULT_HALT_RULE), HALT_RULES, "halt_rule",
                                         f"{where} [recurrence]"),
                        identifiers=_identifiers(raw, where))
    for key in ("H_init", "L_init"):
        _require(manifest.init, key, f"{where} [init]")
    if verify:
        manifest.verify_files(precision)
    return manifest


def _identifiers(raw: dict[str, Any], where: str) -> dict[str, Any] | None:
    """``puzzle_identifiers`` (optional): the file naming each puzzle-embedding row, and for a pruned
    table the file mapping each row to the source checkpoint's row (see ``hrm.identifiers``)."""
    entry = raw.get("puzzle_identifiers")
    if entry is None:
        return None
    bwhere = f"{where} [puzzle_identifiers]"
    _require(entry, "file", bwhere)
    _require(entry, "sha256", bwhere)
    rows = entry.get("rows")
    if rows is not None:
        _require(rows, "file", f"{bwhere}.rows")
        _require(rows, "sha256", f"{bwhere}.rows")
    return entry


def _known(value: str, known: tuple[str, ...], key: str, where: str) -> str:
    """A value from a closed list (a key absent from older manifests is read with its old default)."""
    if value not in known:
        raise ManifestError(f"{where}: '{key}' is {value!r}; this hrm-deploy knows {list(known)} "
                            "(exported by a newer hrm-deploy? upgrade, or re-export)")
    return value
