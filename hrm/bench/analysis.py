"""Cross-target results of a benchmark document: agreement with the references and time ratios.

Run after the phases, on the document alone (no sessions): which reference a target is compared with
(:func:`reference_names`), how its answers agree with the eager references' (:func:`agreement`, by the
one comparator of :mod:`hrm.evaluation.compare`), and its time / throughput ratios (:func:`ratios`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Sequence

from hrm.bench.stats import dig as _get
from hrm.bench.stats import ratio
from hrm.evaluation.compare import agreement as compare
from hrm.evaluation.compare import trace_agreement


def reference_names(name: str, precision: str, device: str) -> dict[str, str]:
    """The references a target is compared with: eager fp32, eager same precision, compiled same precision;
    an ``ort-*-contrib*`` target also with the same configuration on the standard graphs (``ort-standard``)."""
    compiled = f"torch-compile-{device}" + ("-graph" if device == "cuda" else "")
    refs = {"torch-eager-fp32": f"torch-eager-{device}/fp32",
            "torch-eager": f"torch-eager-{device}/{precision}",
            "torch-compile": f"{compiled}/{precision}"}
    if name.startswith("ort-") and "-contrib" in name:
        refs["ort-standard"] = name.replace("-contrib", "", 1)
    if precision == "fp32":
        del refs["torch-eager"]  # the same target as torch-eager-fp32
    return {k: v for k, v in refs.items() if v != name}


def agreement(doc: dict, traces: dict[str, list[Any]] | None = None) -> None:
    """Answers vs the eager references (same-precision eager, and fp32 eager), on the same puzzles, by the
    one comparator (:mod:`hrm.evaluation.compare`, the metric names ``hrm-parity`` uses too):

    * per halting mode: ``answer_agreement``, ``token_agreement``, ``halting_agreement`` over ``n`` puzzles;
    * ``trace`` (fixed halting): token agreement after each segment, the first segment where it drops
      below 99% (``diverges_at``; None = never) and |q_halt - reference| after segment 1.

    A broken target (stale state, a wrong graph) differs from segment 1 on. A correct one matches the
    first segments and may drift later: a random-weight HRM's recurrence is chaotic (fp32 rounding
    differences grow ~3x per segment, so different-but-correct kernels part ways after ~10-13 of 16
    segments; trained models converge instead)."""
    traces = traces or {}
    targets = doc["targets"]
    for name, e in targets.items():
        solve = e.get("solve") or {}
        if not solve and name not in traces:
            continue
        out: dict[str, Any] = {}
        eager = {k: v for k, v in reference_names(name, e["precision"], e["device"]).items()
                 if k.startswith("torch-eager")}
        for key, ref_name in eager.items():
            if ref_name not in targets:
                continue
            ref = targets[ref_name].get("solve") or {}
            row: dict[str, Any] = {"reference": ref_name}
            for halting, s in solve.items():
                r = ref.get(halting)
                if not r or "answers" not in s or "answers" not in r:
                    continue
                agree = compare(s["answers"], s["segments"], r["answers"], r["segments"])
                if agree.n:
                    row[halting] = {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(agree).items()}
            if name in traces and ref_name in traces:
                row["trace"] = trace_agreement(traces[name], traces[ref_name])
            if len(row) > 1:
                out[key] = row
        if out:
            e["agreement"] = out


def ratios(doc: dict, batches: Sequence[int], haltings: Sequence[str]) -> None:
    """Per target and reference: time ratios (target / reference; < 1 = faster) for segment p50 per batch
    and solve p50 per halting, and throughput ratios (target / reference; > 1 = faster)."""
    targets = doc["targets"]
    for name, e in targets.items():
        if e.get("status") not in ("ok", "running"):
            continue
        out: dict[str, Any] = {}
        for key, ref_name in reference_names(name, e["precision"], e["device"]).items():
            ref = targets.get(ref_name)
            if not ref or ref.get("status") != "ok":
                continue
            row: dict[str, Any] = {"reference": ref_name}
            for B in batches:
                v = _get(e, "segment", str(B), "p50")
                r = _get(ref, "segment", str(B), "p50")
                if ratio(v, r) is not None:
                    row[f"segment_b{B}"] = ratio(v, r)
            for h in haltings:
                if ratio(_get(e, "solve", h, "p50"), _get(ref, "solve", h, "p50")) is not None:
                    row[f"solve_{h}"] = ratio(_get(e, "solve", h, "p50"), _get(ref, "solve", h, "p50"))
                for B in batches:
                    v = _get(e, "throughput", str(B), h, "puzzles_per_s_median")
                    r = _get(ref, "throughput", str(B), h, "puzzles_per_s_median")
                    if ratio(v, r) is not None:
                        row[f"throughput_b{B}_{h}"] = ratio(v, r)
            if len(row) > 1:
                out[key] = row
        if out:
            e["ratios"] = out
        floor = _get(doc, "floor", e["device"], "segment", e["precision"])
        if floor:
            eff = {}
            for B in batches:
                seg, fl = _get(e, "segment", str(B), "p50"), _get(floor, str(B), "floor_s")
                if seg and fl:
                    eff[f"b{B}"] = round(fl * 1e3 / seg, 4)
            if eff:
                e["floor_fraction"] = eff  # floor time / measured segment time (1.0 = at the floor)


def has_time_skips(doc: dict) -> bool:
    return "time limit" in json.dumps(doc["targets"])
