/**
 * Centroid-aligned attention maps and locality (seed §A, §G).
 *
 * A query at (qy, qx) of an H×W token grid attends with probabilities P[m] over
 * keys m = (my, mx). Its map is shifted so that the query sits at the centre of a
 * (2H−1)×(2W−1) grid: P[m] lands at (my − qy + H − 1, mx − qx + W − 1). Averaging
 * the shifted maps over queries, heads and inputs gives the layer's map; each
 * query's map sums to 1, so the average does too, and the mass inside the K×K
 * window around the centre is the share of attention that a K×K convolution
 * window around the query would see.
 */

/** The window sizes the locality table reports (the paper's Table III range and NA's 17). */
export const WINDOW_SIZES = [3, 5, 7, 9, 13, 17, 25] as const;
/** Mass thresholds for "the smallest K that holds …". */
export const MASS_THRESHOLDS = [0.5, 0.8, 0.9] as const;
/** The threshold behind the recommended K per resolution level. */
export const RECOMMEND_MASS = 0.8;

export interface AlignedMap {
  /** (2H−1)×(2W−1), row-major, sums to 1. */
  data: Float64Array;
  height: number;
  width: number;
  /** Rows (query × head × input) averaged. */
  rows: number;
}

/**
 * Accumulates rows of attention probabilities into an aligned map. Row r of
 * `probs` ([R, N], N = H·W) is the map of query `queries[r % queries.length]`
 * (the layout of a Gather of Q queries on the query axis of [..., N, N]).
 */
export class AlignedMapBuilder {
  readonly sum: Float64Array;
  rows = 0;

  constructor(
    readonly height: number,
    readonly width: number,
  ) {
    this.sum = new Float64Array((2 * height - 1) * (2 * width - 1));
  }

  add(probs: ArrayLike<number>, queries: ArrayLike<number>): void {
    const { height: H, width: W } = this;
    const n = H * W;
    const gw = 2 * W - 1;
    const rows = probs.length / n;
    if (!Number.isInteger(rows)) throw new Error(`attention rows of ${probs.length} values do not divide into ${n} tokens`);
    for (let r = 0; r < rows; r++) {
      const q = queries[r % queries.length]!;
      const qy = Math.floor(q / W);
      const qx = q % W;
      const base = r * n;
      for (let my = 0; my < H; my++) {
        const dst = (my - qy + H - 1) * gw + (W - 1 - qx);
        const src = base + my * W;
        for (let mx = 0; mx < W; mx++) this.sum[dst + mx]! += probs[src + mx]!;
      }
    }
    this.rows += rows;
  }

  result(): AlignedMap {
    const data = this.sum.map((v) => v / Math.max(this.rows, 1));
    return { data, height: this.height, width: this.width, rows: this.rows };
  }
}

/**
 * Cumulative mass by window: entry r is the mass inside the (2r+1)×(2r+1) window
 * around the centre, r = 0 … max(H, W) − 1 (the last is the whole map). A cell
 * (dy, dx) lies in that window when max(|dy|, |dx|) ≤ r, so one pass over the map
 * gives every window.
 */
export function windowMasses(map: AlignedMap): Float64Array {
  const { height: H, width: W, data } = map;
  const gw = 2 * W - 1;
  const out = new Float64Array(Math.max(H, W));
  for (let y = 0; y < 2 * H - 1; y++) {
    for (let x = 0; x < gw; x++) out[Math.max(Math.abs(y - (H - 1)), Math.abs(x - (W - 1)))]! += data[y * gw + x]!;
  }
  for (let r = 1; r < out.length; r++) out[r]! += out[r - 1]!;
  return out;
}

/** Share of the map's mass inside the K×K window around the centre (K odd; clipped to the grid). */
export function windowMass(map: AlignedMap, k: number, masses = windowMasses(map)): number {
  return masses[Math.min(k >> 1, masses.length - 1)]!;
}

/** The largest window that still adds mass: 2·max(H, W) − 1. */
export function fullWindow(height: number, width: number): number {
  return 2 * Math.max(height, width) - 1;
}

/** Smallest odd K whose window holds at least `fraction` of the mass (fullWindow at most). */
export function smallestWindow(map: AlignedMap, fraction: number, masses = windowMasses(map)): number {
  const total = masses[masses.length - 1]!;
  for (let r = 0; r < masses.length - 1; r++) if (masses[r]! >= fraction * total - 1e-12) return 2 * r + 1;
  return fullWindow(map.height, map.width);
}

export interface Locality {
  /** Mass inside K×K for each K of WINDOW_SIZES, and the whole map (1 up to rounding). */
  windows: { k: number; mass: number }[];
  whole: number;
  /** Smallest K holding 50 / 80 / 90 %. */
  smallestK: { fraction: number; k: number }[];
}

export function locality(map: AlignedMap): Locality {
  const masses = windowMasses(map);
  return {
    windows: WINDOW_SIZES.map((k) => ({ k, mass: windowMass(map, k, masses) })),
    whole: masses[masses.length - 1]!,
    smallestK: MASS_THRESHOLDS.map((fraction) => ({ fraction, k: smallestWindow(map, fraction, masses) })),
  };
}

/** Table cells of a locality: the mass per WINDOW_SIZES entry and the smallest K per MASS_THRESHOLDS entry (undefined without a map). */
export function localityCells(loc: Locality | null): { masses: (number | undefined)[]; smallestK: (number | undefined)[] } {
  return {
    masses: WINDOW_SIZES.map((k) => loc?.windows.find((w) => w.k === k)?.mass),
    smallestK: MASS_THRESHOLDS.map((f) => loc?.smallestK.find((s) => s.fraction === f)?.k),
  };
}

/** The mean of several maps of one size (a resolution level). */
export function meanMap(maps: AlignedMap[]): AlignedMap {
  const first = maps[0]!;
  const data = new Float64Array(first.data.length);
  for (const m of maps) for (let i = 0; i < data.length; i++) data[i]! += m.data[i]! / maps.length;
  return { data, height: first.height, width: first.width, rows: maps.reduce((a, m) => a + m.rows, 0) };
}
