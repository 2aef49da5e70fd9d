#!/usr/bin/env python3
"""Per-kernel timings (torch.profiler / CUPTI) of the generated code at three layer shapes:
the pyramid-conv kernel alone and one whole-block call (its cuBLASLt GEMMs, the memset and the
conv grid with the pool term), plus each grid's launch facts; with --once, runs each shape once
(for `ncu`). Needs bench/gpu/out from `bash bench/gpu/prepare.sh`.

  python3 bench/gpu/profile_kernel.py            # kernel time table
  ncu --clock-control none -k regex:deltac python3 bench/gpu/profile_kernel.py --once
"""
import argparse
import json
import os

import torch
from torch.profiler import ProfilerActivity, profile

from run_gpu_check import HERE, Kernels, Log, compile_library, find_cublas, make_params, PIXART, SD15

SHAPES = [("c320_ci160_k9_s1_0p5_simple_f16", 320, SD15, 2, 64, 64), ("c1280_ci640_k9_s1_0p5_simple_f16", 1280, SD15, 2, 16, 16),
          ("c1152_ci576_k13_s1_0p5_sigmoid_f16", 1152, PIXART, 2, 64, 64)]

ap = argparse.ArgumentParser()
ap.add_argument("--once", action="store_true")
args = ap.parse_args()
out = os.path.join(HERE, "out")
kernels = json.load(open(os.path.join(out, "kernels.json")))["kernels"]
major, minor = torch.cuda.get_device_capability()
cublas = find_cublas()
lib_path = os.path.join(out, "build", "libdeltac_kernels.so")
if not os.path.exists(lib_path):
    lib_path = compile_library(out, kernels, f"sm_{major}{minor}", cublas, Log(None))
lib = Kernels(lib_path, kernels, cublas)
data = []
for kid, C, fam, B, H, W in SHAPES:
    Ci, S = C // 2, len(fam["scales"])
    p, _ = make_params(C, fam, torch.float16)
    x = torch.randn(B, H * W, C, device="cuda", dtype=torch.float16)
    u = torch.randn(B, H, W, Ci, device="cuda", dtype=torch.float16)
    g = torch.empty(B, H, W, S * Ci // 2, device="cuda", dtype=torch.float16)
    ws = torch.empty(lib.workspace_bytes(kid, B, H, W), device="cuda", dtype=torch.uint8)
    data.append((kid, B, H, W, x, lib.pack_weights(kid, p), torch.empty_like(x), ws, u, p["gate_w"], g))
    ctas, threads, smem, regs, per_sm = lib.launch_info(kid, B, H, W)
    print(f"{kid} {B}x{H}x{W}: pyramid grid {ctas} CTAs x {threads} threads, {smem} B smem, {regs} regs, {per_sm} CTAs/SM")


def once():
    for kid, B, H, W, x, wbuf, y, ws, u, gw, g in data:
        lib.pyramid(kid, u, gw, g, B, H, W)
        lib.block(kid, x, wbuf, y, ws, B, H, W)


once()
torch.cuda.synchronize()
if not args.once:
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            once()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=16, max_name_column_width=70))
