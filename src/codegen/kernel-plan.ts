/**
 * What every backend derives from a PyramidConvConfig before writing code: the
 * entry symbol, which gates run at full resolution and which go through a pooled
 * low-resolution map, and how channels are grouped per workgroup/CTA.
 */
import { DeltacError } from '../ir/errors.js';
import { configId, type PyramidConvConfig } from '../passes/delta-conv/op.js';

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
    config,
    half: config.inner / 2,
    gates,
    lowGates: gates.filter((g) => !g.full),
    simpleScale: Math.sqrt(config.inner / 2),
  };
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
