#!/usr/bin/env bash
# The GPU work of one lease on a lent H100, in steps that each fit one device call.
# Runs in the repo root on the GPU machine (python3 = the image's, with torch + CUDA).
#   bash deploy/gpu/h100_lease.sh train DATA_DIR SECONDS   install the project, start both bundled-model
#                                                          trainings in the background (setsid) and return
#   bash deploy/gpu/h100_lease.sh pause|resume             SIGSTOP/SIGCONT the trainings (quiet GPU for timing)
#   bash deploy/gpu/h100_lease.sh collect OUT              wait for the trainings, copy checkpoints + logs to OUT
# The exact training command of each bundled model is the `hrm-train` line below (see models/README.md).
set -uo pipefail
runs=/tmp/hrm-runs
case "${1:-}" in
  train)
    data=$2; budget=$3
    python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
    mkdir -p $runs
    export PYTHONUNBUFFERED=1
    setsid nohup hrm-train --preset sudoku9 --data "$data/sudoku9" --device cuda --time-budget "$budget" \
        --seed 0 --out $runs/sudoku9 --no-progress > $runs/sudoku9.log 2>&1 < /dev/null &
    echo $! > $runs/sudoku9.pid
    setsid nohup hrm-train --preset maze --data "$data/maze15" --device cuda --time-budget "$budget" \
        --seed 0 --out $runs/maze --no-progress > $runs/maze.log 2>&1 < /dev/null &
    echo $! > $runs/maze.pid
    sleep 45; tail -n 4 $runs/*.log; nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv
    ;;
  pause)  for p in $runs/*.pid; do kill -STOP -- -"$(cat $p)" 2>/dev/null || kill -STOP "$(cat $p)"; done ;;
  resume) for p in $runs/*.pid; do kill -CONT -- -"$(cat $p)" 2>/dev/null || kill -CONT "$(cat $p)"; done ;;
  collect)
    out=$2; mkdir -p "$out"
    for m in sudoku9 maze; do
      while kill -0 "$(cat $runs/$m.pid)" 2>/dev/null; do sleep 5; done
      cp $runs/$m.log "$out/train_$m.log"
      cp $runs/$m/best.safetensors "$out/$m.best.safetensors" 2>/dev/null
      cp $runs/$m/last.safetensors "$out/$m.last.safetensors" 2>/dev/null
      cp $runs/$m/metrics.jsonl "$out/$m.metrics.jsonl" 2>/dev/null
    done
    ls -la "$out"; tail -n 6 "$out"/train_*.log
    ;;
  *) sed -n 2,9p "$0"; exit 2 ;;
esac
