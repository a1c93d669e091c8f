#!/usr/bin/env bash
# One GPU lease, one command: install check, hrm-doctor, the benchmark, then training with the time left.
#
#   OUT=/path/to/results bash deploy/gpu/lease.sh
#
# Made for the GPU we can borrow (an H200: no package registry, 600 s per command, ~15 min of GPU time in
# all, start-up included): the whole run stays under LEASE_BUDGET seconds of wall time (default 480), every
# step runs under `timeout` with what is left, and every result is written under $OUT as it is produced
# (the benchmark JSON is rewritten after each phase, training checkpoints land there directly), so a lease
# cut short still brings back what it measured. Files are named after the GPU that produced them
# (e.g. bench-sudoku-nvidia-h200.json).
#
# Before it, stage onnxruntime-gpu + polygraphy with ../shared/tools/gpu-stage (parts unpack to /tmp/site;
# this script puts /tmp/site on PYTHONPATH when it is there). Steps:
#   1. install  pip install -e . (no deps; pip-install.log), then check: hrm imports, the GPU is readable through the CUDA
#               runtime, and onnxruntime has the CUDAExecutionProvider. A missing CUDA EP stops the lease
#               with exit 3 (hrm-bench would otherwise skip every ORT target and exit 0).
#   2. doctor   hrm-doctor --json              -> doctor-GPU.json
#   3. bench    hrm-bench, fp16, ORT standard and ort-contrib graphs, step graphs and the fused segment
#               graph, each with and without CUDA graphs, against torch.compile + CUDA graph:
#               seq 82 (Sudoku shape) at batch 1 and 256, seq 901 (maze/ARC shape) at batch 1
#                                              -> bench-sudoku-GPU.json, bench-maze-GPU.json
#   4. train    the rest of the budget: hrm-train --preset sudoku9 continuing from LEASE_INIT (the last
#               lease's checkpoint) on LEASE_DATA    -> train-sudoku9-GPU/{last,best}.safetensors, metrics
# Each step's output goes to STEP-GPU.log, and one JSON line per finished step (rc, seconds, limit) to
# lease-GPU.steps.jsonl. Exit status: 0 when every step that ran exited 0, else the first failure's.
#
# Settings (environment): LEASE_BUDGET (480), LEASE_DEVICE (cuda | cpu), LEASE_INIT (checkpoint; default
# .gpudata/sudoku9.last.safetensors when present, else training starts fresh), LEASE_DATA (a dataset folder
# with sudoku9/ or a .tgz of it; default .gpudata/data.tgz, else generated), LEASE_NO_INSTALL=1,
# LEASE_BENCH ("sudoku:1,256 maze:1"; SHAPE:BATCHES, shape tiny = the tests' 4x4 model),
# LEASE_BACKENDS (ort,torch-compile), LEASE_DOCTOR_ARGS, LEASE_TRAIN_EXTRA (hrm-train options, last: they
# win), step caps LEASE_DOCTOR_S (75), LEASE_BENCH_S (per run: 170 then 100), LEASE_TRAIN_MIN_S (60).
# LEASE_STEPS ("install doctor bench train": a subset re-runs part of a lease; install always runs).
# CPU dry run (tests/train/test_lease_script.py): LEASE_DEVICE=cpu LEASE_BENCH=tiny:1 LEASE_NO_INSTALL=1.
set -uo pipefail
: "${OUT:?set OUT to the folder that receives the results}"
mkdir -p "$OUT"
t_start=$(date +%s)
budget=${LEASE_BUDGET:-480}
deadline=$(( t_start + budget - 15 ))  # 15 s for timeout's kill grace and the summary
device=${LEASE_DEVICE:-cuda}
py=${PYTHON:-python3}
run_steps=" ${LEASE_STEPS:-install doctor bench train} "
export device py PYTHONUNBUFFERED=1
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
status=0

# the project first (hrm.runtime is only importable installed), then the GPU's name for the file names
if [ -z "${LEASE_NO_INSTALL:-}" ]; then
  if ! timeout 120 $py -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/pip-install.log" 2>&1; then
    echo "[lease] INSTALL FAILED: pip install -e . (see $OUT/pip-install.log)" >&2; tail -n 5 "$OUT/pip-install.log" >&2
    exit 3
  fi
fi
gpu=$($py - "$device" <<'PY' 2>/dev/null || echo unknown-gpu
import re, sys
if sys.argv[1] == "cpu":
    print("cpu"); raise SystemExit
from hrm.runtime.gpu import probe
info = probe()
print(re.sub(r"[^a-z0-9]+", "-", info.name.lower()).strip("-") if info.available else "no-gpu")
PY
)
steps="$OUT/lease-$gpu.steps.jsonl"

record() {  # step rc seconds limit
  printf '{"step": "%s", "rc": %s, "seconds": %s, "limit": %s}\n' "$1" "$2" "$3" "$4" >> "$steps"
}

step() {  # NAME WANT_SECONDS CMD... : run under timeout with min(WANT, time left); output to NAME-GPU.log
  local name=$1 want=$2; shift 2
  local left=$(( deadline - $(date +%s) ))
  local limit=$(( want < left ? want : left ))
  if [ "$limit" -lt 10 ]; then
    echo "[lease] $name: skipped, ${left}s left" | tee -a "$OUT/lease-$gpu.log"; record "$name" '"skipped"' 0 "$limit"
    return 0
  fi
  echo "[lease] $name: up to ${limit}s" | tee -a "$OUT/lease-$gpu.log"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name-$gpu.log" 2>&1
  local rc=$?
  record "$name" "$rc" $(( $(date +%s) - t0 )) "$limit"
  tail -n 5 "$OUT/$name-$gpu.log" | sed "s/^/[$name] /"
  [ "$rc" -eq 0 ] || { echo "[lease] $name: exit $rc" | tee -a "$OUT/lease-$gpu.log"; [ "$status" -ne 0 ] || status=$rc; }
  return $rc
}

# 1. install + check ------------------------------------------------------------------------------
install_check() {
  $py - "$device" <<'PY'
import sys
import hrm.runtime  # noqa: F401
import onnxruntime as ort
from hrm.runtime.gpu import probe
providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, providers)
if sys.argv[1] == "cuda":
    if "CUDAExecutionProvider" not in providers:
        sys.exit(f"INSTALL CHECK FAILED: onnxruntime {ort.__version__} has no CUDAExecutionProvider (stage "
                 "onnxruntime-gpu with ../shared/tools/gpu-stage and check that /tmp/site is on PYTHONPATH); "
                 "every ORT CUDA row would be skipped")
    info = probe()
    if not info.available:
        sys.exit(f"INSTALL CHECK FAILED: no usable GPU: {info.reason}")
    print("gpu", info.name, info.compute_capability, "driver", info.driver, "runtime", info.runtime, info.cudart)
PY
}
export -f install_check
if ! step install 120 bash -c install_check; then
  tail -n 3 "$OUT/install-$gpu.log" >&2
  echo "[lease] INSTALL CHECK FAILED (see $OUT/install-$gpu.log): stopping" >&2
  exit 3
fi

# 2. doctor -----------------------------------------------------------------------------------------
# shellcheck disable=SC2086
[[ $run_steps == *" doctor "* ]] && step doctor "${LEASE_DOCTOR_S:-75}" sh -c "hrm-doctor --json ${LEASE_DOCTOR_ARGS:-} > '$OUT/doctor-$gpu.json'"

# 3. bench ------------------------------------------------------------------------------------------
bench_caps=(${LEASE_BENCH_S:-170 100})
i=0
[[ $run_steps == *" bench "* ]] || LEASE_BENCH=" "
for spec in ${LEASE_BENCH:-sudoku:1,256 maze:1}; do
  shape=${spec%%:*}; batches=${spec#*:}
  model=(--random-full "$shape"); [ "$shape" = tiny ] && model=(--random-tiny)
  batch_args=(); for b in ${batches//,/ }; do batch_args+=(--batch "$b"); done
  cap=${bench_caps[$i]:-${bench_caps[-1]}}; i=$((i + 1))
  # measurements stop 30 s before the step's timeout, so the JSON is complete rather than cut
  left=$(( deadline - $(date +%s) )); limit=$(( cap < left ? cap : left ))
  step "bench-$shape" "$cap" hrm-bench "${model[@]}" --device "$device" --backends "${LEASE_BACKENDS:-ort,torch-compile}" \
      --precisions fp16 --ops standard,ort-contrib "${batch_args[@]}" --quick \
      --time-limit $(( limit > 60 ? limit - 30 : limit / 2 )) --json "$OUT/bench-$shape-$gpu.json"
done

# 4. train with what is left ------------------------------------------------------------------------
init=${LEASE_INIT:-}
[ -z "$init" ] && [ -f .gpudata/sudoku9.last.safetensors ] && init=.gpudata/sudoku9.last.safetensors
data=${LEASE_DATA:-}
[ -z "$data" ] && [ -f .gpudata/data.tgz ] && data=.gpudata/data.tgz
data_arg=generated
if [ -n "$data" ]; then
  if [ -d "$data" ]; then data_arg=$data/sudoku9
  else mkdir -p /tmp/lease-data && tar -xzf "$data" -C /tmp/lease-data && data_arg=/tmp/lease-data/sudoku9; fi
fi
left=$(( deadline - $(date +%s) ))
if [[ $run_steps != *" train "* ]]; then
  :
elif [ "$left" -ge "${LEASE_TRAIN_MIN_S:-60}" ]; then
  echo "[lease] train: ${left}s left; init ${init:-none (fresh start)}; data $data_arg" | tee -a "$OUT/lease-$gpu.log"
  # shellcheck disable=SC2086
  step train "$left" hrm-train --preset sudoku9 --data "$data_arg" --device "$device" \
      ${init:+--init-from "$(realpath "$init")"} --time-budget $(( left - 25 )) --seed 0 --no-progress \
      --out "$OUT/train-sudoku9-$gpu" ${LEASE_TRAIN_EXTRA:-}
else
  echo "[lease] train: skipped, ${left}s left (< ${LEASE_TRAIN_MIN_S:-60})" | tee -a "$OUT/lease-$gpu.log"
  record train '"skipped"' 0 "$left"
fi

echo "[lease] done in $(( $(date +%s) - t_start ))s (budget ${budget}s), exit $status; results in $OUT:" | tee -a "$OUT/lease-$gpu.log"
ls -la "$OUT"
exit "$status"
