/**
 * What every backend derives from a PyramidConvConfig before writing code: the
 * entry symbol, which gates run at full resolution and which go through a pooled
 * low-resolution map, and how channels are grouped per workgroup/CTA.
 */
import { DeltacError } from '../ir/errors.js';
import { configId, type PyramidConvConfig } from '../passes/delta-conv/op.js';
import type { DeltaConvBlockWeights } from '../reference/delta-conv-block.js';

/** More gates than any published ΔConvFusion checkpoint uses (2); bounds the generated code. */
export const MAX_GATES = 16;

export interface GatePlan {
  /** Index in gate order (slot of its weights and of its output channels). */
  index: number;
  scale: number;
  /** true: the gate runs on U directly (s = 1); false: pooled to floor(H·s)×floor(W·s). */
  full: boolean;
  /** Index among the low-res gates (workspace slot), −1 for full-res gates. */
  lowIndex: number;
}

export interface KernelPlan {
  id: string;
  /** The C entry point (SPEC.md §6). */
  entry: string;
  /** The C entry point of the whole ΔConvBlock (conv_up, pyramid, conv_out, conv_pool). */
  blockEntry: string;
  config: PyramidConvConfig;
  /** Ci/2: channels of each gate's output. */
  half: number;
  gates: GatePlan[];
  lowGates: GatePlan[];
  /** sqrt(Ci/2), the simple gate's factor. */
  simpleScale: number;
}

export function kernelPlan(config: PyramidConvConfig): KernelPlan {
  const id = configId(config);
  const bad = (why: string) => new DeltacError('DELTAC_E_UNSUPPORTED_MODEL', `cannot generate kernels for ${id}: ${why}`);
  if (!Number.isInteger(config.inner) || config.inner < 2 || config.inner % 2 !== 0) throw bad(`Ci=${config.inner} must be even`);
  if (!Number.isInteger(config.kernel) || config.kernel < 1 || config.kernel % 2 !== 1) throw bad(`K=${config.kernel} must be odd`);
  if (config.kernel > 31) throw bad(`K=${config.kernel} is larger than the kernels support (31)`);
  if (!config.scales.length) throw bad('it has no gates');
  if (config.scales.length > MAX_GATES) throw bad(`it has ${config.scales.length} gates; the kernels support at most ${MAX_GATES}`);
  let low = 0;
  const gates = config.scales.map((scale, index): GatePlan => {
    if (!(scale > 0 && scale <= 1)) throw bad(`gate ${index} has scale ${scale}; scales must lie in (0, 1]`);
    const full = scale === 1;
    return { index, scale, full, lowIndex: full ? -1 : low++ };
  });
  return {
    id,
    entry: `deltac_pyramid_conv_${id}`,
    blockEntry: `deltac_block_${id}`,
    config,
    half: config.inner / 2,
    gates,
    lowGates: gates.filter((g) => !g.full),
    simpleScale: Math.sqrt(config.inner / 2),
  };
}

/** One tensor of the whole-block weight buffer. */
export interface BlockWeightSlot {
  /** Checkpoint name (SPEC.md §2), without the `{block}.conv1.` prefix. */
  name: string;
  shape: number[];
  /** Offset in elements from the start of the buffer. */
  offset: number;
}

/** Every tensor of the block buffer starts at a multiple of this many elements (128 bytes in fp16). */
export const BLOCK_WEIGHT_ALIGN = 64;

/**
 * The whole-block weights as one buffer of the configuration's element type: conv_up
 * weight [Ci, C] and bias [Ci], the gates [S, K, K, Ci], conv_out weight [C, S·Ci/2] and
 * bias [C], conv_pool weight [C, C] and bias [C], in this order, each starting at a
 * multiple of BLOCK_WEIGHT_ALIGN elements (zero padding between them).
 */
export function blockWeightLayout(config: PyramidConvConfig): { slots: BlockWeightSlot[]; elements: number } {
  const { channels: c, inner: ci, kernel: k } = config;
  const s = config.scales.length;
  const shapes: [string, number[]][] = [
    ['conv_up.weight', [ci, c]],
    ['conv_up.bias', [ci]],
    ['gates.conv_spatial.weight', [s, k, k, ci]],
    ['conv_out.weight', [c, (s * ci) / 2]],
    ['conv_out.bias', [c]],
    ['conv_pool.weight', [c, c]],
    ['conv_pool.bias', [c]],
  ];
  let at = 0;
  const slots = shapes.map(([name, shape]) => {
    const slot = { name, shape, offset: at };
    at += Math.ceil(shape.reduce((a, b) => a * b, 1) / BLOCK_WEIGHT_ALIGN) * BLOCK_WEIGHT_ALIGN;
    return slot;
  });
  return { slots, elements: at };
}

/**
 * The block's float32 weights in the blockWeightLayout order (convert to the element type
 * when uploading); a tensor of the wrong size is DELTAC_E_WEIGHT_SHAPE, naming `layer`.
 */
export function packBlockWeights(config: PyramidConvConfig, w: DeltaConvBlockWeights, layer = configId(config)): Float32Array {
  const { slots, elements } = blockWeightLayout(config);
  const arrays = [w.upWeight, w.upBias, w.gateWeights, w.outWeight, w.outBias, w.poolWeight, w.poolBias];
  const out = new Float32Array(elements);
  slots.forEach((slot, i) => {
    const expected = slot.shape.reduce((a, b) => a * b, 1);
    if (arrays[i]!.length !== expected) {
      throw new DeltacError('DELTAC_E_WEIGHT_SHAPE', `${slot.name} has ${arrays[i]!.length} elements, expected [${slot.shape.join(',')}] for ${layer}`);
    }
    out.set(arrays[i]!, slot.offset);
  });
  return out;
}

/** Largest of `candidates` that divides `n`. */
export function largestDivisor(n: number, candidates: readonly number[]): number {
  for (const c of candidates) if (n % c === 0) return c;
  return 1;
}

/**
 * Upper bound on the low-res rows that `tile` consecutive full-res rows interpolate
 * from at scale s: floor((tile−1)·s) + 3, plus one row of slack for float rounding.
 */
export function lowResSpan(tile: number, scale: number): number {
  return Math.floor((tile - 1) * scale) + 4;
}

/** A float literal that C++ and WGSL both read back as the same value. */
export function floatLiteral(v: number): string {
  const s = String(Math.fround(v));
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
