/**
 * The few dense products the receptive-field code needs, in float64, written for
 * cache-friendly loops (i-k-j). Row-major throughout.
 */

/** a [n, k] · b [k, m] → [n, m]. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const row = i * m;
    for (let p = 0; p < k; p++) {
      const s = a[i * k + p]!;
      if (s === 0) continue;
      const brow = p * m;
      for (let j = 0; j < m; j++) out[row + j]! += s * b[brow + j]!;
    }
  }
  return out;
}

/** a [n, k] · bᵀ where b is [m, k] → [n, m]. */
export function matmulTransB(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
      out[i * m + j] = s;
    }
  }
  return out;
}

/** Adds a bias [m] to every row of x [n, m] in place. */
export function addBias(x: Float64Array, bias: ArrayLike<number> | null, m: number): Float64Array {
  if (!bias) return x;
  for (let i = 0; i < x.length; i += m) for (let j = 0; j < m; j++) x[i + j]! += bias[j]!;
  return x;
}

/** Rows `rows` of x [n, m]. */
export function pickRows(x: ArrayLike<number>, rows: ArrayLike<number>, m: number): Float64Array {
  const out = new Float64Array(rows.length * m);
  for (let r = 0; r < rows.length; r++) for (let j = 0; j < m; j++) out[r * m + j] = x[rows[r]! * m + j]!;
  return out;
}

/** Σ_c |g[p, c]| for each row p of g [n, c]. */
export function absRowSums(g: ArrayLike<number>, n: number, c: number): Float64Array {
  const out = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.abs(g[p * c + j]!);
    out[p] = s;
  }
  return out;
}
