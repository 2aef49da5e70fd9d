#!/usr/bin/env bash
# The GPU check in one command on the device machine, from the repository root.
# Before (here): `bash bench/gpu/prepare.sh`; then
#   run(command="bash bench/gpu/device-check.sh", carry=["bench/gpu/out"], timeout_s=540)
# Writes $OUT/last-gpu.log (copy it to bench/gpu/last-gpu.log) — the full check: every
# shape against PyTorch, the timing table with targets, the memory rows — and, for each
# other tiling that was carried, $OUT/tiling-<name>.log with the timed fp16 rows only.
# Without $OUT the logs go to bench/gpu/.
set -uo pipefail
logs="${OUT:-bench/gpu}"
if [ ! -f bench/gpu/out/kernels.json ]; then
  echo "bench/gpu/out/kernels.json is missing: run 'bash bench/gpu/prepare.sh' and carry bench/gpu/out" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python3 bench/gpu/run_gpu_check.py --out bench/gpu/out --log "$logs/last-gpu.log" "$@"
status=$?
for variant in t8 r8 c4; do
  if [ -f "bench/gpu/out/$variant/kernels.json" ]; then
    echo "== tiling $variant =="
    python3 bench/gpu/run_gpu_check.py --out "bench/gpu/out/$variant" --quick --iters 30 --log "$logs/tiling-$variant.log" || status=1
  fi
done
exit $status
