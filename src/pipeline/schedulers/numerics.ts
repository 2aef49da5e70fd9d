/**
 * The few torch and numpy computations the schedulers are built from, written to round
 * as those libraries do, so that deltac's timesteps and steps match diffusers' (which runs
 * them in float32 torch, with the timestep grids in float64 numpy) to the last bit where
 * it matters: timesteps exactly, steps to float32 rounding.
 *
 * Convention in the scheduler files: `f32(x)` after every arithmetic operation on a value
 * that torch holds as a float32 tensor (0-d tensors included); plain JS numbers are numpy's
 * or Python's float64.
 */

/** Rounds to float32, as every torch float32 operation does. */
export const f32 = Math.fround;

/** `torch.linspace(start, end, steps, dtype=torch.float32)` on the CPU. */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  // aten's (scalar) linspace kernel: start/end/step in float32; the first half counts up
  // from start, the second half down from end, so both ends are exact. `start + step·i` is
  // one fused multiply-add in the builds torch ships for AVX2/AVX-512 and ARM (the compiler
  // contracts it); this reproduces more of diffusers' traces bit for bit than two roundings
  // (11560 against 11144 of the 15696 step outputs of the shared references).
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    // step·i is exact in double; the sum is rounded in double, then to float32, which differs
    // from the fma's single rounding only at exact float32 midpoints
    out[i] = i < halfway ? f32(step * i + s) : f32(e - step * (steps - i - 1));
  }
  return out;
}

/** `torch.cumprod(x, 0)` of a float32 tensor on the CPU: the running product is kept in double. */
export function torchCumprodF32(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  let acc = 1;
  for (let i = 0; i < x.length; i++) {
    acc *= x[i]!;
    out[i] = acc;
  }
  return out;
}

/** `numpy.linspace(start, stop, num)` (float64). */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** `numpy.arange(start, stop, step)` (float64): numpy fills `start + i * (second - start)`. */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length === 0) return [];
  const delta = start + step - start;
  return Array.from({ length }, (_, i) => (i === 0 ? start : i === 1 ? start + step : start + i * delta));
}

/** `numpy.round` with no decimals: half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `numpy.interp(x, [0, 1, …, fp.length-1], fp)` for x inside the grid. */
export function interpOnIndexGrid(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const j = Math.floor(x);
  const slope = (fp[j + 1]! - fp[j]!) / 1;
  return slope * (x - j) + fp[j]!;
}

/** Elementwise float32 map into a new array. */
export function map32(n: number, fn: (i: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = fn(i);
  return out;
}

// numpy's float32 log (AVX2/FMA3 and AVX512F loops, which numpy uses on every x86-64 CPU
// that has them): log x = k·ln 2 + P(y−1)/Q(y−1), x = 2^k·y, y ∈ (√½, √2], with fused
// multiply-adds. It is not correctly rounded (≤ 3.83 ulp), and diffusers' fractional
// timesteps (Karras, exponential σ ladders) depend on its last bit.
const LOG_P = [0, 9.999999999999998702752e-1, 2.112677543073053063722, 1.480000633576506585156, 3.808837741388407920751e-1, 2.589979117907922693523e-2].map(f32);
const LOG_Q = [1, 2.612677543073109236779, 2.453006071784736363091, 9.864942958519418960339e-1, 1.546476374983906719538e-1, 5.875095403124574342950e-3].map(f32);
const LN2_F32 = f32(Math.LN2);
const SQRT1_2_F32 = f32(Math.SQRT1_2);

/** fma in float32 (a·b is exact in double; the sum is rounded twice, which can differ from one rounding only at exact float32 midpoints). */
const fma32 = (a: number, b: number, c: number) => f32(a * b + c);

/** `numpy.log` of a float32 value (positive, normal). */
export function npLogF32(x: number): number {
  if (!(x > 0) || x === Infinity) return f32(Math.log(x));
  let exponent = Math.floor(Math.log2(x));
  if (2 ** exponent > x) exponent--;
  else if (2 ** (exponent + 1) <= x) exponent++;
  let y = x / 2 ** (exponent + 1); // in [0.5, 1), exact
  let k = exponent + 1;
  if (y <= SQRT1_2_F32) {
    y += y;
    k -= 1;
  }
  const r = f32(y - 1);
  let num = fma32(LOG_P[5]!, r, LOG_P[4]!);
  for (let i = 3; i >= 0; i--) num = fma32(num, r, LOG_P[i]!);
  let den = fma32(LOG_Q[5]!, r, LOG_Q[4]!);
  for (let i = 3; i >= 0; i--) den = fma32(den, r, LOG_Q[i]!);
  return fma32(k, LN2_F32, f32(num / den));
}
