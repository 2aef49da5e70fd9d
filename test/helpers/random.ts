/** Seeded randomness for tests and benchmarks. */

export { seededRandom } from '../../src/runtime/seeded-random.js';

/** FNV-1a hash of a string (32 bit): seeds that depend on a tensor's name only. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
