/** The seeded query sample of `deltac analyze`. */
import { seededRandom } from '../../runtime/seeded-random.js';

/** `count` distinct indices out of 0…n−1 (all of them when count ≥ n), ascending. */
export function sampleIndices(n: number, count: number, seed: number): Int32Array {
  if (count >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(seed);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  return pool.slice(0, count).sort();
}
