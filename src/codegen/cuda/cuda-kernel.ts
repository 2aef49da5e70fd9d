/**
 * CUDA code generation: one self-contained translation unit per configuration
 * (SPEC.md §6). The building blocks live in kernels/cuda/pyramid_conv.cuh and are
 * pasted in; this file writes the configuration's constants, its conv grid and C entry
 * points. A call is one launch, `conv`, whose CTAs are
 *
 *   - full-resolution tiles (every s = 1 gate: depthwise conv + gate from the shared U
 *     tile + halo, written straight into G), or
 *   - low-resolution tiles of an s < 1 gate (U adaptive-average-pooled into a shared tile
 *     + halo, conv, gate, staged in shared memory and bilinearly upsampled into G; tiles
 *     overlap by one low-res row/column so that every G pixel has both taps in one CTA),
 *   - and, for the whole block (cuda-block.ts), CTAs of the pool term.
 * No intermediate ever reaches global memory.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { floatLiteral, kernelPlan, largestDivisor, type KernelPlan } from '../kernel-plan.js';
import type { PyramidConvConfig } from '../../passes/delta-conv/op.js';

/** Tile shape of the conv grid (outputs per CTA; R outputs per thread along a row). */
export interface CudaTiling {
  /** A-channels per CTA (the CTA also handles their B partners). */
  ca: number;
  /** Channels per lane per half: 2 (float4 lanes) or 1. */
  p: number;
  /** Output tile of a conv CTA (full-res or low-res) and outputs per thread along a row. */
  th: number;
  tw: number;
  r: number;
}

/** What a caller may override (for tuning); `ca` must divide Ci/2. */
export type TilingOverride = Partial<Pick<CudaTiling, 'ca' | 'th' | 'tw' | 'r'>>;

export function cudaTiling(plan: KernelPlan, override: TilingOverride = {}): CudaTiling {
  const ca = override.ca ?? largestDivisor(plan.half, [8, 4, 2, 1]);
  if (!(Number.isInteger(ca) && ca >= 1 && plan.half % ca === 0)) throw new Error(`CUDA tiling: CA=${ca} must divide Ci/2=${plan.half}`);
  const tiling = { th: 16, tw: 16, r: 4, ...override, ca, p: ca % 2 === 0 ? 2 : 1 };
  if (tiling.tw % tiling.r !== 0) throw new Error(`CUDA tiling: R=${tiling.r} must divide TW=${tiling.tw}`);
  if (tiling.th < 2 || tiling.tw < 2) throw new Error(`CUDA tiling: tiles of ${tiling.th}×${tiling.tw} leave no room for the low-res overlap`);
  if (((tiling.ca / tiling.p) * tiling.th * (tiling.tw / tiling.r)) % 32 !== 0) {
    throw new Error(`CUDA tiling: ${tiling.th}×${tiling.tw} tiles with R=${tiling.r} give CTAs of a partial warp for Ci/2=${plan.half}`);
  }
  return tiling;
}

const KERNELS_DIR = new URL('../../../kernels/cuda/', import.meta.url);
const headers = new Map<string, string>();

/**
 * kernels/cuda/<file>, read once, its `#pragma once` turned into the include guard
 * `guard`, so that several generated files can share a translation unit.
 */
export function guardedKernelHeader(file: string, guard: string): string {
  let text = headers.get(file);
  if (text === undefined) {
    text = fs.readFileSync(fileURLToPath(new URL(file, KERNELS_DIR)), 'utf8');
    headers.set(file, text);
  }
  return text.replace('#pragma once\n', `#ifndef ${guard}\n#define ${guard}\n`) + `#endif  // ${guard}`;
}

/** The prototypes of a configuration's C entry points (also used for deltac_kernels.h). */
export function cudaPrototypes(plan: KernelPlan): string {
  const e = plan.entry;
  return [
    `/* ${describe(plan.config)} */`,
    `int ${e}(const void* u, const void* weights, void* out, int batch, int height, int width, void* stream);`,
    `size_t ${e}_workspace_size(int batch, int height, int width);`,
    `int ${e}_ws(const void* u, const void* weights, void* out, void* workspace, int batch, int height, int width, void* stream);`,
    `int ${e}_launch_info(int batch, int height, int width, int* info);`,
  ].join('\n');
}

export function describe(c: PyramidConvConfig): string {
  return `Ci=${c.inner} (C=${c.channels}), K=${c.kernel}, scales [${c.scales.join(', ')}], gate ${c.gate}, ${c.dtype}`;
}

/** The opening of a generated file: the building blocks (kernels/cuda/pyramid_conv.cuh), guarded. */
export function cudaTemplateText(): string {
  return guardedKernelHeader('pyramid_conv.cuh', 'DELTAC_PYRAMID_CONV_CUH');
}

/**
 * The configuration's constants, its conv grid and `launch_conv` (host), for the body of
 * namespace `ns`. The grid: full-res tiles, then per s < 1 gate its low-res tiles (pooled
 * U → conv → gate → staged in shared memory → bilinear upsampling straight into G), then
 * `pool_tiles` CTAs of the block's pool term (0 for the pyramid conv alone).
 */
export function cudaConvKernel(plan: KernelPlan, t: CudaTiling): string[] {
  const { config: c, half, gates, lowGates, entry } = plan;
  const elem = c.dtype === 'float16' ? '__half' : 'float';
  const gate = c.gate === 'simple' ? 'deltac::kSimpleGate' : 'deltac::kSigmoidGate';
  const fullGates = gates.filter((g) => g.full);
  const S = gates.length;
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out(`using T = ${elem};`);
  out(`constexpr int C = ${c.channels}, CI = ${c.inner}, HALF = ${half}, K = ${c.kernel}, OUT_CH = ${S * half};`);
  out(`constexpr float SIMPLE_SCALE = ${floatLiteral(plan.simpleScale)}f;  // sqrt(Ci/2)`);
  out(`using G = deltac::TileGeom<K, CI, ${t.ca}, ${t.p}, ${t.th}, ${t.tw}, ${t.r}>;`);
  for (const g of lowGates) {
    out(`constexpr double SCALE_${g.index} = ${g.scale};`);
    out(`constexpr int MAXT_${g.index} = ${Math.ceil(1 / g.scale) + 1};  // pooling cells up to MAXT² pixels take the unrolled path`);
  }
  out(`// shared memory: a full-res CTA holds the U tile and every full gate's weights; a low-res CTA`);
  out(`// the pooled tile, one gate's weights and its gated low-res map (TH×TW×CA floats)`);
  out(`constexpr size_t FULL_SMEM = sizeof(float) * (G::TILE_FLOATS + ${fullGates.length} * G::WEIGHT_FLOATS);`);
  out(`constexpr size_t LOW_SMEM = sizeof(float) * (G::TILE_FLOATS + G::WEIGHT_FLOATS + G::TH * G::TW * G::CA);`);
  out(`constexpr size_t POOL_SMEM = sizeof(float) * ((G::THREADS / 32) * 64 + 65);`);
  const parts = [...(fullGates.length ? ['FULL_SMEM'] : []), ...(lowGates.length ? ['LOW_SMEM'] : []), 'POOL_SMEM'];
  out(`constexpr size_t SMEM = ${parts.slice(1).reduce((a, b) => `(${a} > ${b} ? ${a} : ${b})`, parts[0]!)};`);
  out(`// CTAs per SM that shared memory allows (1 KiB reserved per CTA), promised to ptxas so that it`);
  out(`// spends the registers that occupancy leaves (without it, it caps at 64 and spills for K = 13);`);
  out(`// at most as many as keep 64 registers per thread.`);
  out(`#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900`);
  out(`constexpr size_t SMEM_PER_SM = 227 * 1024;`);
  out(`#else`);
  out(`constexpr size_t SMEM_PER_SM = 163 * 1024;`);
  out(`#endif`);
  out(`constexpr int cap_blocks(size_t n) { return n < 1 ? 1 : n > 65536 / (64 * G::THREADS) ? 65536 / (64 * G::THREADS) : static_cast<int>(n); }`);
  out(`constexpr int MIN_BLOCKS = cap_blocks(SMEM_PER_SM / (SMEM + 1024));`);
  out(`bool smem_raised[64];`);
  out();
  out(`/// What the block adds to the conv grid: the pool term's inputs and outputs (pool_tiles = 0: none).`);
  out(`struct PoolArgs {`);
  out(`  const T* x = nullptr;`);
  out(`  const T* wpool = nullptr;`);
  out(`  const T* bpool = nullptr;`);
  out(`  const T* bout = nullptr;`);
  out(`  float* p32 = nullptr;`);
  out(`  unsigned* counter = nullptr;`);
  out(`  T* pterm = nullptr;`);
  out(`  int items = 0, tiles = 0;`);
  out(`};`);
  out();
  const lowParams = lowGates.map((g) => `int ho_${g.index}, int wo_${g.index}, int tiles_x_${g.index}, int tiles_${g.index}`).join(',\n    ');
  out(`// One grid for every gate and the pool term. blockIdx.x < full_tiles: a full-res tile (s = 1`);
  out(`// gates, written into G); then the low-res tiles of each s < 1 gate (anchor step TH-1 × TW-1);`);
  out(`// then the pool CTAs.`);
  out(`__global__ void __launch_bounds__(G::THREADS, MIN_BLOCKS) ${entry}_conv(`);
  out(`    const T* __restrict__ u, const T* __restrict__ weights, T* __restrict__ out, int H, int W, int tiles_x, int full_tiles,`);
  out(`    ${lowParams ? `${lowParams}, ` : ''}PoolArgs pool) {`);
  out(`  extern __shared__ float4 smem4[];`);
  out(`  float* smem = reinterpret_cast<float*>(smem4);`);
  out(`  const int b = blockIdx.z, c0 = blockIdx.y * G::CA;`);
  out(`  const auto t = G::thread();`);
  out(`  int tile = blockIdx.x;`);
  out(`  const T* image = u + static_cast<size_t>(b) * H * W * CI;`);
  out(`  T* g_out = out + static_cast<size_t>(b) * H * W * OUT_CH;`);
  if (fullGates.length) {
    out(`  if (tile < full_tiles) {`);
    out(`    const int y0 = (tile / tiles_x) * G::TH, x0 = (tile % tiles_x) * G::TW;`);
    fullGates.forEach((g, j) => out(`    deltac::load_weights<G>(smem + G::TILE_FLOATS + ${j} * G::WEIGHT_FLOATS, weights + ${g.index} * K * K * CI, c0);`));
    out(`    deltac::load_tile<G>(smem, image, H, W, y0, x0, c0);`);
    out(`    __syncthreads();`);
    fullGates.forEach((g, j) => {
      out(`    {  // gate ${g.index}: s = 1`);
      out(`      float acc[G::R][G::V];`);
      out(`      deltac::conv_strip<G>(smem, smem + G::TILE_FLOATS + ${j} * G::WEIGHT_FLOATS, t, acc);`);
      out(`      deltac::store_gated<G, ${gate}>(g_out, H, W, OUT_CH, ${g.index * half} + c0 + t.lane * G::P, y0 + t.row, x0 + t.col0, acc,`);
      out(`                                     SIMPLE_SCALE);`);
      out(`    }`);
    });
    out(`    return;`);
    out(`  }`);
  }
  out(`  tile -= full_tiles;`);
  for (const g of lowGates) {
    const i = g.index;
    out(`  if (tile < tiles_${i}) {  // gate ${i}: s = ${g.scale}, pooled to ho_${i} × wo_${i}`);
    out(`    const int y0 = (tile / tiles_x_${i}) * (G::TH - 1), x0 = (tile % tiles_x_${i}) * (G::TW - 1);`);
    out(`    deltac::load_weights<G>(smem + G::TILE_FLOATS, weights + ${i} * K * K * CI, c0);`);
    out(`    deltac::load_pooled_tile<G, MAXT_${i}>(smem, image, H, W, ho_${i}, wo_${i}, y0, x0, c0);`);
    out(`    __syncthreads();`);
    out(`    float acc[G::R][G::V];`);
    out(`    deltac::conv_strip<G>(smem, smem + G::TILE_FLOATS, t, acc);`);
    out(`    float* low = smem + G::TILE_FLOATS + G::WEIGHT_FLOATS;`);
    out(`    deltac::stage_gated<G, ${gate}>(low, t, acc, SIMPLE_SCALE);`);
    out(`    __syncthreads();`);
    out(`    deltac::upsample_tile<G>(g_out, low, H, W, ho_${i}, wo_${i}, y0, x0, ${i * half} + c0, OUT_CH);`);
    out(`    return;`);
    out(`  }`);
    out(`  tile -= tiles_${i};`);
  }
  out(`  const int item = tile * static_cast<int>(gridDim.y) + static_cast<int>(blockIdx.y);`);
  out(`  if (tile < pool.tiles && item < pool.items) {`);
  out(`    deltac::pool_cta<C, G::THREADS>(smem, pool.x, pool.wpool, pool.bpool, pool.bout, pool.p32, pool.counter, pool.pterm, b, H * W,`);
  out(`                                    item, pool.items);`);
  out(`  }`);
  out(`}`);
  out();
  out(`/// Checks the extent and launches the conv grid on \`stream\` (one launch, nothing allocated);`);
  out(`/// with \`ctas\`, only counts the grid's CTAs.`);
  out(`inline cudaError_t launch_conv(const T* u, const T* weights, T* g, int batch, int height, int width, PoolArgs pool,`);
  out(`                               cudaStream_t stream, long long* ctas = nullptr) {`);
  out(`  if (batch <= 0 || height <= 0 || width <= 0 || batch > 65535) return cudaErrorInvalidValue;`);
  out(`  const int tiles_x = (width + G::TW - 1) / G::TW;`);
  out(`  const int full_tiles = ${fullGates.length ? 'tiles_x * ((height + G::TH - 1) / G::TH)' : '0'};`);
  out(`  long long tiles = full_tiles;`);
  for (const g of lowGates) {
    const i = g.index;
    out(`  const int ho_${i} = deltac::scaled_size(height, SCALE_${i}), wo_${i} = deltac::scaled_size(width, SCALE_${i});`);
    out(`  if (ho_${i} < 1 || wo_${i} < 1) return cudaErrorInvalidValue;  // the pooled grid would be empty`);
    out(`  const int tiles_x_${i} = (wo_${i} + G::TW - 2) / (G::TW - 1), tiles_${i} = tiles_x_${i} * ((ho_${i} + G::TH - 2) / (G::TH - 1));`);
    out(`  tiles += tiles_${i};`);
  }
  out(`  tiles += pool.tiles;`);
  out(`  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;`);
  out(`  if (ctas) {`);
  out(`    *ctas = tiles * (HALF / G::CA) * batch;`);
  out(`    return cudaSuccess;`);
  out(`  }`);
  out(`  if (!u || !weights || !g) return cudaErrorInvalidValue;`);
  out(`  if (!deltac::aligned(u, G::P * sizeof(T)) || !deltac::aligned(g, G::P * sizeof(T))) return cudaErrorMisalignedAddress;`);
  out(`  cudaError_t err = deltac::allow_shared_memory(${entry}_conv, SMEM, smem_raised);`);
  out(`  if (err != cudaSuccess) return err;`);
  const lowArgs = lowGates.map((g) => `ho_${g.index}, wo_${g.index}, tiles_x_${g.index}, tiles_${g.index}, `).join('');
  out(`  ${entry}_conv<<<dim3(static_cast<unsigned>(tiles), HALF / G::CA, batch), G::THREADS, SMEM, stream>>>(u, weights, g, height, width,`);
  out(`      tiles_x, full_tiles, ${lowArgs}pool);`);
  out(`  return cudaGetLastError();`);
  out(`}`);
  out();
  out(`/// Profile facts of the conv grid at an extent: info[0] CTAs, [1] threads per CTA, [2] dynamic shared`);
  out(`/// memory per CTA (bytes), [3] registers per thread, [4] CTAs resident per SM (occupancy calculator).`);
  out(`inline cudaError_t conv_launch_info(int batch, int height, int width, int* info) {`);
  out(`  long long ctas = 0;`);
  out(`  cudaError_t err = launch_conv(nullptr, nullptr, nullptr, batch, height, width, PoolArgs{}, nullptr, &ctas);`);
  out(`  if (err != cudaSuccess) return err;`);
  out(`  if ((err = deltac::allow_shared_memory(${entry}_conv, SMEM, smem_raised)) != cudaSuccess) return err;`);
  out(`  cudaFuncAttributes attributes;`);
  out(`  if ((err = cudaFuncGetAttributes(&attributes, ${entry}_conv)) != cudaSuccess) return err;`);
  out(`  int per_sm = 0;`);
  out(`  if ((err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, ${entry}_conv, G::THREADS, SMEM)) != cudaSuccess) return err;`);
  out(`  info[0] = static_cast<int>(ctas), info[1] = G::THREADS, info[2] = static_cast<int>(SMEM), info[3] = attributes.numRegs, info[4] = per_sm;`);
  out(`  return cudaSuccess;`);
  out(`}`);
  return lines;
}

/** The `.cu` file of one configuration (`tiling` overrides the default tile shape, for tuning). */
export function cudaSource(config: PyramidConvConfig, tiling: TilingOverride = {}): string {
  const plan = kernelPlan(config);
  const t = cudaTiling(plan, tiling);
  const { config: c, half, gates, entry } = plan;
  const ns = `deltac_${plan.id}`;
  const esize = c.dtype === 'float16' ? 2 : 4;
  const elem = c.dtype === 'float16' ? '__half' : 'float';
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);

  out(`// Generated by deltac. Do not edit.`);
  out(`//`);
  out(`// Fused pyramid convolution (SPEC.md §6) for ${describe(c)}.`);
  out(`// Computes G [B, H, W, ${gates.length}·${half}] from U [B, H, W, ${c.inner}] (NHWC, contiguous) and the gates'`);
  out(`// [K, K, Ci] weights concatenated in gate order, element type ${elem}, fp32 accumulation.`);
  out(`// One launch: full-res tiles and low-res tiles (pooled, convolved, gated and bilinearly`);
  out(`// upsampled inside the CTA) run in the same grid; nothing but G is written.`);
  out(`//`);
  out(`//   int ${entry}(const void* u, const void* weights, void* out,`);
  out(`//       int batch, int height, int width, void* stream);`);
  out(`//     Returns 0 (cudaSuccess) or a cudaError_t. u and out must be ${t.p * esize}-byte aligned.`);
  out(`//   size_t ${entry}_workspace_size(int batch, int height, int width);  // 0: no workspace`);
  out(`//   int ${entry}_ws(..., void* workspace, ...);  // same (kept for callers of the workspace form)`);
  out(`//   int ${entry}_launch_info(int batch, int height, int width, int* info);`);
  out(`//     info[5]: CTAs, threads per CTA, shared memory per CTA, registers per thread, CTAs resident per SM`);
  out(`//`);
  out(`// Compile: nvcc -std=c++17 -arch=sm_80 (or sm_90) -c ${plan.id}.cu`);
  out();
  out(cudaTemplateText());
  out();
  out(`// Everything of this configuration lives in its own namespace, so that several`);
  out(`// generated files can share one translation unit or library.`);
  out(`namespace ${ns} {`);
  for (const l of cudaConvKernel(plan, t)) out(l);
  out();
  out(`extern "C" size_t ${entry}_workspace_size(int batch, int height, int width) {`);
  out(`  (void)batch, (void)height, (void)width;`);
  out(`  return 0;`);
  out(`}`);
  out();
  out(`extern "C" int ${entry}_ws(const void* u, const void* weights, void* out, void* workspace, int batch, int height,`);
  out(`                           int width, void* stream) {`);
  out(`  (void)workspace;`);
  out(`  return static_cast<int>(launch_conv(static_cast<const T*>(u), static_cast<const T*>(weights), static_cast<T*>(out), batch,`);
  out(`                                      height, width, PoolArgs{}, static_cast<cudaStream_t>(stream)));`);
  out(`}`);
  out();
  out(`extern "C" int ${entry}_launch_info(int batch, int height, int width, int* info) {`);
  out(`  return static_cast<int>(conv_launch_info(batch, height, width, info));`);
  out(`}`);
  out();
  out(`extern "C" int ${entry}(const void* u, const void* weights, void* out, int batch, int height, int width,`);
  out(`                        void* stream) {`);
  out(`  return ${entry}_ws(u, weights, out, nullptr, batch, height, width, stream);`);
  out(`}`);
  out(`}  // namespace ${ns}`);
  return lines.join('\n') + '\n';
}
