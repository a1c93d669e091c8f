"""Refuse a TensorRT engine built for another TensorRT or another GPU, before deserialising it.

A serialized engine is only valid for the TensorRT build (and, by default, the GPU compute
capability) it was made with; loading a foreign one fails late with an opaque error or, worse,
runs slowly on a fallback. The manifest records, per engine, ``flavour`` (``tensorrt`` |
``tensorrt_rtx``), ``trt_version`` and ``compute_capability``. :func:`engine_incompatibility` is a
pure function of that record and the local :class:`LocalTensorRT`, so the rule is tested without
TensorRT or a GPU; :func:`check_engines` turns its verdicts into one
:class:`hrm.errors.EngineMismatchError` with every reason and the command that rebuilds them here.

Rules:

* flavour must match (a TensorRT engine cannot be read by TensorRT-RTX and vice versa);
* version: major.minor.patch must be equal; an engine built with ``options.version_compatible``
  (TensorRT's version-compatible flag) runs on the same major version at or above the one it was
  built with;
* compute capability: the local one must be among those recorded (``compute_capability``, which
  may be a comma-separated list of TensorRT-RTX targets, plus ``options.compute_capabilities``), unless
  ``options.hardware_compatibility`` is ``ampere_plus`` (any CC >= 8.0). A record with no readable
  capability ("unknown", RTX "current" / default targets) proves no mismatch and is let through —
  except TensorRT-RTX default targets on a 9.x (Hopper) GPU, which they do not cover; TensorRT's own
  refusal at deserialisation is reported with the same rebuild hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from hrm.errors import EngineMismatchError

FLAVOURS = ("tensorrt", "tensorrt_rtx")


@dataclass(frozen=True)
class LocalTensorRT:
    """What this machine offers: TensorRT module flavour, its version, the GPU's compute capability."""

    flavour: str
    version: str
    compute_capability: str
    device: str = ""


def _version(v: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", str(v))
    return tuple(int(p) for p in parts[:3]) + (0,) * (3 - min(3, len(parts)))


def _cc(v: str) -> tuple[int, int] | None:
    s = str(v).strip().lower().removeprefix("sm_").removeprefix("sm")
    m = re.fullmatch(r"(\d+)\.(\d+)", s) or re.fullmatch(r"(\d+?)(\d)", s)
    return (int(m.group(1)), int(m.group(2))) if m else None


def engine_incompatibility(entry: Any, local: LocalTensorRT) -> str | None:
    """Why engine ``entry`` (a manifest EngineEntry) cannot run here, or None if it can."""
    opts = dict(getattr(entry, "options", None) or {})
    if entry.flavour != local.flavour:
        return f"built with {entry.flavour}, this machine runs {local.flavour}"
    built, here = _version(entry.trt_version), _version(local.version)
    if opts.get("version_compatible"):
        if built[0] != here[0] or here < built:
            return (f"built with {entry.flavour} {entry.trt_version} (version-compatible), needs the same major "
                    f"version at or above it; this machine has {local.version}")
    elif built != here:
        return f"built with {entry.flavour} {entry.trt_version}, this machine has {local.version}"
    have = _cc(local.compute_capability)
    if have is None:
        return f"this GPU's compute capability {local.compute_capability!r} is not readable"
    listed = [str(c) for c in str(entry.compute_capability).split(",")] + [str(c) for c in opts.get("compute_capabilities") or []]
    known = {c for c in (_cc(x) for x in listed) if c is not None}
    gpu = f" ({local.device})" if local.device else ""
    if known:
        hw = str(opts.get("hardware_compatibility", "")).lower()
        if have not in known and not (hw in ("ampere_plus", "ampere+") and have[0] >= 8):
            built_on = f" ({entry.device})" if getattr(entry, "device", "") else ""
            return (f"built for compute capability {entry.compute_capability}{built_on}, this GPU is "
                    f"{local.compute_capability}{gpu}")
    elif entry.flavour == "tensorrt_rtx" and have[0] == 9:
        # TensorRT-RTX's default targets are consumer GPUs; it has no SM90 (Hopper) code.
        return f"TensorRT-RTX engines do not target compute capability {local.compute_capability}{gpu}; build tensorrt engines"
    # No readable capability recorded ("unknown", RTX "current"/default targets): nothing proves a
    # mismatch; TensorRT itself refuses a foreign engine at load, and the backend reports that too.
    return None


def rebuild_command(root: str | Path, precision: str, source: str | None = None) -> str:
    """The ``hrm-export`` command that rebuilds a deployment, engines included, on this machine.

    ``precision`` may list several variants ("fp32,fp16"): ``--force`` replaces the whole directory, so
    the command names every variant the deployment has. ``source``: the checkpoint it came from.
    """
    return (f"hrm-export --checkpoint {source or 'CHECKPOINT'} --out {root} --precision {precision} "
            f"--engine --force")


def check_engines(entries: Iterable[Any], local: LocalTensorRT, root: str | Path, precision: str,
                  source: str | None = None, variants: str | None = None) -> None:
    """Raise EngineMismatchError naming every incompatible engine, why, and how to rebuild."""
    problems = []
    for e in entries:
        why = engine_incompatibility(e, local)
        if why:
            problems.append(f"{e.file}: {why}")
    if problems:
        raise EngineMismatchError(f"{root}: TensorRT engines of variant {precision} cannot run here: "
                                  + "; ".join(problems) + f". Rebuild them on this machine with: "
                                  f"{rebuild_command(root, variants or precision, source)}")


def import_trt(flavour: str) -> Any:
    """Import the TensorRT module of ``flavour`` with a clear error if it is missing."""
    if flavour not in FLAVOURS:
        raise EngineMismatchError(f"unknown TensorRT flavour {flavour!r}; expected one of {FLAVOURS}")
    try:
        if flavour == "tensorrt":
            import tensorrt as trt
        else:
            import tensorrt_rtx as trt
    except ImportError as exc:
        raise EngineMismatchError(f"the engines were built with {flavour}, which is not importable here ({exc}); "
                                  f"install it or use --backend ort") from None
    return trt


def detect_local(flavour: str) -> LocalTensorRT:
    """This machine's TensorRT ``flavour`` version and current GPU's compute capability (needs a GPU)."""
    trt = import_trt(flavour)
    from hrm.runtime.gpu import Cudart

    return LocalTensorRT(flavour, str(trt.__version__), Cudart.get().compute_capability())
