/**
 * CPU reference of the whole ΔConvBlock (SPEC.md §1): tokens x [B, N, C] → [B, N, C].
 * conv_up, the pyramid conv, conv_out and the global-mean conv_pool, in plain loops.
 */
import { DeltacError } from '../ir/errors.js';
import type { Node } from '../ir/node.js';
import { PyramidInput, pyramidConvConfig, type PyramidConvConfig } from '../passes/delta-conv/op.js';
import { LINEAR_WASM_BASE64 } from './linear-wasm.js';
import { pyramidConvReference, pyramidReads, windowTokens, type Extent, type PyramidConvParams, type TokenWindow } from './pyramid-conv.js';

/** A ΔConvBlock's weights as float32, in the layouts of the PyramidConvBlock node (op.ts). */
export interface DeltaConvBlockWeights {
  /** conv_up.weight [Ci, C] */
  upWeight: Float32Array;
  /** conv_up.bias [Ci] */
  upBias: Float32Array;
  /** gates' conv_spatial weights [S, K, K, Ci] */
  gateWeights: Float32Array;
  /** conv_out.weight [C, S·Ci/2] */
  outWeight: Float32Array;
  /** conv_out.bias [C] */
  outBias: Float32Array;
  /** conv_pool.weight [C, C] */
  poolWeight: Float32Array;
  /** conv_pool.bias [C] */
  poolBias: Float32Array;
}

export interface DeltaConvBlockParams extends PyramidConvParams {
  /** C: token channels. */
  channels: number;
}

/**
 * The part of the WebAssembly JS API used here (typed locally: the build's libraries,
 * ES2023 and Node's, do not declare it; the DOM's does).
 */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** linear.wat's exports, instantiated on first use in each thread (worker_threads included). */
interface LinearKernel {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  /** The arguments are byte addresses in `memory`, then rows, inDim, outDim. */
  linear(x: number, w: number, bias: number, y: number, rows: number, inDim: number, outDim: number): void;
}

/** undefined: not tried yet; null: this engine has no WebAssembly SIMD. */
let linearKernelOnce: LinearKernel | null | undefined;

function linearKernel(): LinearKernel | null {
  if (linearKernelOnce === undefined) {
    const bytes = Uint8Array.from(atob(LINEAR_WASM_BASE64), (c) => c.charCodeAt(0));
    // Compiled synchronously: Chrome allows that on its main thread for modules under 4 KB
    // (test/reference/linear.test.ts checks the size).
    linearKernelOnce = wasm.validate(bytes) ? (new wasm.Instance(new wasm.Module(bytes)).exports as LinearKernel) : null;
  }
  return linearKernelOnce;
}

/** A multiple of 16 at or above n (the kernel's arrays start on 16 bytes). */
const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * y[p, o] = sum_i x[p, i]·w[o, i] + bias[o]  (a Linear layer on `rows` rows), by the
 * WebAssembly SIMD kernel of linear.wat (or by `linearJs` where the engine has no SIMD).
 * The kernel sums in float32, in four lanes (lane k adds the terms i ≡ k mod 4 in order;
 * then the lanes, then the bias), so its results are not `linearJs`'s (float64 sums
 * rounded once) bit for bit: they differ by float32 rounding, which grows like √inDim:
 * on random normal data, max |Δ| is about 4e-7 of max |y| for inDim = 1280 (tests:
 * ≤ 2e-6). A NaN in x makes its row's outputs NaN, as in any sum.
 */
export function linear(x: Float32Array, rows: number, inDim: number, w: Float32Array, bias: Float32Array, outDim: number): Float32Array {
  const kernel = linearKernel();
  if (!kernel) return linearJs(x, rows, inDim, w, bias, outDim);
  // x, w, bias and y one after the other in the kernel's memory, grown when too small
  const xAt = 0;
  const wAt = align16(xAt + 4 * rows * inDim);
  const biasAt = align16(wAt + 4 * outDim * inDim);
  const yAt = align16(biasAt + 4 * outDim);
  const end = yAt + 4 * rows * outDim;
  const short = end - kernel.memory.buffer.byteLength;
  if (short > 0) kernel.memory.grow(Math.ceil(short / 65536));
  const heap = new Float32Array(kernel.memory.buffer);
  heap.set(x.subarray(0, rows * inDim), xAt / 4);
  heap.set(w.subarray(0, outDim * inDim), wAt / 4);
  heap.set(bias.subarray(0, outDim), biasAt / 4);
  kernel.linear(xAt, wAt, biasAt, yAt, rows, inDim, outDim);
  return heap.slice(yAt / 4, end / 4);
}

/**
 * `linear` in plain JS, the fallback where WebAssembly SIMD is missing: every sum is in
 * float64, bias first, then the terms in order i = 0, 1, …, rounded to float32 once.
 * Four rows and four outputs share each pass over the inputs (sixteen sums in
 * registers: about four times as fast as one dot product at a time).
 */
export function linearJs(x: Float32Array, rows: number, inDim: number, w: Float32Array, bias: Float32Array, outDim: number): Float32Array {
  const y = new Float32Array(rows * outDim);
  const dot = (p: number, o: number) => {
    let sum = bias[o]!;
    for (let i = 0; i < inDim; i++) sum += x[p * inDim + i]! * w[o * inDim + i]!;
    y[p * outDim + o] = sum;
  };
  let p = 0;
  for (; p + 4 <= rows; p += 4) {
    const x0 = p * inDim;
    const x1 = x0 + inDim;
    const x2 = x1 + inDim;
    const x3 = x2 + inDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const wa = o * inDim;
      const wb = wa + inDim;
      const wc = wb + inDim;
      const wd = wc + inDim;
      let a0 = bias[o]!, a1 = a0, a2 = a0, a3 = a0;
      let b0 = bias[o + 1]!, b1 = b0, b2 = b0, b3 = b0;
      let c0 = bias[o + 2]!, c1 = c0, c2 = c0, c3 = c0;
      let d0 = bias[o + 3]!, d1 = d0, d2 = d0, d3 = d0;
      for (let i = 0; i < inDim; i++) {
        const q0 = x[x0 + i]!;
        const q1 = x[x1 + i]!;
        const q2 = x[x2 + i]!;
        const q3 = x[x3 + i]!;
        const u = w[wa + i]!;
        a0 += q0 * u; a1 += q1 * u; a2 += q2 * u; a3 += q3 * u;
        const v = w[wb + i]!;
        b0 += q0 * v; b1 += q1 * v; b2 += q2 * v; b3 += q3 * v;
        const s = w[wc + i]!;
        c0 += q0 * s; c1 += q1 * s; c2 += q2 * s; c3 += q3 * s;
        const t = w[wd + i]!;
        d0 += q0 * t; d1 += q1 * t; d2 += q2 * t; d3 += q3 * t;
      }
      const y0 = p * outDim + o;
      const y1 = y0 + outDim;
      const y2 = y1 + outDim;
      const y3 = y2 + outDim;
      y[y0] = a0; y[y1] = a1; y[y2] = a2; y[y3] = a3;
      y[y0 + 1] = b0; y[y1 + 1] = b1; y[y2 + 1] = b2; y[y3 + 1] = b3;
      y[y0 + 2] = c0; y[y1 + 2] = c1; y[y2 + 2] = c2; y[y3 + 2] = c3;
      y[y0 + 3] = d0; y[y1 + 3] = d1; y[y2 + 3] = d2; y[y3 + 3] = d3;
    }
    for (; o < outDim; o++) for (let q = p; q < p + 4; q++) dot(q, o);
  }
  for (; p < rows; p++) for (let o = 0; o < outDim; o++) dot(p, o);
  return y;
}

/** The whole block: x [B, H·W, C] (row-major tokens) → [B, H·W, C]. */
export function deltaConvBlockReference(
  x: Float32Array,
  weights: DeltaConvBlockWeights,
  ext: Extent,
  params: DeltaConvBlockParams,
): Float32Array {
  const { channels: c, inner: ci, scales } = params;
  const { batch, height: H, width: W } = ext;
  const n = H * W;
  if (x.length !== batch * n * c) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReference: x has ${x.length} elements, expected ${batch}·${n}·${c}`);
  }
  const gOut = (scales.length * ci) / 2;
  const u = linear(x, batch * n, c, weights.upWeight, weights.upBias, ci);
  const g = pyramidConvReference(u, weights.gateWeights, ext, params);
  const y = linear(g, batch * n, gOut, weights.outWeight, weights.outBias, c);
  return addPooled(y, x, batch, n, n, c, weights);
}

/** y [B, tokens, C] += conv_pool(the mean of each image's n tokens of x [B, n, C]): the block's global term. */
function addPooled(y: Float32Array, x: Float32Array, batch: number, n: number, tokens: number, c: number, weights: DeltaConvBlockWeights): Float32Array {
  for (let b = 0; b < batch; b++) {
    const mean = new Float32Array(c);
    for (let t = 0; t < n; t++) for (let k = 0; k < c; k++) mean[k]! += x[(b * n + t) * c + k]!;
    for (let k = 0; k < c; k++) mean[k]! /= n;
    const pooled = linear(mean, 1, c, weights.poolWeight, weights.poolBias, c);
    for (let t = 0; t < tokens; t++) for (let k = 0; k < c; k++) y[(b * tokens + t) * c + k]! += pooled[k]!;
  }
  return y;
}

/**
 * The block's output at the tokens of `window` only, [B, rows·cols, C] (row-major in
 * the window), as deltaConvBlockReference computes them: conv_up runs only on the
 * tokens the pyramid reads for the window (pyramidReads; the others stay zero and are
 * never read for it), the depthwise convolutions only where the window reads them,
 * conv_out and the pooled term only on the window. For large images, where the whole
 * block would cost N·C·Ci per token.
 */
export function deltaConvBlockReferenceAt(
  x: Float32Array,
  weights: DeltaConvBlockWeights,
  ext: Extent,
  params: DeltaConvBlockParams,
  window: TokenWindow,
): Float32Array {
  const { channels: c, inner: ci, kernel, scales } = params;
  const { batch, height: H, width: W } = ext;
  const n = H * W;
  if (x.length !== batch * n * c) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReferenceAt: x has ${x.length} elements, expected ${batch}·${n}·${c}`);
  }
  const [r0, r1] = window.rows;
  const [c0, c1] = window.cols;
  if (!(0 <= r0 && r0 < r1 && r1 <= H && 0 <= c0 && c0 < c1 && c1 <= W)) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `deltaConvBlockReferenceAt: window [${r0}, ${r1})×[${c0}, ${c1}) is not inside ${H}×${W}`);
  }
  const [u0, u1] = pyramidReads(H, r0, r1, kernel, scales);
  const [v0, v1] = pyramidReads(W, c0, c1, kernel, scales);
  const u = new Float32Array(batch * n * ci);
  for (let b = 0; b < batch; b++) {
    for (let r = u0; r < u1; r++) {
      const at = (b * H + r) * W;
      const row = linear(x.subarray((at + v0) * c, (at + v1) * c), v1 - v0, c, weights.upWeight, weights.upBias, ci);
      u.set(row, (at + v0) * ci);
    }
  }
  const g = pyramidConvReference(u, weights.gateWeights, ext, params, window);
  const gOut = (scales.length * ci) / 2;
  const wh = r1 - r0;
  const ww = c1 - c0;
  const picked = windowTokens(g, ext, gOut, window);
  const y = linear(picked, batch * wh * ww, gOut, weights.outWeight, weights.outBias, c);
  return addPooled(y, x, batch, n, wh * ww, c, weights);
}

/**
 * Reads the weights and configuration of an `ai.deltac.PyramidConvBlock` node
 * (its weight inputs must be initializers).
 */
export function deltaConvBlockFromNode(node: Node): { config: PyramidConvConfig; weights: DeltaConvBlockWeights } {
  return {
    config: pyramidConvConfig(node),
    weights: weightsOfSlots(node.name, (slot) => node.inputs[slot]?.initializer?.toFloat32() ?? null),
  };
}

/** A PyramidConvBlock's weights from its weight inputs, `read` by slot (null: not a constant). */
export function weightsOfSlots(node: string, read: (slot: PyramidInput) => Float32Array | null): DeltaConvBlockWeights {
  const need = (slot: PyramidInput, what: string): Float32Array => {
    const w = read(slot);
    if (!w) throw new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `PyramidConvBlock "${node}": ${what} is not a constant initializer; kernels need constant weights`);
    return w;
  };
  return {
    upWeight: need(PyramidInput.UpWeight, 'conv_up.weight'),
    upBias: need(PyramidInput.UpBias, 'conv_up.bias'),
    gateWeights: need(PyramidInput.GateWeights, 'the gate weights'),
    outWeight: need(PyramidInput.OutWeight, 'conv_out.weight'),
    outBias: need(PyramidInput.OutBias, 'conv_out.bias'),
    poolWeight: need(PyramidInput.PoolWeight, 'conv_pool.weight'),
    poolBias: need(PyramidInput.PoolBias, 'conv_pool.bias'),
  };
}
