/**
 * Window mass and the smallest K on odd, non-square grids: the one-pass
 * cumulative masses (maps.ts) against a direct sum over each clipped K×K window,
 * and the alignment of a query at the grid's edge.
 */
import { describe, expect, it } from 'vitest';
import { type AlignedMap, AlignedMapBuilder, locality, smallestWindow, windowMass } from '../../src/analysis/analyze/maps.js';
import { seededRandom } from '../helpers/random.js';

/** Mass of the K×K window around the centre, summed cell by cell. */
function directWindowMass(map: AlignedMap, k: number): number {
  const { height: H, width: W, data } = map;
  const r = k >> 1;
  let s = 0;
  for (let y = 0; y < 2 * H - 1; y++) {
    for (let x = 0; x < 2 * W - 1; x++) if (Math.abs(y - (H - 1)) <= r && Math.abs(x - (W - 1)) <= r) s += data[y * (2 * W - 1) + x]!;
  }
  return s;
}

function randomMap(H: number, W: number, seed: number): AlignedMap {
  const rand = seededRandom(seed);
  const n = H * W;
  const b = new AlignedMapBuilder(H, W);
  const queries = Int32Array.from({ length: n }, (_, i) => i);
  const probs = new Float64Array(n * n);
  for (let q = 0; q < n; q++) {
    let z = 0;
    for (let m = 0; m < n; m++) z += probs[q * n + m] = rand() ** 4;
    for (let m = 0; m < n; m++) probs[q * n + m]! /= z;
  }
  b.add(probs, queries);
  return b.result();
}

describe('window mass on odd, non-square grids', () => {
  for (const [H, W] of [[5, 3], [3, 7], [1, 4], [9, 9]] as const) {
    it(`${H}×${W}: every K equals the direct window sum, the whole map sums to 1`, () => {
      const map = randomMap(H, W, H * 31 + W);
      for (let k = 1; k <= 2 * Math.max(H, W) + 3; k += 2) expect(windowMass(map, k)).toBeCloseTo(directWindowMass(map, k), 12);
      expect(locality(map).whole).toBeCloseTo(1, 12);
      for (const f of [0.5, 0.8, 0.9]) {
        const k = smallestWindow(map, f);
        expect(directWindowMass(map, k)).toBeGreaterThanOrEqual(f - 1e-12);
        if (k > 1) expect(directWindowMass(map, k - 2)).toBeLessThan(f - 1e-12);
      }
    });
  }

  it('a corner query of a 5×3 grid lands its own token at the centre and the opposite corner at the far edge', () => {
    const H = 5;
    const W = 3;
    const n = H * W;
    const b = new AlignedMapBuilder(H, W);
    // query (4, 2) attends half to itself, half to token (0, 0)
    const probs = new Float64Array(n);
    probs[n - 1] = 0.5;
    probs[0] = 0.5;
    b.add(probs, [n - 1]);
    const map = b.result();
    const gw = 2 * W - 1;
    expect(map.data[(H - 1) * gw + (W - 1)]).toBe(0.5);
    expect(map.data[0]).toBe(0.5);
    expect(smallestWindow(map, 0.5)).toBe(1);
    expect(smallestWindow(map, 0.9)).toBe(2 * Math.max(H, W) - 1);
    expect(windowMass(map, 2 * W - 1)).toBe(0.5);
  });
});
