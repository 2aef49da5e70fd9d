#!/usr/bin/env python3
"""GPU check of deltac's generated CUDA: the whole-block entry and the pyramid-conv kernel
(SPEC.md §1, §6), against PyTorch, on one CUDA device. Issue 11's table in one run.

Self-contained: compiles the `.cu` (pyramid conv) and `.block.cu` (whole ΔConvBlock,
cuBLASLt) files that `npx tsx bench/gpu/generate.ts bench/gpu/out` wrote into one shared
library with nvcc, against the cuBLASLt of the `nvidia-cublas` wheel that torch itself
loads (headers and library from site-packages: nvidia/cu13 or nvidia/cublas; else the CUDA
toolkit's), calls the C entry points through ctypes on PyTorch tensors, and

  * checks `deltac_block_<id>` against a PyTorch implementation of SPEC.md §1 computed in
    fp32 on the same (rounded) inputs — max|Δ|/max|ref| <= 1e-3 for fp16, 1e-5 for fp32 —
    at every shape of the table and at odd sizes (exit status 1 on any failure), and the
    pyramid kernel alone the same way;
  * times the block (one entry call) against QKV projection + scaled_dot_product_attention
    + output projection, both as CUDA-graph replays (the call must be capturable), with the
    issue's targets and a met/missed column; the pyramid kernel alone against the time its
    minimal traffic (U read once, G written once) takes at the card's copy bandwidth
    (target <= 3x), and the two GEMMs (torch's cuBLAS) for a breakdown;
  * prints peak GPU memory (torch.cuda.max_memory_allocated, inputs and weights included)
    of the block and of the SDPA module at batch 32 for 128x128x320 and 512x512x320 tokens
    (1024² and 4K SD1.5 images), against the paper's Table I (1.77/1.46 GB, 14.68/12.17 GB).

Usage (on the GPU machine, from the repository root):
    python3 bench/gpu/run_gpu_check.py --out bench/gpu/out --log bench/gpu/last-gpu.log
"""
import argparse
import concurrent.futures as futures
import ctypes
import glob
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CUBLAS_ERROR_BASE = 100000


class Log:
    """Prints and keeps every line, so that the log file is written even on failure."""

    def __init__(self, path):
        self.path = path
        self.lines = []

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.lines.append(line)

    def save(self):
        if self.path:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "w") as f:
                f.write("\n".join(self.lines) + "\n")


# ---- building ----------------------------------------------------------------------

def find_cublas():
    """(include dir, lib dir, library file name) of cuBLASLt: the wheel torch uses first."""
    roots = [p for p in sys.path if p and os.path.isdir(p)]
    try:
        import site
        roots += site.getsitepackages()
    except Exception:  # noqa: BLE001 - virtualenvs without getsitepackages
        pass
    places = []
    for r in roots:
        for sub in ("nvidia/cu13", "nvidia/cublas", "nvidia/cu12"):
            places.append((os.path.join(r, sub, "include"), os.path.join(r, sub, "lib")))
    for cuda in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"):
        if cuda:
            places.append((os.path.join(cuda, "include"), os.path.join(cuda, "lib64")))
    for inc, lib in places:
        if os.path.exists(os.path.join(inc, "cublasLt.h")):
            libs = sorted(glob.glob(os.path.join(lib, "libcublasLt.so*")), key=len)
            if libs:
                return inc, lib, os.path.basename(libs[0])
    raise RuntimeError("cuBLASLt not found: pip install nvidia-cublas (torch's CUDA wheels bring it)")


def compile_library(src_dir, kernels, arch, cublas, log):
    inc, libdir, libname = cublas
    build = os.path.join(src_dir, "build")
    os.makedirs(build, exist_ok=True)
    t0 = time.time()
    sources = [k["cuda"] for k in kernels] + [k["block_cuda"] for k in kernels]

    def one(src):
        obj = os.path.join(build, src.replace(".cu", ".o"))
        cmd = ["nvcc", "-std=c++17", "-O3", f"-arch={arch}", "-Xcompiler", "-fPIC", f"-I{inc}", "-c",
               os.path.join(src_dir, src), "-o", obj]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nvcc failed for {src}:\n{r.stderr}")
        return obj

    with futures.ThreadPoolExecutor(max_workers=min(16, len(sources))) as ex:
        objs = list(ex.map(one, sources))
    lib = os.path.join(build, "libdeltac_kernels.so")
    cmd = ["nvcc", "-shared", f"-arch={arch}", "-o", lib, *objs, f"-L{libdir}", f"-l:{libname}",
           f"-Xlinker=-rpath={libdir}", "-lcudart"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("link failed:\n" + r.stderr)
    log(f"compiled {len(sources)} files ({len(kernels)} pyramid + {len(kernels)} block) for {arch} in "
        f"{time.time() - t0:.1f} s; cuBLASLt {os.path.join(libdir, libname)}")
    return lib


def stream_ptr():
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


class Kernels:
    def __init__(self, lib_path, kernels, cublas):
        self.lib = ctypes.CDLL(lib_path)
        self.lt = ctypes.CDLL(os.path.join(cublas[1], cublas[2]))
        self.handle = ctypes.c_void_p()
        rc = self.lt.cublasLtCreate(ctypes.byref(self.handle))
        if rc != 0:
            raise RuntimeError(f"cublasLtCreate returned {rc}")
        self.by_id = {}
        for k in kernels:
            pyr = getattr(self.lib, k["entry"])
            pyr.restype = ctypes.c_int
            pyr.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 3 + [ctypes.c_void_p]
            block = getattr(self.lib, k["block_entry"])
            block.restype = ctypes.c_int
            block.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 3 + [ctypes.c_void_p, ctypes.c_size_t,
                                                                             ctypes.c_void_p, ctypes.c_void_p]
            size = getattr(self.lib, k["block_entry"] + "_workspace_size")
            size.restype = ctypes.c_size_t
            size.argtypes = [ctypes.c_int] * 3
            info = getattr(self.lib, k["entry"] + "_launch_info")
            info.restype = ctypes.c_int
            info.argtypes = [ctypes.c_int] * 3 + [ctypes.POINTER(ctypes.c_int)]
            self.by_id[k["id"]] = (pyr, block, size, k, info)

    def pyramid(self, kid, u, w, g, B, H, W):
        rc = self.by_id[kid][0](u.data_ptr(), w.data_ptr(), g.data_ptr(), B, H, W, stream_ptr())
        if rc != 0:
            raise RuntimeError(f"{kid}: pyramid entry returned cudaError {rc}")

    def block(self, kid, x, w, out, ws, B, H, W):
        rc = self.by_id[kid][1](x.data_ptr(), w.data_ptr(), out.data_ptr(), B, H, W, ws.data_ptr(), ws.numel(),
                                self.handle, stream_ptr())
        if rc != 0:
            what = f"cublasStatus {rc - CUBLAS_ERROR_BASE}" if rc >= CUBLAS_ERROR_BASE else f"cudaError {rc}"
            raise RuntimeError(f"{kid}: block entry returned {what}")

    def launch_info(self, kid, B, H, W):
        """The pyramid grid's CTAs, threads per CTA, shared memory per CTA, registers, CTAs resident per SM."""
        info = (ctypes.c_int * 5)()
        rc = self.by_id[kid][4](B, H, W, info)
        if rc != 0:
            raise RuntimeError(f"{kid}: launch_info returned cudaError {rc}")
        return list(info)

    def workspace_bytes(self, kid, B, H, W):
        return self.by_id[kid][2](B, H, W)

    def pack_weights(self, kid, p):
        """The block's weight buffer (layout in kernels.json) from the parameter dict."""
        k = self.by_id[kid][3]
        names = {"conv_up.weight": "up_w", "conv_up.bias": "up_b", "gates.conv_spatial.weight": "gate_w",
                 "conv_out.weight": "out_w", "conv_out.bias": "out_b", "conv_pool.weight": "pool_w",
                 "conv_pool.bias": "pool_b"}
        buf = torch.zeros(k["block_weights"]["elements"], device="cuda", dtype=p["up_w"].dtype)
        for t in k["block_weights"]["tensors"]:
            v = p[names[t["name"]]].reshape(-1)
            assert v.numel() == math.prod(t["shape"]), t
            buf[t["offset"]:t["offset"] + v.numel()] = v
        return buf


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

class CaptureError(RuntimeError):
    pass


def time_graph(fn, iters, per_graph=10):
    """GPU time per call: `per_graph` calls captured in one CUDA graph, replayed."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for _ in range(per_graph):
                fn()
    except Exception as e:  # noqa: BLE001 - the caller decides whether this is a failure
        torch.cuda.synchronize()
        raise CaptureError(str(e)) from e
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


def copy_bandwidth():
    n = 1 << 28  # 1 GiB of fp32
    a = torch.empty(n, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize()
    return 2 * a.numel() * 4 / (start.elapsed_time(end) / 10 * 1e-3)  # bytes read + written per second


# ---- rows --------------------------------------------------------------------------

SD15 = dict(K=9, scales=[1, 0.5], gate="simple", heads=8)
PIXART = dict(K=13, scales=[1, 0.5], gate="sigmoid", heads=16)
# (C, H, W, batch, family, dtype, timed, target speed-up vs SDPA or None, label)
ROWS = [
    (320, 64, 64, 2, SD15, "f16", True, 3.0, "SD1.5 512²"),
    (640, 32, 32, 2, SD15, "f16", True, 1.5, "SD1.5 512²"),
    (1280, 16, 16, 2, SD15, "f16", True, 1.2, "SD1.5 512²"),
    (640, 64, 64, 2, SD15, "f16", True, 3.0, "SD1.5 1024²"),
    (1152, 64, 64, 2, PIXART, "f16", True, 3.0, "PixArt 1024²"),
    (1152, 32, 32, 2, PIXART, "f16", True, 1.5, "PixArt 512²"),
    (320, 128, 128, 2, SD15, "f16", True, None, "SD1.5 1024²"),
    (320, 256, 256, 1, SD15, "f16", True, None, "SD1.5 2048²"),
    (320, 64, 64, 2, SD15, "f32", True, None, ""),
    (1152, 64, 64, 2, PIXART, "f32", True, None, ""),
    # odd, non-divisible sizes (exact adaptive pooling, edge clamping, partial tiles): correctness only
    (320, 15, 13, 3, SD15, "f16", False, None, "odd"),
    (320, 15, 13, 3, SD15, "f32", False, None, "odd"),
    (640, 5, 3, 2, SD15, "f32", False, None, "odd"),
    (1280, 3, 2, 2, SD15, "f16", False, None, "odd"),
    (1280, 3, 2, 2, SD15, "f32", False, None, "odd"),
    (1152, 9, 7, 1, PIXART, "f32", False, None, "odd"),
    (1152, 33, 17, 1, PIXART, "f16", False, None, "odd"),
    (640, 47, 61, 2, SD15, "f16", False, None, "odd"),
]
PYRAMID_TARGET = 3.0  # pyramid kernel alone, x its memory-bound time
MEMORY_ROWS = [  # (C, H, W, batch, paper SDPA GB, paper ΔConvBlock GB, label)
    (320, 128, 128, 32, 1.77, 1.46, "1024² image"),
    (320, 512, 512, 32, 14.68, 12.17, "4K image"),
]


def config_id(C, fam, dt):
    scales = "_".join(str(s).replace(".", "p") for s in fam["scales"])
    return f"c{C}_ci{C // 2}_k{fam['K']}_s{scales}_{fam['gate']}_{dt}"


def make_params(C, fam, dtype, dev="cuda"):
    Ci, K, S = C // 2, fam["K"], len(fam["scales"])
    p32 = {
        "up_w": torch.randn(Ci, C, device=dev) / math.sqrt(C), "up_b": torch.randn(Ci, device=dev) * 0.1,
        "gate_w": torch.randn(S, K, K, Ci, device=dev) / K,
        "out_w": torch.randn(C, S * Ci // 2, device=dev) / math.sqrt(S * Ci / 2), "out_b": torch.randn(C, device=dev) * 0.1,
        "pool_w": torch.randn(C, C, device=dev) / math.sqrt(C), "pool_b": torch.randn(C, device=dev) * 0.1,
    }
    p = {k: v.to(dtype).contiguous() for k, v in p32.items()}
    return p, {k: v.float() for k, v in p.items()}  # the reference sees the rounded weights


def sdpa_module(C, heads, dtype, dev="cuda"):
    hd = C // heads
    wqkv = (torch.randn(3 * C, C, device=dev) / math.sqrt(C)).to(dtype)
    wo = (torch.randn(C, C, device=dev) / math.sqrt(C)).to(dtype)
    bo = torch.zeros(C, device=dev, dtype=dtype)

    def run(x):
        B, N, _ = x.shape
        qkv = F.linear(x, wqkv).view(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return F.linear(o.transpose(1, 2).reshape(B, N, C), wo, bo)

    return run


def check_row(lib, row, args, bw, log, failures):
    C, H, W, B, fam, dt, timed, target, label = row
    kid = config_id(C, fam, dt)
    dtype = torch.float16 if dt == "f16" else torch.float32
    tol = 1e-3 if dt == "f16" else 1e-5
    Ci, K, S = C // 2, fam["K"], len(fam["scales"])
    N = H * W
    p, p32 = make_params(C, fam, dtype)
    wbuf = lib.pack_weights(kid, p)
    x = torch.randn(B, N, C, device="cuda").to(dtype)

    # 1. the pyramid kernel alone, on U of the right dtype
    u = F.linear(x, p["up_w"], p["up_b"]).view(B, H, W, Ci).contiguous()
    g = torch.empty(B, H, W, S * Ci // 2, device="cuda", dtype=dtype)
    lib.pyramid(kid, u, p["gate_w"], g, B, H, W)
    torch.cuda.synchronize()
    kerr = rel_err(g, pyramid_conv_ref(u.float(), p32["gate_w"], fam["scales"], fam["gate"]))

    # 2. the whole-block entry, with a full workspace and with one image's (image per pass)
    ws = torch.empty(lib.workspace_bytes(kid, B, H, W), device="cuda", dtype=torch.uint8)
    out = torch.empty_like(x)
    lib.block(kid, x, wbuf, out, ws, B, H, W)
    ws1 = torch.empty(lib.workspace_bytes(kid, 1, H, W), device="cuda", dtype=torch.uint8)
    out1 = torch.empty_like(x)
    lib.block(kid, x, wbuf, out1, ws1, B, H, W)
    torch.cuda.synchronize()
    ref = block_ref(x.float(), p32, H, W, fam["scales"], fam["gate"])
    berr = max(rel_err(out, ref), rel_err(out1, ref))
    ok = kerr <= tol and berr <= tol
    if not ok:
        failures.append(f"{kid} at B={B} {H}x{W}: pyramid err {kerr:.2e}, block err {berr:.2e} (tol {tol:g})")
    cells = [f"{B},{H},{W},{C},{K},{fam['gate']}", label, dt, f"{kerr:.1e}", f"{berr:.1e}"]
    if timed:
        sdpa = sdpa_module(C, fam["heads"], dtype)
        gbuf = torch.empty(B, N, S * Ci // 2, device="cuda", dtype=dtype)
        try:
            t_block = time_graph(lambda: lib.block(kid, x, wbuf, out, ws, B, H, W), args.iters)
        except CaptureError as e:
            failures.append(f"{kid} at B={B} {H}x{W}: the block entry could not be captured into a CUDA graph: {e}")
            t_block = float("nan")
        t_sdpa = time_graph(lambda: sdpa(x), args.iters)
        t_pyr = time_graph(lambda: lib.pyramid(kid, u, p["gate_w"], g, B, H, W), 10 * args.iters, per_graph=20)
        t_gemm = time_graph(lambda: (F.linear(x, p["up_w"], p["up_b"]), F.linear(gbuf, p["out_w"], p["out_b"])), args.iters)
        es = 2 if dt == "f16" else 4
        moved = B * N * Ci * es + B * N * S * Ci // 2 * es + S * K * K * Ci * es
        mem_ms = moved / bw * 1e3
        speedup = t_sdpa / t_block
        x_mem = t_pyr / mem_ms
        met = "-" if target is None else ("met" if speedup >= target else "MISSED")
        pyr_met = "met" if x_mem <= PYRAMID_TARGET else "MISSED"
        ctas, threads, smem, regs, per_sm = lib.launch_info(kid, B, H, W)
        waves = ctas / max(1, per_sm * torch.cuda.get_device_properties(0).multi_processor_count)
        cells += [f"{t_block:.4f}", f"{t_sdpa:.4f}", f"{speedup:.2f}x", "-" if target is None else f">= {target:g}x", met,
                  f"{t_pyr:.4f}", f"{t_gemm:.4f}", f"{moved / 1e6:.2f}", f"{x_mem:.1f}", pyr_met,
                  f"{ctas}x{threads}", f"{smem // 1024}K/{regs}r", f"{per_sm}", f"{waves:.2f}"]
    else:
        cells += ["-"] * 14
    log("  " + " | ".join(cells) + ("" if ok else "   <-- FAIL"))
    return cells


def peak_gb(fn):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 1e9


def memory_rows(lib, log, failures):
    out_rows = []
    for row in MEMORY_ROWS:
        try:
            out_rows.append(memory_row(lib, log, row))
        except Exception as e:  # noqa: BLE001 - report and go on
            failures.append(f"memory row {row[:4]}: {type(e).__name__}: {e}")
            log(f"  memory {row[:4]}: ERROR {type(e).__name__}: {e}")
        torch.cuda.empty_cache()
    return out_rows


def memory_row(lib, log, row):
    """Peak memory of the block (image per pass, one pass) and of the SDPA module at one shape."""
    (C, H, W, B, paper_sdpa, paper_block, label) = row
    fam, dtype = SD15, torch.float16
    kid = config_id(C, fam, "f16")
    p, _ = make_params(C, fam, dtype)
    wbuf = lib.pack_weights(kid, p)
    del p
    x = torch.randn(B, H * W, C, device="cuda", dtype=dtype)
    sdpa = sdpa_module(C, fam["heads"], dtype)

    def block(images_per_pass):
        def run():
            out = torch.empty_like(x)
            ws = torch.empty(lib.workspace_bytes(kid, images_per_pass, H, W), device="cuda", dtype=torch.uint8)
            lib.block(kid, x, wbuf, out, ws, B, H, W)
            torch.cuda.synchronize()
        return run

    def attention():
        with torch.no_grad():
            sdpa(x)
        torch.cuda.synchronize()

    one = peak_gb(block(1))
    full = peak_gb(block(B))
    att = peak_gb(attention)
    met = "met" if one < paper_block and one < att else "MISSED"
    cells = [f"{B},{H},{W},{C}", label, f"{att:.2f}", f"{one:.2f}", f"{full:.2f}", f"{paper_sdpa:.2f}", f"{paper_block:.2f}", met]
    log("  " + " | ".join(cells))
    return cells


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--log", default=None, help="also write everything printed to this file")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="only the timed fp16 rows (for comparing tilings)")
    ap.add_argument("--no-memory", action="store_true", help="skip the batch-32 memory rows")
    args = ap.parse_args()
    log = Log(args.log)
    try:
        run(args, log)
    finally:
        log.save()


def run(args, log):
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    manifest_path = os.path.join(args.out, "kernels.json")
    if not os.path.exists(manifest_path):
        sys.exit(f"{manifest_path} is missing: run `npx tsx bench/gpu/generate.ts {args.out}` first (and carry it to the GPU machine)")
    kernels = json.load(open(manifest_path))["kernels"]
    major, minor = torch.cuda.get_device_capability()
    arch = f"sm_{major}{minor}"
    log(f"device: {torch.cuda.get_device_name()} ({arch}), torch {torch.__version__}, cuda {torch.version.cuda}")
    cublas = find_cublas()
    lib = Kernels(compile_library(args.out, kernels, arch, cublas, log), kernels, cublas)
    bw = copy_bandwidth()
    log(f"copy bandwidth (read+write): {bw / 1e9:.0f} GB/s")

    header = ("shape (B,H,W,C,K,gate)", "", "dtype", "pyr err", "block err", "block ms", "SDPA ms", "speed-up", "target",
              "met", "pyr ms", "GEMMs ms", "MB min", "pyr x mem-bound", "<= 3x", "pyr CTAs", "smem/regs", "CTAs/SM", "waves")
    rows_out = []
    failures = []
    for row in ROWS:
        if args.quick and not (row[6] and row[5] == "f16"):
            continue
        try:
            rows_out.append(check_row(lib, row, args, bw, log, failures))
        except Exception as e:  # noqa: BLE001 - one broken row must not hide the others
            C, H, W, B, fam, dt = row[:6]
            failures.append(f"{config_id(C, fam, dt)} at B={B} {H}x{W}: {type(e).__name__}: {e}")
            log(f"  {B},{H},{W},{C},{fam['K']},{fam['gate']} | {dt} | ERROR {type(e).__name__}: {e}")
        torch.cuda.empty_cache()

    mem = [] if args.quick or args.no_memory else memory_rows(lib, log, failures)

    log()
    log("| " + " | ".join(header) + " |")
    log("|" + "---|" * len(header))
    for r in rows_out:
        log("| " + " | ".join(r) + " |")
    log()
    log(f"Times are CUDA-graph replays (mean of {args.iters} calls): block = one deltac_block_<id> call (cuBLASLt conv_up,")
    log("pyramid + pool term, cuBLASLt conv_out); SDPA = QKV projection + scaled_dot_product_attention + output projection;")
    log("speed-up = SDPA / block. pyr = the pyramid kernel alone; GEMMs = conv_up + conv_out as torch runs them (cuBLAS);")
    log("MB min = U read once + G written once + gate weights; pyr x mem-bound = pyr ms / (MB min at copy bandwidth).")
    log("pyr CTAs = CTAs x threads of the pyramid grid; smem/regs per CTA / per thread; CTAs/SM = resident by the occupancy")
    log("calculator; waves = CTAs / (CTAs/SM x SMs).")
    log("err = max|Δ| / max|ref| against SPEC.md §1 in fp32 on the same inputs (block: full workspace and one image per pass).")
    if mem:
        log()
        log("| memory, fp16 (B,H,W,C) | | SDPA GB | block GB (image per pass) | block GB (one pass) | paper SDPA GB | paper block GB | below paper and SDPA |")
        log("|---|---|---|---|---|---|---|---|")
        for r in mem:
            log("| " + " | ".join(r) + " |")
        log()
        log("GB = torch.cuda.max_memory_allocated during one forward, inputs, weights and workspace included.")
    if failures:
        log("CORRECTNESS FAILURES:")
        for f in failures:
            log("  " + f)
        sys.exit(1)
    log("every shape matches the PyTorch reference")


if __name__ == "__main__":
    main()
