#!/usr/bin/env python3
"""Per-kernel timings (torch.profiler / CUPTI) of the generated pyramid-conv kernels at
two SD1.5 shapes; with --once, runs each shape once (for `ncu`).

  cd bench/gpu && python3 profile_kernel.py            # kernel time table
  ncu --clock-control none -k regex:deltac python3 profile_kernel.py --once
"""
import argparse
import json
import os

import torch
from torch.profiler import ProfilerActivity, profile

from run_gpu_check import HERE, Kernels, compile_library

SHAPES = [("c320_ci160_k9_s1_0p5_simple_f16", 2, 64, 64, 160), ("c1280_ci640_k9_s1_0p5_simple_f16", 2, 16, 16, 640),
          ("c1152_ci576_k13_s1_0p5_sigmoid_f16", 2, 64, 64, 576)]

ap = argparse.ArgumentParser()
ap.add_argument("--once", action="store_true")
args = ap.parse_args()
out = os.path.join(HERE, "out")
kernels = json.load(open(os.path.join(out, "kernels.json")))["kernels"]
major, minor = torch.cuda.get_device_capability()
lib_path = os.path.join(out, "build", "libdeltac_kernels.so")
lib = Kernels(lib_path if os.path.exists(lib_path) else compile_library(out, kernels, f"sm_{major}{minor}"), kernels)
data = []
for kid, B, H, W, Ci in SHAPES:
    u = torch.randn(B, H, W, Ci, device="cuda", dtype=torch.float16)
    w = torch.randn(2, 9 if "k9" in kid else 13, 9 if "k9" in kid else 13, Ci, device="cuda", dtype=torch.float16)
    g = torch.empty(B, H, W, Ci, device="cuda", dtype=torch.float16)
    ws = torch.empty(lib.workspace_bytes(kid, B, H, W), device="cuda", dtype=torch.uint8)
    data.append((kid, B, H, W, u, w, g, ws))
for kid, B, H, W, u, w, g, ws in data:
    lib.call_ws(kid, u, w, g, ws, B, H, W)
torch.cuda.synchronize()
if not args.once:
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            for kid, B, H, W, u, w, g, ws in data:
                lib.call_ws(kid, u, w, g, ws, B, H, W)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=70))
