#!/usr/bin/env bash
# GPU acceptance in one command (budget: under 9 minutes on one H200): `bash runners/gpu_acceptance.sh`
#
#   1. the pinned physics packages from the parts `../shared/tools/gpu-wheels prepare` stages
#      (.gpu/1, .gpu/2, ... copied one per call to ~/gpu on the GPU machine; or already unpacked in
#      /tmp/gpu-site), then mmimic itself (pip install -e . --no-deps);
#   2. runners/doctor.py;
#   3. the tests marked `cuda` (tests/test_cuda.py) and the device tests;
#   4. runners/benchmark.py --device cuda at 1024, 4096 and 16384 worlds for both bodies (published presets);
#   5. a 3-minute bimanual training run at 4096 worlds (stopped by SIGINT, which saves a checkpoint),
#      with the early-termination rate of its first and last iterations.
#
# Every phase has a time limit (about 30 s set-up + doctor 60 + tests 150 + 2 x benchmark 60 + training 180
# = 9 minutes at most, plus the final checkpoint) and the script goes on after a failed phase; the exit
# status is the number of failed phases. Outputs (logs, JSON, plots, the run directory) go to $OUT if set, else
# ./gpu-acceptance. Phase limits in seconds can be changed: TESTS_S, BENCHMARK_S, TRAIN_S.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-acceptance}
mkdir -p "$out"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$out/summary.txt"; }
failed=0
phase() {  # phase NAME LIMIT_S COMMAND...: run with a time limit, log its output, count a failure
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  log "start $name (limit ${limit}s)"
  timeout -k 20 "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  log "end $name: exit $rc after $((SECONDS - start))s"
  [ $rc -eq 0 ] || failed=$((failed + 1))
  return $rc
}

# 1. packages
if [ ! -d /tmp/gpu-site ]; then
  parts=$(ls ~/gpu/part-* 2>/dev/null || ls .gpu/*/part-* 2>/dev/null)
  if [ -z "$parts" ]; then
    log "no staged packages: run ../shared/tools/gpu-wheels prepare here and copy .gpu/k/* to ~/gpu on the GPU machine"
    exit 100
  fi
  # shellcheck disable=SC2086
  cat $parts | tar -xJ -C /tmp || { log "unpacking the staged packages failed"; exit 100; }
fi
export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
python3 -m pip install -q -e . --no-deps --no-build-isolation > "$out/install.log" 2>&1 \
  || { log "pip install -e . failed (see install.log)"; exit 100; }
python3 - <<'EOF' 2>&1 | tee -a "$out/summary.txt"
import importlib.metadata as md
import torch, warp, mujoco, mujoco_warp
print(f"python packages: torch {torch.__version__} (CUDA {torch.version.cuda}), warp-lang {warp.__version__}, "
      f"mujoco {mujoco.__version__}, mujoco-warp {md.version('mujoco-warp')}, musclemimic-models {md.version('musclemimic-models')}")
print(f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none seen by torch'}")
EOF

# 2. the doctor (a problem is reported, not fatal: the later phases say whether it matters)
phase doctor 60 python3 runners/doctor.py

# 3. tests on the GPU
phase tests "${TESTS_S:-150}" python3 -m pytest -q -rs tests/test_cuda.py tests/test_device.py

# 4. throughput and memory at 1024 to 16384 worlds (the published training presets; the PPO update eager:
#    compiling it for each count would not fit the phase, and phase 5 trains with the compiled update)
for body in bimanual fullbody; do
  phase "benchmark_$body" "${BENCHMARK_S:-60}" python3 runners/benchmark.py --device cuda --embodiment "$body" \
    --envs 1024,4096,16384 --steps 10 --iterations 1 --repeats 1 --compile off --json "$out/benchmark_$body.json" --plot "$out/benchmark_$body.png"
done

# 5. three minutes of bimanual training at 4096 worlds; SIGINT at the limit stops it after the iteration with a checkpoint
timeout --preserve-status -s INT -k 60 "${TRAIN_S:-180}" python3 runners/train.py --embodiment bimanual --preset bimanual --num-envs 4096 \
  --iterations 100000 --device cuda --out "$out/train_bimanual" > "$out/train_bimanual.log" 2>&1
rc=$?
log "training exit $rc (0: stopped by SIGINT after saving)"
[ $rc -eq 0 ] || failed=$((failed + 1))
python3 - "$out/train_bimanual/metrics.jsonl" <<'EOF' 2>&1 | tee -a "$out/summary.txt"
import json, sys
try:
    rows = [json.loads(line) for line in open(sys.argv[1])]
except FileNotFoundError:
    rows = []
if not rows:
    sys.exit(f"training logged no iteration ({sys.argv[1]}); see train_bimanual.log")
rated = [r for r in rows if r.get("episode/early_termination_rate") is not None]
print(f"training: {len(rows)} iterations, {rows[-1]['env_steps']} environment steps, "
      f"{rows[-1].get('sps', float('nan')):.0f} steps/s in the last iteration, "
      f"memory/gpu_peak_gb {rows[-1].get('memory/gpu_peak_gb')}")
for label, r in (("start", rated[0]), ("end", rated[-1])) if rated else ():
    print(f"early-termination rate at the {label}: {r['episode/early_termination_rate']:.3f} (iteration {r['iteration']})")
if not rated:
    print("no finished episodes: no early-termination rate")
EOF
log "failed phases: $failed; outputs in $out"
exit "$failed"
