// deltac fused pyramid convolution: CUDA building blocks (SPEC.md §1, §6).
//
// This file is pasted verbatim into every generated `<id>.cu`, which then defines
// the configuration's kernels and its C entry points from these templates. Plain
// CUDA C++17, no framework headers.
//
// Data layout: U [B, H, W, Ci] channels-last, gate weights [S, K, K, Ci] (HWC per
// gate), G [B, H, W, S·Ci/2]. A CTA works on one (batch, spatial tile, channel
// group); a channel group is CA "A" channels c0..c0+CA-1 plus their partners
// Ci/2+c0.. in the "B" half, so that the gate can be applied in registers.
//
// Shared memory holds the tile (+ halo K/2) in fp32 as [row][col][lane][A0..A(P-1),
// B0..B(P-1)]: one float4 (P = 2) or float2 (P = 1) per (pixel, lane), so a thread
// reads the A and B values it needs with one vector load. The row stride is padded
// to ≡ one pixel (mod 32 banks) so that the threads of a quarter-warp, which sit on
// neighbouring rows, hit distinct banks.
//
// Each thread computes R consecutive outputs of one row for its lane (2·P channels)
// with a sliding window over the K taps of each kernel row: (R+K-1) vector loads
// feed R·K vector FMAs. Accumulation is fp32 for every element type.
//
// A configuration runs as one "conv" grid whose CTAs are either full-resolution tiles
// (s = 1 gates: conv + gate from the shared U tile, written straight into G) or
// low-resolution tiles (s < 1 gates: the pooled U tile is built in shared memory,
// convolved, gated, staged in shared memory and bilinearly upsampled into G's channels of
// the gate). Low-res tiles step by TH-1 × TW-1 so that every full-res pixel finds both
// bilinear taps in one CTA. No intermediate is ever written, and each element of G is
// written once. The whole block (conv_up, this, conv_out, conv_pool) adds "pool" CTAs to
// the same grid (pool_cta) and two cuBLASLt GEMMs around it (block_gemm.cuh).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

namespace deltac {

enum GateKind : int { kSimpleGate = 0, kSigmoidGate = 1 };

// ---- vectors of 2·P floats: (A0..A(P-1), B0..B(P-1)) ------------------------

template <int P> struct LaneVec;
template <> struct LaneVec<2> {
  using type = float4;
  static __device__ __forceinline__ float4 zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
};
template <> struct LaneVec<1> {
  using type = float2;
  static __device__ __forceinline__ float2 zero() { return make_float2(0.f, 0.f); }
};

__device__ __forceinline__ void fma_vec(float (&acc)[4], const float4& v, const float4& w) {
  acc[0] = fmaf(v.x, w.x, acc[0]);
  acc[1] = fmaf(v.y, w.y, acc[1]);
  acc[2] = fmaf(v.z, w.z, acc[2]);
  acc[3] = fmaf(v.w, w.w, acc[3]);
}
__device__ __forceinline__ void fma_vec(float (&acc)[2], const float2& v, const float2& w) {
  acc[0] = fmaf(v.x, w.x, acc[0]);
  acc[1] = fmaf(v.y, w.y, acc[1]);
}
__device__ __forceinline__ void add_scaled(float4& s, const float4& v) { s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w; }
__device__ __forceinline__ void add_scaled(float2& s, const float2& v) { s.x += v.x; s.y += v.y; }
__device__ __forceinline__ float4 scaled(const float4& v, float f) { return make_float4(v.x * f, v.y * f, v.z * f, v.w * f); }
__device__ __forceinline__ float2 scaled(const float2& v, float f) { return make_float2(v.x * f, v.y * f); }

// ---- global loads / stores of P consecutive elements ------------------------

__device__ __forceinline__ float2 load2(const float* p) { return __ldg(reinterpret_cast<const float2*>(p)); }
__device__ __forceinline__ float2 load2(const __half* p) {
  return __half22float2(__ldg(reinterpret_cast<const __half2*>(p)));
}
__device__ __forceinline__ float load1(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load1(const __half* p) { return __half2float(__ldg(p)); }

/// (A[0..P), B[0..P)) of one pixel: `p` points at the pixel's first A channel of the lane.
template <int P, typename T, int HALF>
__device__ __forceinline__ typename LaneVec<P>::type load_lane(const T* p) {
  if constexpr (P == 2) {
    const float2 a = load2(p), b = load2(p + HALF);
    return make_float4(a.x, a.y, b.x, b.y);
  } else {
    return make_float2(load1(p), load1(p + HALF));
  }
}

__device__ __forceinline__ void store_p(float* p, const float (&v)[2]) { *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]); }
__device__ __forceinline__ void store_p(__half* p, const float (&v)[2]) {
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v[0], v[1]);
}
__device__ __forceinline__ void store_p(float* p, const float (&v)[1]) { *p = v[0]; }
__device__ __forceinline__ void store_p(__half* p, const float (&v)[1]) { *p = __float2half_rn(v[0]); }

// ---- gates -------------------------------------------------------------------

template <int GATE>
__device__ __forceinline__ float apply_gate(float a, float b, float simple_scale) {
  if constexpr (GATE == kSimpleGate) {
    return a * b * simple_scale;
  } else {
    return a / (1.f + expf(-b));
  }
}

// ---- bilinear taps, exactly as PyTorch's upsample_bilinear2d (align_corners=False)

struct LinearTap {
  int i0, i1;
  float w0, w1;
};

/// `scale` = in_size / out_size as float, like area_pixel_compute_scale.
__device__ __forceinline__ LinearTap linear_tap(int dst, int in_size, float scale) {
  float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  src = src < 0.f ? 0.f : src;
  const int i0 = static_cast<int>(src);
  const float w1 = src - static_cast<float>(i0);
  return LinearTap{i0, i0 + (i0 < in_size - 1 ? 1 : 0), 1.f - w1, w1};
}

// ---- tile geometry -------------------------------------------------------------

/// A TH×TW output tile with a K/2 halo; CA A-channels per CTA, P per lane; R outputs per thread.
template <int K_, int CI_, int CA_, int P_, int TH_, int TW_, int R_>
struct TileGeom {
  static constexpr int K = K_, CI = CI_, HALF = CI_ / 2, CA = CA_, P = P_, TH = TH_, TW = TW_, R = R_;
  static constexpr int LANES = CA / P;
  static constexpr int V = 2 * P;  // floats per (pixel, lane)
  static constexpr int SH = TH + K - 1, SW = TW + K - 1;
  static constexpr int PS = LANES * V;  // floats per pixel
  static constexpr int RS = SW * PS + ((PS % 32) - (SW * PS) % 32 + 32) % 32;  // row stride ≡ PS (mod 32)
  static constexpr int TILE_FLOATS = SH * RS;
  static constexpr int WEIGHT_FLOATS = K * K * PS;
  static constexpr int COL_GROUPS = TW / R;
  static constexpr int THREADS = LANES * TH * COL_GROUPS;
  static_assert(K % 2 == 1, "K must be odd");
  static_assert(CI % 2 == 0 && HALF % CA == 0, "CA must divide Ci/2");
  static_assert(CA % P == 0 && (P == 1 || P == 2), "P must be 1 or 2 and divide CA");
  static_assert(TW % R == 0, "R must divide TW");
  using Vec = typename LaneVec<P>::type;

  /// This thread's lane, tile row and first tile column.
  struct Thread {
    int lane, row, col0;
  };
  static __device__ __forceinline__ Thread thread() {
    const int t = static_cast<int>(threadIdx.x);
    return Thread{t % LANES, (t / LANES) % TH, (t / (LANES * TH)) * R};
  }
};

/// Gate weights of one gate ([K, K, Ci], global) → shared [tap][lane][A.., B..] in fp32.
template <class G, typename T>
__device__ __forceinline__ void load_weights(float* sw, const T* w, int c0) {
  for (int i = threadIdx.x; i < G::K * G::K * G::LANES; i += G::THREADS) {
    const int lane = i % G::LANES, tap = i / G::LANES;
    const T* src = w + static_cast<size_t>(tap) * G::CI + c0 + lane * G::P;
    float* dst = sw + i * G::V;
#pragma unroll
    for (int p = 0; p < G::P; ++p) {
      dst[p] = load1(src + p);
      dst[G::P + p] = load1(src + G::HALF + p);
    }
  }
}

/// Loads issued per batch by the tile loaders: they are all in flight before the first
/// store to shared memory (a loop of load → store would wait one memory latency per item).
constexpr int kLoadBatch = 8;

/// U tile + halo (zero outside the image) → shared. `u` points at the batch's image.
template <class G, typename T>
__device__ __forceinline__ void load_tile(float* tile, const T* u, int H, int W, int y0, int x0, int c0) {
  using Vec = typename G::Vec;
  constexpr int ITEMS = G::SH * G::SW * G::LANES;
  constexpr int ITERS = (ITEMS + G::THREADS - 1) / G::THREADS;
#pragma unroll
  for (int it0 = 0; it0 < ITERS; it0 += kLoadBatch) {
    Vec v[kLoadBatch];
#pragma unroll
    for (int j = 0; j < kLoadBatch; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (it0 + j) * G::THREADS;
      v[j] = LaneVec<G::P>::zero();
      if (it0 + j < ITERS && i < ITEMS) {
        const int lane = i % G::LANES, pix = i / G::LANES;
        const int y = y0 + pix / G::SW - G::K / 2, x = x0 + pix % G::SW - G::K / 2;
        if (y >= 0 && y < H && x >= 0 && x < W) {
          v[j] = load_lane<G::P, T, G::HALF>(u + (static_cast<size_t>(y) * W + x) * G::CI + c0 + lane * G::P);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kLoadBatch; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (it0 + j) * G::THREADS;
      if (it0 + j < ITERS && i < ITEMS) {
        const int lane = i % G::LANES, pix = i / G::LANES;
        *reinterpret_cast<Vec*>(tile + (pix / G::SW) * G::RS + (pix % G::SW) * G::PS + lane * G::V) = v[j];
      }
    }
  }
}

/// Adaptive-average-pooled U (H×W → Ho×Wo, PyTorch cells) tile + halo → shared.
/// (y0, x0) are low-res coordinates; cells outside Ho×Wo are the conv's zero padding.
/// Cells of up to MAXT×MAXT pixels (all cells at s = 1/2) are summed with unrolled,
/// predicated loads; larger ones (small scales) with a plain loop.
template <class G, int MAXT, typename T>
__device__ __forceinline__ void load_pooled_tile(float* tile, const T* u, int H, int W, int Ho, int Wo, int y0, int x0,
                                                 int c0) {
  using Vec = typename G::Vec;
  constexpr int ITEMS = G::SH * G::SW * G::LANES;
  constexpr int ITERS = (ITEMS + G::THREADS - 1) / G::THREADS;
  constexpr int BATCH = kLoadBatch / 2;
#pragma unroll
  for (int it0 = 0; it0 < ITERS; it0 += BATCH) {
    Vec v[BATCH];
#pragma unroll
    for (int j = 0; j < BATCH; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (it0 + j) * G::THREADS;
      v[j] = LaneVec<G::P>::zero();
      if (it0 + j < ITERS && i < ITEMS) {
        const int lane = i % G::LANES, pix = i / G::LANES;
        const int y = y0 + pix / G::SW - G::K / 2, x = x0 + pix % G::SW - G::K / 2;
        if (y >= 0 && y < Ho && x >= 0 && x < Wo) {
          const int r0 = (y * H) / Ho, r1 = ((y + 1) * H + Ho - 1) / Ho;
          const int q0 = (x * W) / Wo, q1 = ((x + 1) * W + Wo - 1) / Wo;
          const T* base = u + (static_cast<size_t>(r0) * W + q0) * G::CI + c0 + lane * G::P;
          if (r1 - r0 <= MAXT && q1 - q0 <= MAXT) {
#pragma unroll
            for (int dr = 0; dr < MAXT; ++dr)
#pragma unroll
              for (int dq = 0; dq < MAXT; ++dq)
                if (dr < r1 - r0 && dq < q1 - q0)
                  add_scaled(v[j], load_lane<G::P, T, G::HALF>(base + (static_cast<size_t>(dr) * W + dq) * G::CI));
          } else {
            for (int dr = 0; dr < r1 - r0; ++dr)
              for (int dq = 0; dq < q1 - q0; ++dq)
                add_scaled(v[j], load_lane<G::P, T, G::HALF>(base + (static_cast<size_t>(dr) * W + dq) * G::CI));
          }
          v[j] = scaled(v[j], 1.f / static_cast<float>((r1 - r0) * (q1 - q0)));
        }
      }
    }
#pragma unroll
    for (int j = 0; j < BATCH; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (it0 + j) * G::THREADS;
      if (it0 + j < ITERS && i < ITEMS) {
        const int lane = i % G::LANES, pix = i / G::LANES;
        *reinterpret_cast<Vec*>(tile + (pix / G::SW) * G::RS + (pix % G::SW) * G::PS + lane * G::V) = v[j];
      }
    }
  }
}

/// Depthwise K×K conv of R consecutive outputs (row `t.row`, columns t.col0..+R) for the
/// thread's lane, from the shared tile and shared weights. acc[o] = (A.., B..) of output o.
template <class G>
__device__ __forceinline__ void conv_strip(const float* tile, const float* sw, typename G::Thread t,
                                           float (&acc)[G::R][G::V]) {
  using Vec = typename G::Vec;
#pragma unroll
  for (int o = 0; o < G::R; ++o)
#pragma unroll
    for (int e = 0; e < G::V; ++e) acc[o][e] = 0.f;
#pragma unroll 1
  for (int ki = 0; ki < G::K; ++ki) {
    Vec w[G::K];
#pragma unroll
    for (int kj = 0; kj < G::K; ++kj) w[kj] = reinterpret_cast<const Vec*>(sw)[(ki * G::K + kj) * G::LANES + t.lane];
    const float* src = tile + (t.row + ki) * G::RS + t.col0 * G::PS + t.lane * G::V;
#pragma unroll
    for (int x = 0; x < G::R + G::K - 1; ++x) {
      const Vec v = *reinterpret_cast<const Vec*>(src + x * G::PS);
#pragma unroll
      for (int o = 0; o < G::R; ++o) {
        const int j = x - o;
        if (j >= 0 && j < G::K) fma_vec(acc[o], v, w[j]);
      }
    }
  }
}

/// Gates the strip and stores its P outputs per pixel at channel `channel` of an
/// NHWC tensor with `stride` channels per pixel (rows/cols outside out_h×out_w are skipped).
template <class G, int GATE, typename OutT>
__device__ __forceinline__ void store_gated(OutT* dst, int out_h, int out_w, int stride, int channel, int y, int x0,
                                            const float (&acc)[G::R][G::V], float simple_scale) {
  if (y >= out_h) return;
#pragma unroll
  for (int o = 0; o < G::R; ++o) {
    const int x = x0 + o;
    if (x < out_w) {
      float g[G::P];
#pragma unroll
      for (int p = 0; p < G::P; ++p) g[p] = apply_gate<GATE>(acc[o][p], acc[o][G::P + p], simple_scale);
      store_p(dst + (static_cast<size_t>(y) * out_w + x) * stride + channel, g);
    }
  }
}

/// Gates a low-res strip into the CTA's shared low-res map ([TH][TW][CA] floats).
template <class G, int GATE>
__device__ __forceinline__ void stage_gated(float* low, typename G::Thread t, const float (&acc)[G::R][G::V],
                                            float simple_scale) {
#pragma unroll
  for (int o = 0; o < G::R; ++o)
#pragma unroll
    for (int p = 0; p < G::P; ++p)
      low[(t.row * G::TW + t.col0 + o) * G::CA + t.lane * G::P + p] = apply_gate<GATE>(acc[o][p], acc[o][G::P + p], simple_scale);
}

/// Full-res rows (or columns) [lo, hi) whose first bilinear tap i0 lies in [a0, a1):
/// a conservative range from the inverse map, then the exact test in `upsample_tile`.
__device__ __forceinline__ void tap_range(int a0, int a1, int out_size, float inv, int& lo, int& hi) {
  lo = max(0, static_cast<int>(floorf((static_cast<float>(a0) + 0.5f) * inv - 0.5f)) - 2);
  hi = min(out_size, static_cast<int>(ceilf((static_cast<float>(a1) + 0.5f) * inv - 0.5f)) + 2);
  if (a0 == 0) lo = 0;
}

/// Bilinear upsampling (PyTorch, align_corners=False) from the CTA's staged low-res map
/// (gated, fp32, low rows y0..y0+TH-1 × cols x0..x0+TW-1) into G channels `channel`..+CA
/// ([B, H, W, stride]): every full-res pixel whose top-left tap (i0, j0) lies in the
/// anchor block [y0, y0+TH-1) × [x0, x0+TW-1) — its other taps are then in the staged
/// map. Consecutive low tiles overlap by one row/column, so each pixel is written once.
template <class G, typename OutT>
__device__ __forceinline__ void upsample_tile(OutT* g, const float* low, int H, int W, int Ho, int Wo, int y0, int x0,
                                              int channel, int stride) {
  const float sh = static_cast<float>(Ho) / static_cast<float>(H), sw = static_cast<float>(Wo) / static_cast<float>(W);
  const int ay1 = min(y0 + G::TH - 1, Ho), ax1 = min(x0 + G::TW - 1, Wo);
  int ylo, yhi, xlo, xhi;
  tap_range(y0, ay1, H, static_cast<float>(H) / static_cast<float>(Ho), ylo, yhi);
  tap_range(x0, ax1, W, static_cast<float>(W) / static_cast<float>(Wo), xlo, xhi);
  const int ny = yhi - ylo, nx = xhi - xlo;
  for (int i = static_cast<int>(threadIdx.x); i < ny * nx * G::LANES; i += G::THREADS) {
    const int lane = i % G::LANES, pix = i / G::LANES;
    const int y = ylo + pix / nx, x = xlo + pix % nx;
    const LinearTap ty = linear_tap(y, Ho, sh), tx = linear_tap(x, Wo, sw);
    if (ty.i0 < y0 || ty.i0 >= ay1 || tx.i0 < x0 || tx.i0 >= ax1) continue;
    const float* r0 = low + ((ty.i0 - y0) * G::TW) * G::CA + lane * G::P;
    const float* r1 = low + ((ty.i1 - y0) * G::TW) * G::CA + lane * G::P;
    const int c0 = (tx.i0 - x0) * G::CA, c1 = (tx.i1 - x0) * G::CA;
    float v[G::P];
#pragma unroll
    for (int p = 0; p < G::P; ++p)
      v[p] = ty.w0 * (tx.w0 * r0[c0 + p] + tx.w1 * r0[c1 + p]) + ty.w1 * (tx.w0 * r1[c0 + p] + tx.w1 * r1[c1 + p]);
    store_p(g + (static_cast<size_t>(y) * W + x) * stride + channel + lane * G::P, v);
  }
}

// ---- the block's pool term: P[b] = mean_n(x[b]) · Wpoolᵀ + bpool + bout ------------

/// Tokens per pool CTA and row of threads.
constexpr int kPoolTokensPerRow = 64;

/// Pool CTAs per image: channel chunks of 64 × token ranges.
template <int C>
__host__ __device__ inline int pool_items(int tokens, int threads) {
  const int rows = threads / 32, per = rows * kPoolTokensPerRow;
  return ((C + 63) / 64) * ((tokens + per - 1) / per);
}

/// One pool CTA: column sums of x[b] over its token range for its 64 channels, times
/// Wpool's columns of those channels, added (fp32 atomics) into p32[b, :]. The last CTA
/// of the image (ticket counter) adds the biases, writes pterm[b, :] in T and resets
/// p32[b, :] and the counter to 0 for the next call.
template <int C, int THREADS, typename T>
__device__ __forceinline__ void pool_cta(float* smem, const T* __restrict__ x, const T* __restrict__ wpool,
                                         const T* __restrict__ bpool, const T* __restrict__ bout, float* p32,
                                         unsigned* counter, T* pterm, int b, int tokens, int item, int items) {
  static_assert(THREADS % 32 == 0, "pool CTAs need whole warps");
  constexpr int ROWS = THREADS / 32, CHUNKS = (C + 63) / 64;
  const int tid = static_cast<int>(threadIdx.x), col = tid % 32, row = tid / 32;
  const int c0 = (item % CHUNKS) * 64, t0 = (item / CHUNKS) * ROWS * kPoolTokensPerRow;
  const int t1 = min(tokens, t0 + ROWS * kPoolTokensPerRow);
  const int ch = c0 + 2 * col;
  float s0 = 0.f, s1 = 0.f;
  if (ch < C) {
    const T* base = x + static_cast<size_t>(b) * tokens * C + ch;
    for (int t = t0 + row; t < t1; t += ROWS) {
      if constexpr (C % 2 == 0) {  // (ch, ch+1) is an aligned pair
        const float2 v = load2(base + static_cast<size_t>(t) * C);
        s0 += v.x;
        s1 += v.y;
      } else {  // odd C: pairs straddle tokens (misaligned), and ch+1 may be past the last channel
        s0 += load1(base + static_cast<size_t>(t) * C);
        if (ch + 1 < C) s1 += load1(base + static_cast<size_t>(t) * C + 1);
      }
    }
  }
  smem[row * 64 + 2 * col] = s0;
  smem[row * 64 + 2 * col + 1] = s1;
  __syncthreads();
  for (int j = tid; j < 64; j += THREADS) {  // a loop: a CTA may have 32 threads
    float s = 0.f;
    for (int r = 0; r < ROWS; ++r) s += smem[r * 64 + j];
    smem[ROWS * 64 + j] = s / static_cast<float>(tokens);
  }
  __syncthreads();
  const float* mean = smem + ROWS * 64;
  const int width = min(64, C - c0);
  for (int o = tid; o < C; o += THREADS) {
    const T* w = wpool + static_cast<size_t>(o) * C + c0;
    float acc = 0.f;
    for (int j = 0; j < width; ++j) acc = fmaf(mean[j], load1(w + j), acc);
    atomicAdd(p32 + static_cast<size_t>(b) * C + o, acc);
  }
  // Release: every thread's atomics are made visible device-wide (fence), the barrier hands
  // them to thread 0, whose own fence (cumulative) orders them before its ticket; acquire: the
  // ticket's reader fences before the barrier that tells the CTA, and every thread fences
  // again before it reads (L2, .cg) — the pattern of cooperative groups' grid sync. No CTA
  // waits for another: the ticket only picks which CTA finishes the image.
  __threadfence();
  __syncthreads();
  int* last = reinterpret_cast<int*>(smem + ROWS * 64 + 64);
  if (tid == 0) {
    __threadfence();
    *last = atomicAdd(counter + b, 1u) == static_cast<unsigned>(items - 1);
    __threadfence();
  }
  __syncthreads();
  if (!*last) return;
  __threadfence();
  for (int o = tid; o < C; o += THREADS) {
    float* p = p32 + static_cast<size_t>(b) * C + o;
    const float v = __ldcg(p) + load1(bpool + o) + load1(bout + o);
    *p = 0.f;
    const float one[1] = {v};
    store_p(pterm + static_cast<size_t>(b) * C + o, one);
  }
  if (tid == 0) counter[b] = 0u;
}

// ---- host helpers ------------------------------------------------------------

/// floor(size·scale) as the PyTorch module computes it (in double).
inline int scaled_size(int size, double scale) { return static_cast<int>(static_cast<double>(size) * scale); }

/// Raises a kernel's dynamic shared-memory limit once per device (needed above 48 KiB).
template <typename Kernel>
inline cudaError_t allow_shared_memory(Kernel kernel, size_t bytes, bool (&done)[64]) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if (dev >= 0 && dev < 64 && done[dev]) return cudaSuccess;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err == cudaSuccess && dev >= 0 && dev < 64) done[dev] = true;
  return err;
}

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace deltac
