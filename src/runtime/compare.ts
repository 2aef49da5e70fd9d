/** Comparing an output with its reference (pure: the web page bundles it too). */
import { DeltacError } from '../ir/errors.js';

/**
 * max|a−b| / max|b| (`rel`), ‖a−b‖₂ / ‖b‖₂ (`rms`: the relative RMS error), max|a−b|,
 * max|b| and mean|a−b|. NaN counts as an infinite error.
 */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { maxAbs: number; maxRef: number; rel: number; rms: number; meanAbs: number } {
  if (actual.length !== expected.length) {
    throw new DeltacError('DELTAC_E_VERIFY_MISMATCH', `output sizes differ: ${actual.length} vs ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRef = 0;
  let sum = 0;
  let sqDiff = 0;
  let sqRef = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
    sum += d;
    sqDiff += d * d;
    sqRef += expected[i]! * expected[i]!;
  }
  if (Number.isNaN(sqDiff)) sqDiff = Infinity;
  return {
    maxAbs,
    maxRef,
    rel: maxRef > 0 ? maxAbs / maxRef : maxAbs,
    rms: sqRef > 0 ? Math.sqrt(sqDiff / sqRef) : Math.sqrt(sqDiff),
    meanAbs: sum / Math.max(actual.length, 1),
  };
}
