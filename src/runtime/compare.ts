/** Comparing an output with its reference (pure: the web page bundles it too). */
import { DeltacError } from '../ir/errors.js';

/** max|a−b| / max|b| and max|a−b|. */
export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>): { maxAbs: number; maxRef: number; rel: number; meanAbs: number } {
  if (actual.length !== expected.length) {
    throw new DeltacError('DELTAC_E_VERIFY_MISMATCH', `output sizes differ: ${actual.length} vs ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRef = 0;
  let sum = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
    sum += d;
  }
  return { maxAbs, maxRef, rel: maxRef > 0 ? maxAbs / maxRef : maxAbs, meanAbs: sum / Math.max(actual.length, 1) };
}
