#!/usr/bin/env bash
# Exercise the runtime's CUDA paths on a GPU machine, one command:
#   bash tests/runtime/gpu_check.sh [OUT_DIR]
# Needs: the project importable (pip install -e . --no-deps), polygraphy, onnxruntime-gpu (CUDA EP);
# tensorrt is optional (TRT tests skip without it). Writes JSON results under OUT_DIR (default $OUT or /tmp/hrm-gpu).
set -uo pipefail
out="${1:-${OUT:-/tmp/hrm-gpu}}"; mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
$py -c "import onnxruntime as o, sys; print('onnxruntime', o.__version__, o.get_available_providers())"
$py -c "from hrm.runtime.gpu import device_count, Cudart; print('cuda devices', device_count(), 'cc', Cudart.get().compute_capability())"
# 1. GPU tests: runtime.gpu primitives, ORT CUDA (+ CUDA graphs, scheduler, fp16 gates), TensorRT if importable
$py -m pytest tests/runtime/test_gpu.py tests/runtime/test_trt.py -v -rs 2>&1 | tee "$out/gpu_tests.log"
# 2. full-size random model (27M params, Sudoku shape), parity fp32 + fp16 on ORT CUDA, both halting modes
dep=$($py -c "import sys; from hrm.bench import random_deployment as r; print(r('sudoku', ['fp32', 'fp16'], sys.argv[1]))" "$out/full")
ref_dev=$($py -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" 2>/dev/null || echo cpu)
$py -m hrm.cli.parity "$dep" --backend ort --device cuda --precision fp32,fp16 --n 128 --batch 64 \
    --reference-device "$ref_dev" --json > "$out/parity_ort_cuda.json"; echo "hrm-parity exit $?"
$py -m hrm.cli.parity "$dep" --backend ort --device cuda --precision fp32,fp16 --n 128 --batch 64 --reference-device "$ref_dev" 2>&1 | tail -20
# 3. first latency figures per segment, batch 1 and 64: every ORT configuration (step graphs, fused, CUDA graph) and eager torch
$py -m hrm.cli.bench "$dep" --device cuda --backends ort,torch --precision fp32,fp16 --batch 1 --batch 64 \
    --segments-only --json "$out/bench_segments.json"
$py - "$out/bench_segments.json" <<'PY'
import json, sys
doc = json.loads(open(sys.argv[1]).read())
for name, e in doc["targets"].items():
    if e.get("segment"):
        print(name, {b: s.get("p50") for b, s in e["segment"].items()}, "ms/segment (p50)")
PY
