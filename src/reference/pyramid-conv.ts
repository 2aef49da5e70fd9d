/**
 * CPU reference of the fused pyramid convolution (SPEC.md §1, §6): everything a
 * ΔConvBlock does between conv_up and conv_out. Plain loops over NHWC
 * Float32Arrays, written to be read, not to be fast: every generated kernel is
 * tested against these functions.
 */
import { DeltacError } from '../ir/errors.js';
import { adaptiveWindows, type GateKind } from '../passes/delta-conv/op.js';

/** Spatial extent of an NHWC activation. */
export interface Extent {
  batch: number;
  height: number;
  width: number;
}

/** What the pyramid conv needs from a layer's configuration. */
export interface PyramidConvParams {
  /** Ci: channels of U. Must be even (the gate splits it in halves). */
  inner: number;
  /** K: depthwise kernel size (odd). */
  kernel: number;
  /** Spatial scale per gate, e.g. [1, 0.5]. */
  scales: readonly number[];
  gate: GateKind;
}

/** Output size of a gate's pooled grid: floor(size·scale), as the PyTorch module computes it. */
export function scaledSize(size: number, scale: number): number {
  return Math.floor(size * scale);
}

/**
 * PyTorch's AdaptiveAvgPool2d on NHWC data: output cell i averages input rows
 * floor(i·H/Ho) .. ceil((i+1)·H/Ho)-1, and likewise for columns.
 */
export function adaptiveAvgPool2d(src: Float32Array, ext: Extent, channels: number, outH: number, outW: number): Float32Array {
  const { batch, height: H, width: W } = ext;
  const out = new Float32Array(batch * outH * outW * channels);
  const rows = adaptiveWindows(H, outH);
  const cols = adaptiveWindows(W, outW);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < outH; i++) {
      const [r0, r1] = rows[i]!;
      for (let j = 0; j < outW; j++) {
        const [c0, c1] = cols[j]!;
        const count = (r1 - r0) * (c1 - c0);
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let r = r0; r < r1; r++) for (let q = c0; q < c1; q++) sum += src[((b * H + r) * W + q) * channels + c]!;
          out[((b * outH + i) * outW + j) * channels + c] = sum / count;
        }
      }
    }
  }
  return out;
}

/** Rows [r0, r1) × columns [c0, c1) of every image. */
export interface TokenWindow {
  rows: [number, number];
  cols: [number, number];
}

/** The tokens of `w` out of [B, H·W, channels] values, row by row of the window: [B, rows·cols, channels]. */
export function windowTokens(src: Float32Array, ext: Extent, channels: number, w: TokenWindow): Float32Array {
  const { batch, height: H, width: W } = ext;
  const [r0, r1] = w.rows;
  const [c0, c1] = w.cols;
  const row = (c1 - c0) * channels;
  const out = new Float32Array(batch * (r1 - r0) * row);
  let at = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = r0; r < r1; r++) {
      const from = ((b * H + r) * W + c0) * channels;
      out.set(src.subarray(from, from + row), at);
      at += row;
    }
  }
  return out;
}

/**
 * Depthwise 2-D convolution, stride 1, zero padding K//2, no bias. `weights` is
 * [K, K, C] (HWC, the checkpoint layout), read from `weightOffset`. With `only`,
 * just those outputs are computed (the others stay 0).
 */
export function depthwiseConv2d(
  src: Float32Array,
  ext: Extent,
  channels: number,
  weights: Float32Array,
  kernel: number,
  weightOffset = 0,
  only?: TokenWindow,
): Float32Array {
  const { batch, height: H, width: W } = ext;
  const half = kernel >> 1;
  const out = new Float32Array(src.length);
  // one output pixel at a time, every channel together (NHWC: a pixel's channels are contiguous);
  // each channel's sum runs over the taps in the same order, in double precision
  const [y0, y1] = only?.rows ?? [0, H];
  const [x0, x1] = only?.cols ?? [0, W];
  const sum = new Float64Array(channels);
  for (let b = 0; b < batch; b++) {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        sum.fill(0);
        for (let i = 0; i < kernel; i++) {
          const yy = y + i - half;
          if (yy < 0 || yy >= H) continue;
          for (let j = 0; j < kernel; j++) {
            const xx = x + j - half;
            if (xx < 0 || xx >= W) continue;
            const at = ((b * H + yy) * W + xx) * channels;
            const tap = weightOffset + (i * kernel + j) * channels;
            for (let c = 0; c < channels; c++) sum[c]! += src[at + c]! * weights[tap + c]!;
          }
        }
        out.set(sum, ((b * H + y) * W + x) * channels);
      }
    }
  }
  return out;
}

/** The gate: A = first half of the channels, B = second half. Returns [.., C/2]. */
export function applyGate(d: Float32Array, pixels: number, channels: number, gate: GateKind): Float32Array {
  const half = channels / 2;
  const out = new Float32Array(pixels * half);
  const scale = Math.sqrt(half);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < half; c++) {
      const a = d[p * channels + c]!;
      const b = d[p * channels + half + c]!;
      out[p * half + c] = gate === 'simple' ? a * b * scale : a * sigmoid(b);
    }
  }
  return out;
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/**
 * Bilinear resize, align_corners=False, as PyTorch computes it:
 * src = max((dst + 0.5)·in/out − 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in − 1).
 */
export function bilinearResize(src: Float32Array, ext: Extent, channels: number, outH: number, outW: number): Float32Array {
  const { batch, height: H, width: W } = ext;
  const out = new Float32Array(batch * outH * outW * channels);
  const rows = linearTaps(H, outH);
  const cols = linearTaps(W, outW);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < outH; y++) {
      const ry = rows[y]!;
      for (let x = 0; x < outW; x++) {
        const rx = cols[x]!;
        // the four taps' offsets (no closure per element: this loop runs over every pixel and channel)
        const p00 = ((b * H + ry.i0) * W + rx.i0) * channels;
        const p01 = ((b * H + ry.i0) * W + rx.i1) * channels;
        const p10 = ((b * H + ry.i1) * W + rx.i0) * channels;
        const p11 = ((b * H + ry.i1) * W + rx.i1) * channels;
        for (let c = 0; c < channels; c++) {
          out[((b * outH + y) * outW + x) * channels + c] =
            ry.w0 * (rx.w0 * src[p00 + c]! + rx.w1 * src[p01 + c]!) + ry.w1 * (rx.w0 * src[p10 + c]! + rx.w1 * src[p11 + c]!);
        }
      }
    }
  }
  return out;
}

/** The two source taps and weights of each output index of a 1-D half-pixel linear resize. */
export interface LinearTap {
  i0: number;
  i1: number;
  w0: number;
  w1: number;
}

export function linearTaps(inSize: number, outSize: number): LinearTap[] {
  const scale = inSize / outSize;
  const taps: LinearTap[] = [];
  for (let d = 0; d < outSize; d++) {
    const s = Math.max((d + 0.5) * scale - 0.5, 0);
    const i0 = Math.floor(s);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const w1 = s - i0;
    taps.push({ i0, i1, w0: 1 - w1, w1 });
  }
  return taps;
}

/**
 * Which rows of U (along one axis of `size`) the pyramid conv reads for output rows
 * [from, to): for a gate at scale 1, the K×K neighbourhood; below 1, the pooled cells
 * the bilinear taps of those rows read, their K×K neighbourhood on the pooled grid,
 * and the pooling windows of those cells. The union over `scales`, as [first, end).
 */
export function pyramidReads(size: number, from: number, to: number, kernel: number, scales: readonly number[]): [number, number] {
  const half = kernel >> 1;
  let first = size;
  let end = 0;
  for (const scale of scales) {
    if (scale === 1) {
      first = Math.min(first, Math.max(0, from - half));
      end = Math.max(end, Math.min(size, to + half));
      continue;
    }
    const out = scaledSize(size, scale);
    const [lo, hi] = convolvedCells(size, out, from, to, kernel);
    const windows = adaptiveWindows(size, out);
    first = Math.min(first, windows[lo]![0]);
    end = Math.max(end, windows[hi - 1]![1]);
  }
  return [first, end];
}

/**
 * The pooled cells [lo, hi) (of `out` along an axis of `size`) whose depthwise
 * convolution output rows [from, to) of the upsampled gate read: the cells their
 * bilinear taps read, and those cells' K×K neighbourhood.
 */
function convolvedCells(size: number, out: number, from: number, to: number, kernel: number): [number, number] {
  const half = kernel >> 1;
  const taps = linearTaps(out, size).slice(from, to);
  const lo = Math.max(0, Math.min(...taps.map((t) => t.i0)) - half);
  const hi = Math.min(out - 1, Math.max(...taps.map((t) => t.i1)) + half);
  return [lo, hi + 1];
}

/** The pooled cells whose gate values the upsampled rows/columns of `window` read. */
function tappedCells(ext: Extent, out: [number, number], window: TokenWindow): TokenWindow {
  const cells = (size: number, o: number, [from, to]: [number, number]): [number, number] => {
    const taps = linearTaps(o, size).slice(from, to);
    return [Math.min(...taps.map((t) => t.i0)), Math.max(...taps.map((t) => t.i1)) + 1];
  };
  return { rows: cells(ext.height, out[0], window.rows), cols: cells(ext.width, out[1], window.cols) };
}

/**
 * The fused pyramid conv: U [B, H, W, Ci] → G [B, H, W, S·Ci/2], the gates'
 * outputs concatenated in gate order. `gateWeights` is [S, K, K, Ci]. With `only`,
 * the depthwise convolutions run just where those outputs read them: G is exact in
 * the window (and meaningless elsewhere), for U exact where pyramidReads says.
 */
export function pyramidConvReference(
  u: Float32Array,
  gateWeights: Float32Array,
  ext: Extent,
  params: PyramidConvParams,
  only?: TokenWindow,
): Float32Array {
  const { inner: ci, kernel: k, scales, gate } = params;
  const { batch, height: H, width: W } = ext;
  const pixels = batch * H * W;
  checkShapes(u, gateWeights, ext, params);
  const half = ci / 2;
  const outChannels = scales.length * half;
  const out = new Float32Array(pixels * outChannels);
  scales.forEach((scale, g) => {
    const wOffset = g * k * k * ci;
    let gated: Float32Array;
    if (scale === 1) {
      gated = applyGate(depthwiseConv2d(u, ext, ci, gateWeights, k, wOffset, only), pixels, ci, gate);
    } else {
      const ho = scaledSize(H, scale);
      const wo = scaledSize(W, scale);
      const low: Extent = { batch, height: ho, width: wo };
      const pooled = adaptiveAvgPool2d(u, ext, ci, ho, wo);
      const cells = only ? tappedCells(ext, [ho, wo], only) : undefined;
      const lowGated = applyGate(depthwiseConv2d(pooled, low, ci, gateWeights, k, wOffset, cells), batch * ho * wo, ci, gate);
      gated = bilinearResize(lowGated, low, half, H, W);
    }
    for (let p = 0; p < pixels; p++) {
      for (let c = 0; c < half; c++) out[p * outChannels + g * half + c] = gated[p * half + c]!;
    }
  });
  return out;
}

function checkShapes(u: Float32Array, gateWeights: Float32Array, ext: Extent, params: PyramidConvParams): void {
  const { inner: ci, kernel: k, scales } = params;
  const fail = (why: string) => new DeltacError('DELTAC_E_BAD_OPTION', `pyramidConvReference: ${why}`);
  if (ci % 2 !== 0) throw fail(`Ci=${ci} must be even`);
  if (k % 2 !== 1) throw fail(`K=${k} must be odd`);
  if (u.length !== ext.batch * ext.height * ext.width * ci) {
    throw fail(`U has ${u.length} elements, expected ${ext.batch}·${ext.height}·${ext.width}·${ci}`);
  }
  if (gateWeights.length !== scales.length * k * k * ci) {
    throw fail(`gate weights have ${gateWeights.length} elements, expected ${scales.length}·${k}·${k}·${ci}`);
  }
  for (const s of scales) {
    if (!(s > 0 && s <= 1)) throw fail(`scale ${s} must lie in (0, 1]`);
    if (s !== 1 && (scaledSize(ext.height, s) < 1 || scaledSize(ext.width, s) < 1)) {
      throw fail(`scale ${s} pools ${ext.height}×${ext.width} to an empty grid`);
    }
  }
}
