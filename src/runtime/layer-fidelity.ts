/**
 * How faithful a ΔConvBlock is to the self-attention it replaces: on the same input
 * tokens, the block's output from the CPU reference (src/reference, SPEC.md §1)
 * against the attention module's output as a runtime computed it, compared by
 * compareArrays:
 *
 *   rel = max|Δ| / max|attn|      the measure `verify` applies to whole models
 *   rms = ‖Δ‖₂ / ‖attn‖₂          relative RMS error over every token and channel
 *
 * rms ≥ 1 means the block is no closer to the attention than an output of zeros,
 * that is, than dropping the layer: its weights do not fit the model.
 */
import { type DeltaConvBlockParams, type DeltaConvBlockWeights, deltaConvBlockReference } from '../reference/delta-conv-block.js';
import { compareArrays } from './compare.js';

export interface Fidelity {
  /** max|Δ| / max|attn|. */
  rel: number;
  /** ‖Δ‖₂ / ‖attn‖₂. */
  rms: number;
}

/**
 * One sample: x [H·W, C] (row-major tokens) and the attention module's output for it
 * [H·W, C]. `attentionBias` [C] is added to every token of the attention output: the
 * to_out bias an optimizer moved into the next node (AttentionMatch.absorbedBias),
 * which the block replaces too.
 */
export function blockFidelity(
  x: Float32Array,
  attention: Float32Array,
  height: number,
  width: number,
  weights: DeltaConvBlockWeights,
  params: DeltaConvBlockParams,
  attentionBias?: ArrayLike<number> | null,
): Fidelity {
  const block = deltaConvBlockReference(x, weights, { batch: 1, height, width }, params);
  let expected = attention;
  if (attentionBias) {
    const c = params.channels;
    expected = Float32Array.from(attention, (v, i) => v + attentionBias[i % c]!);
  }
  const { rel, rms } = compareArrays(block, expected);
  return { rel, rms };
}

/** A relative error as the reports print it: 3 significant digits, exponent below 0.001. */
export function relativeText(v: number): string {
  return Number.isFinite(v) ? (v >= 0.001 ? v.toPrecision(3) : v.toExponential(1)) : String(v);
}

/** rms at or above which a layer's block does not fit: no closer to the attention than dropping the layer. */
export const NO_FIT_RMS = 1;
/** A layer whose rms is at least this many times the median of the model's layers stands out from them. */
export const OUTLIER_FACTOR = 3;

/** `poor`: rms ≥ NO_FIT_RMS; `outlier`: rms ≥ OUTLIER_FACTOR × the median rms of `all`; else `ok`. */
export type FitVerdict = 'ok' | 'outlier' | 'poor';

export function fitVerdict(rms: number, all: readonly number[]): FitVerdict {
  if (!(rms < NO_FIT_RMS)) return 'poor';
  const sorted = [...all].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return rms >= OUTLIER_FACTOR * median ? 'outlier' : 'ok';
}
