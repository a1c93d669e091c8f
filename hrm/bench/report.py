"""The human side of a benchmark document: rich tables, ratios against the PyTorch references side by side.

Ratios are printed as ``0.40x``: for latencies target time / reference time (below 1 = faster than the
reference), for throughput target puzzles/s / reference puzzles/s (above 1 = faster). The references
are the PyTorch backends on the same device: eager fp32 (the yardstick), eager at the same precision,
and ``torch.compile`` (+ CUDA graph on CUDA) at the same precision.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hrm.bench.stats import dig as _get


def _fmt_ms(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v)
    return f"{v:.3g}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def _fmt_ratio(v: Any) -> str:
    return "-" if v is None else f"{float(v):.2f}x"


def _fmt_si(v: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"




def summary_lines(doc: dict, reference: str = "torch-eager-fp32") -> list[str]:
    """Plain-text ratio lines, e.g. ``ort-cpu/fp32 / torch-eager-cpu/fp32: segment B=1 0.40x``; ``reference``
    is a key of the targets' ``ratios`` (``ort-standard``: contrib graphs vs the standard ones)."""
    lines = []
    batches = doc["settings"]["batches"]
    for name, e in doc["targets"].items():
        r = _get(e, "ratios", reference)
        if not r:
            continue
        parts = [f"segment B={b} {_fmt_ratio(r.get(f'segment_b{b}'))}" for b in batches if f"segment_b{b}" in r]
        parts += [f"solve {h} {_fmt_ratio(r.get(f'solve_{h}'))}" for h in doc["settings"]["halting"]
                  if f"solve_{h}" in r]
        lines.append(f"{name} / {r['reference']}: " + ", ".join(parts))
    return lines


def render(doc: dict, console: Console | None = None) -> None:
    """Print the floor, the latency table, the throughput table and the skipped list."""
    console = console or Console()
    s = doc["settings"]
    dep = doc["deployment"]
    env = doc["environment"]
    head = (f"[bold]hrm-bench[/] {dep['path']} ({dep['obtained']}): {dep['parameters'] / 1e6:.1f}M parameters, "
            f"seq {dep['seq_len']}(+{dep['total_seq_len'] - dep['seq_len']}), task {dep['task'] or '-'}; "
            f"halt cap {s['max_segments']} segments; threads {s['threads']}; puzzles: {s['puzzles']['source']}")
    console.print(head)
    devs = ", ".join(f"{d}: {n}" for d, n in (env.get("device_names") or {}).items())
    console.print(f"[dim]{devs} | {env['platform']} | "
                  + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + "[/]")
    console.print(_floor_table(doc))
    console.print(_segment_table(doc))
    if not s.get("segments_only"):
        console.print(_solve_table(doc))
        console.print(_throughput_table(doc))
    skipped: dict[tuple[str, str], list[str]] = {}
    for n, e in doc["targets"].items():
        if e.get("status") in ("skipped", "failed"):
            skipped.setdefault((e["status"], e.get("reason") or ""), []).append(n)
    if skipped:
        t = Table(title="not measured", title_justify="left", show_edge=False)
        t.add_column("configurations", overflow="fold")
        t.add_column("status")
        t.add_column("reason", overflow="fold")
        for (status, reason), names in skipped.items():
            t.add_row(_group_names(names), status, reason)
        console.print(t)
    lines = summary_lines(doc)
    if lines:
        console.print("[bold]vs the PyTorch eager fp32 reference[/] (time ratios; lower is faster)")
        for line in lines:
            console.print("  " + line, highlight=False)
    lines = summary_lines(doc, "ort-standard")
    if lines:
        console.print("[bold]ort-contrib graphs vs the standard graphs[/] (same configuration; lower is faster)")
        for line in lines:
            console.print("  " + line, highlight=False)
    if not doc.get("complete", True):
        console.print("[yellow]incomplete: the time limit was reached; missing entries are marked in the JSON[/]")


def _group_names(names: list[str]) -> str:
    """``ort-cuda/fp32, ort-cuda/fp16`` -> ``ort-cuda/{fp32,fp16}``."""
    by: dict[str, list[str]] = {}
    for n in names:
        label, _, prec = n.partition("/")
        by.setdefault(label, []).append(prec)
    return ", ".join(f"{k}/{v[0]}" if len(v) == 1 else f"{k}/{{{','.join(v)}}}" for k, v in by.items())


def _floor_table(doc: dict) -> Table:
    t = Table(title="floor: one segment's counted work vs this device's measured peaks", title_justify="left",
              show_edge=False)
    for col in ("device", "prec", "peak matmul", "peak copy", "batch", "FLOPs", "weight traffic", "floor",
                "bound"):
        t.add_column(col, justify="right" if col not in ("device", "prec", "bound") else "left")
    for device, entry in (doc.get("floor") or {}).items():
        if "skipped" in entry:
            t.add_row(device, "-", "-", "-", "-", "-", "-", "-", f"skipped: {entry['skipped']}")
            continue
        for prec, peaks in entry.get("peaks", {}).items():
            peaks = (entry.get("peaks_used") or {}).get(prec, peaks)
            if "error" in peaks:
                t.add_row(device, prec, "error", "", "", "", "", "", peaks["error"])
                continue
            for b, f in (entry.get("segment", {}).get(prec) or {}).items():
                t.add_row(device, prec, _fmt_si(peaks["matmul_tflops"] * 1e12, "FLOP/s")
                          + ("" if peaks["matmul_dtype"] == prec else f" ({peaks['matmul_dtype']})"),
                          _fmt_si(peaks["copy_gbps"] * 1e9, "B/s"), b, _fmt_si(f["flops"], "FLOP"),
                          _fmt_si(f["weight_bytes"], "B"), f"{f['floor_s'] * 1e3:.3g} ms", f["bound"])
    return t


def _segment_table(doc: dict) -> Table:
    s = doc["settings"]
    batches = s["batches"]
    b0 = batches[0]
    t = Table(title="per segment, ms p50 (x = time / torch-eager fp32 time at that batch; lower is faster)",
              title_justify="left", show_edge=False)
    t.add_column("configuration", no_wrap=True)
    for b in batches:
        t.add_column(f"B={b}", justify="right", no_wrap=True)
    t.add_column(f"vs eager same prec (B={b0})", justify="right")
    t.add_column(f"vs compile (B={b0})", justify="right")
    t.add_column(f"floor/time (B={b0})", justify="right")
    for name, e in doc["targets"].items():
        if e.get("status") != "ok":
            continue
        row = [Text(name, style="bold" if name.startswith("torch-eager") else "")]
        for b in batches:
            v = _get(e, "segment", str(b), "p50")
            r = _get(e, "ratios", "torch-eager-fp32", f"segment_b{b}")
            row.append(_fmt_ms(v) + ("" if r is None else f" ({_fmt_ratio(r)})"))
        row.append(_fmt_ratio(_get(e, "ratios", "torch-eager", f"segment_b{b0}")))
        row.append(_fmt_ratio(_get(e, "ratios", "torch-compile", f"segment_b{b0}")))
        ff = _get(e, "floor_fraction", f"b{b0}")
        row.append("-" if ff is None else f"{ff:.0%}")
        t.add_row(*row)
    return t


def _solve_table(doc: dict) -> Table:
    haltings = doc["settings"]["halting"]
    t = Table(title="solve at batch 1, ms p50/p90/p99 (x = p50 / torch-eager fp32 p50); agree = token agreement "
                    "with eager after segment 1 / first segment where they differ (random weights are "
                    "chaotic: late divergence is expected, early divergence is a bug; int8 is quantized, so it "
                    "may differ from segment 1)",
              title_justify="left", show_edge=False)
    t.add_column("configuration", no_wrap=True)
    for h in haltings:
        t.add_column(h, justify="right", no_wrap=True)
        if h == "act":
            t.add_column("act seg", justify="right")
    t.add_column("agree", justify="right", no_wrap=True)
    for name, e in doc["targets"].items():
        if e.get("status") != "ok" or not e.get("solve"):
            continue
        row = [Text(name, style="bold" if name.startswith("torch-eager") else "")]
        for h in haltings:
            sv = _get(e, "solve", h)
            r = _get(e, "ratios", "torch-eager-fp32", f"solve_{h}")
            row.append("-" if not sv or "p50" not in sv else
                       f"{_fmt_ms(sv['p50'])}/{_fmt_ms(sv['p90'])}/{_fmt_ms(sv['p99'])}"
                       + ("" if r is None else f" ({_fmt_ratio(r)})"))
            if h == "act":
                row.append("-" if not sv or "mean_segments" not in sv else f"{sv['mean_segments']:.2f}")
        ag = _get(e, "agreement", "torch-eager") or _get(e, "agreement", "torch-eager-fp32")
        tr = _get(ag, "trace")
        row.append(f"{tr['token_agreement_per_segment'][0]:.0%} / {tr['diverges_at'] or 'never'}"
                   if tr and tr["token_agreement_per_segment"] else "-")
        t.add_row(*row)
    return t


def _throughput_table(doc: dict) -> Table:
    s = doc["settings"]
    batches, haltings = s["batches"], s["halting"]
    t = Table(title="throughput, puzzles/s through the continuous-batching Scheduler with B slots "
                    "(x = puzzles/s / torch-eager fp32 puzzles/s; higher is faster)",
              title_justify="left", show_edge=False)
    t.add_column("configuration", no_wrap=True)
    for b in batches:
        for h in haltings:
            t.add_column(f"B={b} {h}", justify="right", no_wrap=True)
    for name, e in doc["targets"].items():
        if e.get("status") != "ok" or not e.get("throughput"):
            continue
        row = [name]
        for b in batches:
            for h in haltings:
                v = _get(e, "throughput", str(b), h, "puzzles_per_s_median")
                r = _get(e, "ratios", "torch-eager-fp32", f"throughput_b{b}_{h}")
                row.append("-" if v is None else f"{v:.3g}" + ("" if r is None else f" ({_fmt_ratio(r)})"))
        t.add_row(*row)
    return t
