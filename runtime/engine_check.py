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
  ``options.hardware_compatibility`` is ``ampere_plus`` (any CC >= 8.0). TensorRT-RTX engines built for
  its default targets run on 8.6 / 8.9 / 12.0 only (no Orin, Thor, Hopper or datacenter Blackwell).
  A record whose capability is not readable ("unknown": built where the GPU could not be read; an
  RTX "current" target recorded before the real capability was) proves nothing, so it is refused with
  the rebuild command rather than let through: a wrong guess fails late inside TensorRT, or runs slowly.

The local facts come from :mod:`hrm.runtime.gpu` (``cudaDeviceGetAttribute`` through the process's own
CUDA runtime), the same source the exporter records at build time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from hrm.errors import EngineMismatchError
from hrm.runtime.trt_lib import FLAVOURS, import_tensorrt, parse_version

#: What older manifests wrote for TensorRT-RTX engines built without explicit targets.
LEGACY_RTX_DEFAULT = "TensorRT-RTX default targets"


@dataclass(frozen=True)
class LocalTensorRT:
    """What this machine offers: TensorRT module flavour, its version, the GPU's compute capability."""

    flavour: str
    version: str
    compute_capability: str
    device: str = ""


def _cc(v: str) -> tuple[int, int] | None:
    s = str(v).strip().lower().removeprefix("sm_").removeprefix("sm")
    m = re.fullmatch(r"(\d+)\.(\d+)", s) or re.fullmatch(r"(\d+?)(\d)", s)
    return (int(m.group(1)), int(m.group(2))) if m else None


def engine_incompatibility(entry: Any, local: LocalTensorRT) -> str | None:
    """Why engine ``entry`` (a manifest EngineEntry) cannot run here, or None if it can."""
    opts = dict(getattr(entry, "options", None) or {})
    if entry.flavour != local.flavour:
        return f"built with {entry.flavour}, this machine runs {local.flavour}"
    built, here = parse_version(entry.trt_version), parse_version(local.version)
    if opts.get("version_compatible"):
        if built[0] != here[0] or here < built:
            return (f"built with {entry.flavour} {entry.trt_version} (version-compatible), needs the same major "
                    f"version at or above it; this machine has {local.version}")
    elif built != here:
        return f"built with {entry.flavour} {entry.trt_version}, this machine has {local.version}"
    have = _cc(local.compute_capability)
    if have is None:
        return f"this GPU's compute capability {local.compute_capability!r} is not readable"
    listed = [c.strip() for c in str(entry.compute_capability).split(",")] + \
        [str(c) for c in opts.get("compute_capabilities") or []]
    if entry.flavour in FLAVOURS and LEGACY_RTX_DEFAULT in listed:
        listed += list(FLAVOURS[entry.flavour].default_targets)
    known = {c for c in (_cc(x) for x in listed) if c is not None}
    gpu = f" ({local.device})" if local.device else ""
    hw = str(opts.get("hardware_compatibility", "")).lower()
    if hw in ("ampere_plus", "ampere+"):
        return None if have[0] >= 8 else (f"built hardware-compatible for Ampere and later (compute capability "
                                          f">= 8.0), this GPU is {local.compute_capability}{gpu}")
    if not known:
        return (f"its recorded compute capability {entry.compute_capability!r} is not readable, so nothing shows it "
                f"was built for this GPU ({local.compute_capability}{gpu})")
    if have not in known:
        built_on = f" ({entry.device})" if getattr(entry, "device", "") else ""
        rtx = (" (TensorRT-RTX targets: no Hopper, Orin, Thor or datacenter Blackwell code)"
               if entry.flavour == "tensorrt_rtx" else "")
        return (f"built for compute capability {entry.compute_capability}{built_on}{rtx}, this GPU is "
                f"{local.compute_capability}{gpu}")
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


def detect_local(flavour: str) -> LocalTensorRT:
    """This machine's TensorRT ``flavour`` version (version-gated) and current GPU (needs a GPU)."""
    from hrm.runtime.gpu import probe

    trt = import_tensorrt(flavour, error=EngineMismatchError)
    gpu = probe()
    if not gpu.available:
        raise EngineMismatchError(f"TensorRT engines need a CUDA GPU; {gpu.reason}")
    return LocalTensorRT(flavour, trt.version, gpu.compute_capability or "unknown", gpu.name or "")
