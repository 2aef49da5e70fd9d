#!/usr/bin/env bash
# Run here (no GPU needed) before the device run: writes the CUDA of the GPU check
# (default tiling) to bench/gpu/out, and three other tilings for the sweep of
# bench/gpu/device-check.sh to bench/gpu/out/t8 (8×8 tiles, R=4), bench/gpu/out/r8
# (16×16 tiles, R=8) and bench/gpu/out/c4 (4 A-channels per CTA: twice the CTAs). Then, with a device:
#   run(command="bash bench/gpu/device-check.sh", carry=["bench/gpu/out"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsx bench/gpu/generate.ts bench/gpu/out
npx tsx bench/gpu/generate.ts bench/gpu/out/t8 --tiling th=8,tw=8,r=4
npx tsx bench/gpu/generate.ts bench/gpu/out/r8 --tiling th=16,tw=16,r=8
npx tsx bench/gpu/generate.ts bench/gpu/out/c4 --tiling ca=4
