#!/usr/bin/env bash
# The GPU work of one lease on a lent H100, in steps that each fit one device call (<= 10 min).
# Runs in the repo root on the GPU machine (python3 = the image's, with torch + CUDA).
#
#   bash deploy/gpu/h100_lease.sh train DATA_TGZ SUDOKU_S MAZE_S [MAZE_SIZE]
#        unpack the data, install the project, start ONE background chain (setsid, survives the call):
#        hrm-train sudoku9 for SUDOKU_S seconds, then hrm-train maze for MAZE_S seconds, both with
#        --compile (a run that dies in its first 3 minutes is retried once without --compile).
#        One run at a time: two runs sharing the GPU got 73% of the steps of running them in turn.
#        A budget of 0 skips that model (one model per lease: `train DATA 1500 0`).
#        LEASE_INIT_SUDOKU / LEASE_INIT_MAZE=CKPT continue from an earlier lease's checkpoint
#        (hrm-train --init-from: same architecture, fresh optimizer); carry CKPT in .gpudata/.
#   bash deploy/gpu/h100_lease.sh watch OUT SECONDS
#        copy the latest checkpoints, metrics and logs to OUT every 30 s until the chain ends or
#        SECONDS pass (so a lost machine loses at most 30 s of results); call it back to back.
#   bash deploy/gpu/h100_lease.sh pause|resume     SIGSTOP/SIGCONT the chain (quiet GPU for timing)
#   bash deploy/gpu/h100_lease.sh bench OUT SHAPE SECONDS
#        hrm-bench on the full-size random model (SHAPE sudoku = seq 81+1, maze = seq 900+1): ORT CUDA
#        standard and ort-contrib graphs (with/without CUDA graphs, fused segment graph), torch eager and
#        torch.compile + CUDA graph, fp16 and fp32, batch 1/64/256 -> OUT/h100-SHAPE.json. Needs
#        onnxruntime-gpu staged first (../shared/tools/gpu-stage, parts in /tmp/site) and a quiet GPU.
#
# Dry run on a CPU box (what tests/train/test_lease_script.py does): LEASE_DEVICE=cpu, LEASE_RUNS=DIR,
# LEASE_EXTRA="--arch hidden_size=32 ..." (hrm-train options appended last, so they win), LEASE_NO_INSTALL=1.
#
# The hrm-train lines below are the exact training commands of the bundled models (models/README.md).
# Accuracy, parity and the bucket report run afterwards on any CPU: hrm-eval / hrm-parity on the
# checkpoints that `watch` brought back.
set -uo pipefail
runs=${LEASE_RUNS:-/tmp/hrm-runs}
data=$runs/data
device=${LEASE_DEVICE:-cuda}
extra=${LEASE_EXTRA:-}
case "${1:-}" in
  train)
    tgz=$2; t_sudoku=$3; t_maze=$4; maze_size=${5:-15}
    mkdir -p $runs $data && tar -xzf "$tgz" -C $data || exit 1
    init_sudoku=${LEASE_INIT_SUDOKU:+--init-from $(realpath "$LEASE_INIT_SUDOKU")}
    init_maze=${LEASE_INIT_MAZE:+--init-from $(realpath "$LEASE_INIT_MAZE")}
    [ -n "${LEASE_NO_INSTALL:-}" ] || python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
    cat > $runs/chain.sh <<EOF
#!/usr/bin/env bash
export PYTHONUNBUFFERED=1
train() {  # name, budget, args...
  local name=\$1 budget=\$2; shift 2
  local t0=\$(date +%s)
  hrm-train "\$@" --device $device --compile --time-budget "\$budget" --seed 0 --out $runs/\$name --no-progress \\
      $extra > $runs/\$name.log 2>&1 < /dev/null
  local rc=\$? used=\$(( \$(date +%s) - t0 ))
  if [ \$rc -ne 0 ] && [ \$used -lt 180 ]; then
    echo "[chain] \$name failed after \${used}s with --compile (rc \$rc); retrying without it" >> $runs/\$name.log
    hrm-train "\$@" --device $device --no-compile --time-budget \$(( budget - used )) --seed 0 --out $runs/\$name \\
        --no-progress $extra >> $runs/\$name.log 2>&1 < /dev/null
  fi
}
[ "$t_sudoku" -gt 0 ] && train sudoku9 $t_sudoku --preset sudoku9 --data $data/sudoku9 $init_sudoku
[ "$t_maze" -gt 0 ] && train maze $t_maze --preset maze --size $maze_size --data $data/maze$maze_size $init_maze
echo done > $runs/chain.done
EOF
    setsid nohup bash $runs/chain.sh > $runs/chain.log 2>&1 < /dev/null &
    echo $! > $runs/chain.pid
    sleep "${LEASE_SETTLE:-60}"; tail -n 3 $runs/*.log
    [ "$device" = cpu ] || nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv
    ;;
  watch)
    out=$2; limit=$3; t0=$(date +%s); mkdir -p "$out"
    while :; do
      for m in sudoku9 maze; do
        [ -f $runs/$m.log ] && cp $runs/$m.log "$out/train_$m.log"
        [ -f $runs/$m/metrics.jsonl ] && cp $runs/$m/metrics.jsonl "$out/$m.metrics.jsonl"
        [ -f $runs/$m/best.safetensors ] && cp $runs/$m/best.safetensors "$out/$m.best.safetensors"
        [ -f $runs/$m/last.safetensors ] && cp $runs/$m/last.safetensors "$out/$m.last.safetensors"
      done
      [ -f $runs/chain.done ] && break
      [ $(( $(date +%s) - t0 + ${LEASE_POLL:-30} )) -ge "$limit" ] && break
      sleep "${LEASE_POLL:-30}"
    done
    ls -la "$out"; tail -n 4 "$out"/train_*.log 2>/dev/null
    ;;
  bench)
    out=$2; shape=$3; limit=$4; mkdir -p "$out"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || true
    hrm-bench --random-full "$shape" --device cuda --backends ort,torch,torch-compile --precisions fp16,fp32 \
        --ops standard,ort-contrib --batch 1 --batch 64 --batch 256 --quick --time-limit "$limit" \
        --json "$out/h100-$shape.json" 2> "$out/h100-$shape.log"
    tail -n 40 "$out/h100-$shape.log"
    ;;
  pause)  kill -STOP -- -"$(cat $runs/chain.pid)" ;;
  resume) kill -CONT -- -"$(cat $runs/chain.pid)" ;;
  *) sed -n '2,/^set /p' "$0" | grep '^#'; exit 2 ;;
esac
