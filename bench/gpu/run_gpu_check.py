#!/usr/bin/env python3
"""GPU check of deltac's generated CUDA pyramid-conv kernels (SPEC.md §1, §6).

Self-contained: compiles the .cu files that `npx tsx bench/gpu/generate.ts bench/gpu/out`
wrote into one shared library with nvcc, calls the C entry points through ctypes on
PyTorch tensors, and

  * checks them against a PyTorch implementation of SPEC.md §1 (adaptive_avg_pool2d,
    depthwise conv2d, gate, bilinear interpolate align_corners=False), computed in fp32:
    max|Δ|/max|ref| <= 1e-3 for fp16, 1e-5 for fp32 (exit status 1 otherwise);
  * times the whole ΔConvBlock (cuBLAS GEMMs + the fused kernel) against
    QKV projection + scaled_dot_product_attention + output projection, eagerly
    (mean of N iterations after warm-up, like BENCHMARKS.md) and as CUDA-graph replays;
  * times the pyramid-conv kernel alone and compares its memory traffic with the
    card's copy bandwidth (measured here).

Usage (on the GPU machine):  cd bench/gpu && python3 run_gpu_check.py [--out out]
"""
import argparse
import concurrent.futures as futures
import ctypes
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_library(src_dir, kernels, arch):
    build = os.path.join(src_dir, "build")
    os.makedirs(build, exist_ok=True)
    t0 = time.time()

    def one(k):
        obj = os.path.join(build, k["id"] + ".o")
        cmd = ["nvcc", "-std=c++17", "-O3", f"-arch={arch}", "-Xcompiler", "-fPIC", "-c",
               os.path.join(src_dir, k["cuda"]), "-o", obj]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nvcc failed for {k['cuda']}:\n{r.stderr}")
        return obj

    with futures.ThreadPoolExecutor(max_workers=min(16, len(kernels))) as ex:
        objs = list(ex.map(one, kernels))
    lib = os.path.join(build, "libdeltac_kernels.so")
    r = subprocess.run(["nvcc", "-shared", f"-arch={arch}", "-o", lib, *objs, "-lcudart"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("link failed:\n" + r.stderr)
    print(f"compiled {len(kernels)} kernels for {arch} in {time.time() - t0:.1f} s", flush=True)
    return lib


class Kernels:
    def __init__(self, lib_path, kernels):
        self.lib = ctypes.CDLL(lib_path)
        self.by_id = {}
        for k in kernels:
            f = getattr(self.lib, k["entry"])
            f.restype = ctypes.c_int
            f.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 3 + [ctypes.c_void_p]
            ws = getattr(self.lib, k["entry"] + "_ws")
            ws.restype = ctypes.c_int
            ws.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 3 + [ctypes.c_void_p]
            size = getattr(self.lib, k["entry"] + "_workspace_size")
            size.restype = ctypes.c_size_t
            size.argtypes = [ctypes.c_int] * 3
            self.by_id[k["id"]] = (f, ws, size)

    def call(self, kid, u, w, g, B, H, W):
        f, _, _ = self.by_id[kid]
        rc = f(u.data_ptr(), w.data_ptr(), g.data_ptr(), B, H, W, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
        if rc != 0:
            raise RuntimeError(f"{kid}: entry point returned cudaError {rc}")

    def call_ws(self, kid, u, w, g, ws, B, H, W):
        _, f, _ = self.by_id[kid]
        rc = f(u.data_ptr(), w.data_ptr(), g.data_ptr(), ws.data_ptr() if ws is not None else None, B, H, W,
               ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
        if rc != 0:
            raise RuntimeError(f"{kid}: _ws entry point returned cudaError {rc}")

    def workspace_bytes(self, kid, B, H, W):
        return self.by_id[kid][2](B, H, W)


# ---- SPEC.md §1 in PyTorch (fp32) ------------------------------------------------

def pyramid_conv_ref(u, gate_w, scales, gate):
    """u [B,H,W,Ci] fp32, gate_w [S,K,K,Ci] → G [B,H,W,S·Ci/2] fp32."""
    B, H, W, Ci = u.shape
    K = gate_w.shape[1]
    x = u.permute(0, 3, 1, 2)
    outs = []
    for g, s in enumerate(scales):
        v = x if s == 1 else F.adaptive_avg_pool2d(x, (int(H * s), int(W * s)))
        wk = gate_w[g].permute(2, 0, 1).unsqueeze(1)  # [Ci,1,K,K]
        d = F.conv2d(v, wk, padding=K // 2, groups=Ci)
        a, b = d[:, : Ci // 2], d[:, Ci // 2:]
        gg = a * b * math.sqrt(Ci / 2) if gate == "simple" else a * torch.sigmoid(b)
        if s != 1:
            gg = F.interpolate(gg, size=(H, W), mode="bilinear", align_corners=False)
        outs.append(gg)
    return torch.cat(outs, 1).permute(0, 2, 3, 1).contiguous()


def block_ref(x, p, H, W, scales, gate):
    """Whole ΔConvBlock in fp32 (SPEC.md §1): x [B,N,C] → [B,N,C]."""
    B, N, C = x.shape
    u = F.linear(x, p["up_w"], p["up_b"]).view(B, H, W, -1)
    g = pyramid_conv_ref(u, p["gate_w"], scales, gate).view(B, N, -1)
    y = F.linear(g, p["out_w"], p["out_b"])
    return y + F.linear(x.mean(1), p["pool_w"], p["pool_b"]).unsqueeze(1)


def rel_err(a, ref):
    return ((a.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


# ---- timing ----------------------------------------------------------------------

def time_eager(fn, iters):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def time_graph(fn, iters, per_graph=10):
    """GPU time per call: `per_graph` calls captured in one CUDA graph, replayed."""
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(per_graph):
                fn()
        for _ in range(3):
            graph.replay()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        reps = max(1, iters // per_graph)
        start.record()
        for _ in range(reps):
            graph.replay()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / (reps * per_graph)
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"  (graph timing failed: {e})", flush=True)
        torch.cuda.synchronize()
        return float("nan")


def copy_bandwidth():
    n = 1 << 28  # 1 GiB of fp32
    a = torch.empty(n, device="cuda")
    b = torch.empty_like(a)
    ms = time_eager(lambda: b.copy_(a), 10)
    return 2 * a.numel() * 4 / (ms * 1e-3)  # bytes read + written per second


# ---- rows --------------------------------------------------------------------------

SD15 = dict(K=9, scales=[1, 0.5], gate="simple", heads=8)
PIXART = dict(K=13, scales=[1, 0.5], gate="sigmoid", heads=16)
ROWS = [
    # (C, H, W, batch, family, dtype, timed)
    (320, 64, 64, 2, SD15, "f16", True),
    (640, 32, 32, 2, SD15, "f16", True),
    (1280, 16, 16, 2, SD15, "f16", True),
    (320, 128, 128, 2, SD15, "f16", True),
    (640, 64, 64, 2, SD15, "f16", True),
    (320, 256, 256, 1, SD15, "f16", True),
    (1152, 64, 64, 2, PIXART, "f16", True),
    (1152, 32, 32, 2, PIXART, "f16", True),
    (320, 64, 64, 2, SD15, "f32", True),
    (1152, 64, 64, 2, PIXART, "f32", True),
    # odd, non-divisible sizes (exact adaptive pooling, edge clamping): correctness only
    (320, 15, 13, 3, SD15, "f16", False),
    (320, 15, 13, 3, SD15, "f32", False),
    (640, 5, 3, 2, SD15, "f32", False),
    (1280, 3, 2, 2, SD15, "f32", False),
    (1152, 9, 7, 1, PIXART, "f32", False),
    (1152, 33, 17, 1, PIXART, "f16", False),
]


def config_id(C, fam, dt):
    scales = "_".join(str(s).replace(".", "p") for s in fam["scales"])
    return f"c{C}_ci{C // 2}_k{fam['K']}_s{scales}_{fam['gate']}_{dt}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="only the timed fp16 rows (for comparing tilings)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    manifest = json.load(open(os.path.join(args.out, "kernels.json")))
    kernels = manifest["kernels"]
    major, minor = torch.cuda.get_device_capability()
    arch = f"sm_{major}{minor}"
    print(f"device: {torch.cuda.get_device_name()} ({arch}), torch {torch.__version__}", flush=True)
    lib = Kernels(compile_library(args.out, kernels, arch), kernels)
    bw = copy_bandwidth()
    print(f"copy bandwidth (read+write): {bw / 1e9:.0f} GB/s", flush=True)

    header = ("shape (B,H,W,C,K,gate)", "dtype", "kern err", "block err", "ΔConv ms", "SDPA ms", "ratio",
              "ΔConv graph", "SDPA graph", "g-ratio", "pyr ms", "MB moved", "GB/s", "x mem-bound")
    rows_out = []
    failures = []
    for (C, H, W, B, fam, dt, timed) in ROWS:
        if args.quick and not (timed and dt == "f16"):
            continue
        kid = config_id(C, fam, dt)
        dtype = torch.float16 if dt == "f16" else torch.float32
        tol = 1e-3 if dt == "f16" else 1e-5
        Ci, K, S = C // 2, fam["K"], len(fam["scales"])
        N = H * W
        dev = "cuda"
        p32 = {
            "up_w": torch.randn(Ci, C, device=dev) / math.sqrt(C), "up_b": torch.randn(Ci, device=dev) * 0.1,
            "gate_w": torch.randn(S, K, K, Ci, device=dev) / K,
            "out_w": torch.randn(C, S * Ci // 2, device=dev) / math.sqrt(S * Ci / 2), "out_b": torch.randn(C, device=dev) * 0.1,
            "pool_w": torch.randn(C, C, device=dev) / math.sqrt(C), "pool_b": torch.randn(C, device=dev) * 0.1,
        }
        p = {k: v.to(dtype).contiguous() for k, v in p32.items()}
        p32 = {k: v.float() for k, v in p.items()}  # reference sees the rounded weights
        x = torch.randn(B, N, C, device=dev).to(dtype)

        # 1. the kernel alone, on U of the right dtype
        u = F.linear(x, p["up_w"], p["up_b"]).view(B, H, W, Ci).contiguous()
        g = torch.empty(B, H, W, S * Ci // 2, device=dev, dtype=dtype)
        lib.call(kid, u, p["gate_w"], g, B, H, W)
        torch.cuda.synchronize()
        kerr = rel_err(g, pyramid_conv_ref(u.float(), p32["gate_w"], fam["scales"], fam["gate"]))

        # 2. the whole block: cuBLAS GEMMs + the kernel
        ws = torch.empty(max(1, lib.workspace_bytes(kid, B, H, W)), device=dev, dtype=torch.uint8)
        gbuf = torch.empty(B, N, S * Ci // 2, device=dev, dtype=dtype)
        pool_bias = p["pool_b"] + p["out_b"]

        def delta_block(use_ws=False):
            uu = F.linear(x, p["up_w"], p["up_b"])
            if use_ws:
                lib.call_ws(kid, uu, p["gate_w"], gbuf, ws, B, H, W)
            else:
                lib.call(kid, uu, p["gate_w"], gbuf, B, H, W)
            y = F.linear(gbuf, p["out_w"])
            return y.add_(F.linear(x.mean(1), p["pool_w"], pool_bias).unsqueeze(1))

        y = delta_block()
        torch.cuda.synchronize()
        berr = rel_err(y, block_ref(x.float(), p32, H, W, fam["scales"], fam["gate"]))
        ok = kerr <= tol and berr <= 10 * tol
        if not ok:
            failures.append(f"{kid} at B={B} {H}x{W}: kernel err {kerr:.2e}, block err {berr:.2e} (tol {tol:g})")
        cells = [f"{B},{H},{W},{C},{K},{fam['gate']}", dt, f"{kerr:.1e}", f"{berr:.1e}"]
        if timed:
            heads = fam["heads"]
            hd = C // heads
            wqkv = (torch.randn(3 * C, C, device=dev) / math.sqrt(C)).to(dtype)
            wo = (torch.randn(C, C, device=dev) / math.sqrt(C)).to(dtype)
            bo = torch.zeros(C, device=dev, dtype=dtype)

            def sdpa_block():
                qkv = F.linear(x, wqkv).view(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
                o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
                return F.linear(o.transpose(1, 2).reshape(B, N, C), wo, bo)

            t_delta = time_eager(delta_block, args.iters)
            t_sdpa = time_eager(sdpa_block, args.iters)
            tg_delta = time_graph(lambda: delta_block(True), args.iters)
            tg_sdpa = time_graph(sdpa_block, args.iters)
            t_pyr = time_graph(lambda: lib.call_ws(kid, u, p["gate_w"], g, ws, B, H, W), 10 * args.iters, per_graph=20)
            if math.isnan(t_pyr):
                t_pyr = time_eager(lambda: lib.call(kid, u, p["gate_w"], g, B, H, W), args.iters)
            es = 2 if dt == "f16" else 4
            low = sum(B * int(H * s) * int(W * s) * (Ci // 2) * 4 for s in fam["scales"] if s != 1)
            moved = B * N * Ci * es + B * N * S * Ci // 2 * es + S * K * K * Ci * es + 2 * low
            gbs = moved / (t_pyr * 1e-3) / 1e9
            mem_ms = moved / bw * 1e3
            cells += [f"{t_delta:.4f}", f"{t_sdpa:.4f}", f"{t_sdpa / t_delta:.2f}x", f"{tg_delta:.4f}", f"{tg_sdpa:.4f}",
                      f"{tg_sdpa / tg_delta:.2f}x", f"{t_pyr:.4f}", f"{moved / 1e6:.2f}", f"{gbs:.0f}", f"{t_pyr / mem_ms:.1f}"]
        else:
            cells += ["-"] * 10
        rows_out.append(cells)
        print("  " + " | ".join(cells) + ("" if ok else "   <-- FAIL"), flush=True)

    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows_out:
        print("| " + " | ".join(r) + " |")
    print()
    print("ratio = SDPA ms / ΔConv ms (eager, mean of", args.iters, "iterations); g-ratio = the same as CUDA-graph replays;")
    print("pyr ms = fused pyramid-conv kernel alone (graph replay); x mem-bound = pyr ms / (MB moved at copy bandwidth).")
    if failures:
        print("CORRECTNESS FAILURES:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("all kernels match the PyTorch reference")


if __name__ == "__main__":
    main()
