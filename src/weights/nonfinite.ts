/**
 * NaN and ±Inf in float weights. One NaN in a ΔConvBlock weight makes every
 * output of the converted model NaN, so deltac refuses such tensors with
 * DELTAC_E_WEIGHTS_NONFINITE instead of writing a model that renders black images.
 *
 * The scan reads the bytes where they are (a typed-array view, no copy) and tests
 * the exponent bits: all ones means NaN or ±Inf in every IEEE-style format
 * (f32 0x7f800000, f16 0x7c00, bf16 0x7f80, f64 0x7ff00000 in the high word).
 * Unaligned bytes go through a small reused scratch buffer, never a whole copy.
 * A branch-free first pass (x·0 sums to NaN iff some x is NaN/±Inf) runs at memory
 * speed; counting and locating runs only when it finds something.
 */
import { DataType, dtypeName, isFloatType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';

export interface NonFiniteSummary {
  /** Non-finite elements in all. */
  count: number;
  nan: number;
  posInf: number;
  negInf: number;
  /** Flat index of the first non-finite element. */
  first: number;
}

/** Bytes per element and the bit masks of exponent, mantissa and sign (in the word holding the exponent). */
type Format = { size: 2 | 4 | 8; exp: number; mant: number; sign: number };

/** Float types the scan understands; other element types cannot hold NaN/Inf. */
const FORMATS: Partial<Record<DataType, Format>> = {
  [DataType.FLOAT]: { size: 4, exp: 0x7f800000, mant: 0x007fffff, sign: 0x80000000 },
  [DataType.FLOAT16]: { size: 2, exp: 0x7c00, mant: 0x03ff, sign: 0x8000 },
  [DataType.BFLOAT16]: { size: 2, exp: 0x7f80, mant: 0x007f, sign: 0x8000 },
  // f64: the high little-endian word carries sign, exponent and the top 20 mantissa bits
  [DataType.DOUBLE]: { size: 8, exp: 0x7ff00000, mant: 0x000fffff, sign: 0x80000000 },
};

/** Bytes per scratch chunk for unaligned input (a multiple of 8). */
const CHUNK = 1 << 16;

/**
 * Counts the NaN/±Inf elements of little-endian `data` (bytes, or a typed array's
 * elements as bytes) of element type `dtype`; null when all are finite (or the type is
 * not a float type). `offset` is added to the reported first index (for callers that
 * scan a tensor in pieces).
 */
export function scanNonFinite(data: ArrayBufferView, dtype: DataType, offset = 0): NonFiniteSummary | null {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const f = FORMATS[dtype];
  if (!f) return null;
  const n = Math.floor(bytes.byteLength / f.size);
  if (bytes.byteOffset % f.size === 0) return scanAligned(bytes.buffer, bytes.byteOffset, n, f, offset);
  // Unaligned (e.g. a tensor inside a protobuf buffer): copy piecewise into aligned scratch.
  const scratch = new Uint8Array(Math.min(CHUNK, n * f.size));
  let total: NonFiniteSummary | null = null;
  for (let start = 0; start < n; ) {
    const count = Math.min(n - start, scratch.byteLength / f.size);
    scratch.set(bytes.subarray(start * f.size, (start + count) * f.size));
    const part = scanAligned(scratch.buffer, 0, count, f, offset + start);
    if (part) total = total ? mergeNonFinite(total, part) : part;
    start += count;
  }
  return total;
}

function scanAligned(buffer: ArrayBufferLike, byteOffset: number, n: number, f: Format, offset: number): NonFiniteSummary | null {
  // The fast test (no branch per element) says whether anything is there; the count
  // and the first index come from a second, slower pass only when it is.
  const suspect =
    f.size === 4 ? anyNonFiniteF32(new Float32Array(buffer, byteOffset, n))
    : f.size === 8 ? anyNonFiniteF64(new Float64Array(buffer, byteOffset, n))
    : anyNonFinite16(buffer, byteOffset, n, f.exp);
  return suspect ? summarize(buffer, byteOffset, n, f, offset) : null;
}

/** x·0 is ±0 for finite x and NaN for NaN/±Inf: the sums are NaN iff some element is. */
function anyNonFiniteF32(x: Float32Array): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i + 4 <= x.length; i += 4) {
    a += x[i]! * 0;
    b += x[i + 1]! * 0;
    c += x[i + 2]! * 0;
    d += x[i + 3]! * 0;
  }
  for (; i < x.length; i++) a += x[i]! * 0;
  return Number.isNaN(a + b + c + d);
}

function anyNonFiniteF64(x: Float64Array): boolean {
  let a = 0;
  let b = 0;
  let i = 0;
  for (; i + 2 <= x.length; i += 2) {
    a += x[i]! * 0;
    b += x[i + 1]! * 0;
  }
  for (; i < x.length; i++) a += x[i]! * 0;
  return Number.isNaN(a + b);
}

/**
 * 16-bit formats, two elements per 32-bit word when aligned: an element is non-finite when
 * its exponent bits are all ones. Branch-free (SWAR): x = (w & mask) ^ mask has a zero
 * 16-bit lane exactly where an element is non-finite, and since every lane of x is below
 * 0x8000, (x − 0x00010001) sets a lane's top bit only when that lane (or, through the
 * borrow, a lower one) is zero.
 */
function anyNonFinite16(buffer: ArrayBufferLike, byteOffset: number, n: number, exp: number): boolean {
  let i = 0;
  let a = 0;
  let b = 0;
  if (byteOffset % 4 === 0) {
    const words = new Uint32Array(buffer, byteOffset, n >> 1);
    const mask = exp | (exp << 16);
    let k = 0;
    for (; k + 2 <= words.length; k += 2) {
      a |= (((words[k]! & mask) ^ mask) - 0x00010001) & 0x80008000;
      b |= (((words[k + 1]! & mask) ^ mask) - 0x00010001) & 0x80008000;
    }
    for (; k < words.length; k++) a |= (((words[k]! & mask) ^ mask) - 0x00010001) & 0x80008000;
    i = words.length * 2;
  }
  const halves = new Uint16Array(buffer, byteOffset, n);
  for (; i < n; i++) if ((halves[i]! & exp) === exp) return true;
  return (a | b) !== 0;
}

function summarize(buffer: ArrayBufferLike, byteOffset: number, n: number, f: Format, offset: number): NonFiniteSummary | null {
  // words[i * stride + hi] is the word holding element i's exponent
  const words = f.size === 2 ? new Uint16Array(buffer, byteOffset, n) : new Uint32Array(buffer, byteOffset, n * (f.size / 4));
  const stride = f.size === 8 ? 2 : 1;
  const hi = f.size === 8 ? 1 : 0;
  const { exp, mant, sign } = f;
  let s: NonFiniteSummary | null = null;
  for (let i = 0; i < n; i++) {
    const w = words[i * stride + hi]!;
    if ((w & exp) !== exp) continue;
    s ??= { count: 0, nan: 0, posInf: 0, negInf: 0, first: offset + i };
    s.count++;
    // f64 needs the low word too to tell Inf (all-zero mantissa) from NaN
    const mantissa = (w & mant) | (f.size === 8 ? words[i * stride]! : 0);
    if (mantissa !== 0) s.nan++;
    else if (w & sign) s.negInf++;
    else s.posInf++;
  }
  return s;
}

/** Two scans' summaries as one (of a tensor scanned in pieces). */
export function mergeNonFinite(a: NonFiniteSummary, b: NonFiniteSummary): NonFiniteSummary {
  return {
    count: a.count + b.count,
    nan: a.nan + b.nan,
    posInf: a.posInf + b.posInf,
    negInf: a.negInf + b.negInf,
    first: Math.min(a.first, b.first),
  };
}

/** `[i, j, …]` of flat index `flat` in a row-major tensor of `dims`. */
export function unflattenIndex(flat: number, dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length).fill(0);
  for (let d = dims.length - 1; d >= 0; d--) {
    const size = dims[d]!;
    if (size <= 0) break;
    out[d] = flat % size;
    flat = Math.floor(flat / size);
  }
  return out;
}

/** "1 NaN", "2 values: 1 NaN, 1 +Inf" … */
export function describeNonFinite(s: NonFiniteSummary): string {
  const kinds = [
    s.nan ? `${s.nan} NaN` : '',
    s.posInf ? `${s.posInf} +Inf` : '',
    s.negInf ? `${s.negInf} -Inf` : '',
  ].filter(Boolean);
  return kinds.length === 1 ? kinds[0]! : `${s.count} non-finite values (${kinds.join(', ')})`;
}

/**
 * Throws DELTAC_E_WEIGHTS_NONFINITE when the tensor holds NaN or ±Inf. `name` is
 * the tensor's key or initializer name, `where` says whose it is (e.g. `checkpoint
 * "delta.safetensors"`), `hint` what to do.
 */
export function assertFinite(tensor: Tensor, name: string, where: string, hint: string, scanned?: NonFiniteSummary | null): void {
  // `scanned`: the caller scanned the bytes already (in pieces, as it read them)
  const s = scanned === undefined ? scanNonFinite(tensor.bytes(), tensor.dtype) : scanned;
  if (!s) return;
  const at = unflattenIndex(s.first, tensor.dims);
  throw new DeltacError(
    'DELTAC_E_WEIGHTS_NONFINITE',
    `tensor "${name}" of ${where} (${dtypeName(tensor.dtype)}[${tensor.dims.join(', ')}]) holds ${describeNonFinite(s)} among ${tensor.elementCount} values, the first at index ${s.first} ([${at.join(', ')}]); ${hint}`,
    { tensor: name, count: s.count, nan: s.nan, posInf: s.posInf, negInf: s.negInf, firstIndex: s.first, firstAt: at },
  );
}

/**
 * Checks the float initializers the conversion wrote into `model` (those whose
 * tensor is not in `before`, the tensors the model held when it was loaded):
 * casting finite checkpoint values to the model's element type can still overflow
 * (f32 → f16 saturates to ±Inf above 65504).
 */
export function assertNewInitializersFinite(model: Model, before: ReadonlySet<Tensor | null>): void {
  for (const v of model.graph.initializers.values()) {
    const t = v.initializer;
    if (!t || before.has(t) || !isFloatType(t.dtype)) continue;
    const s = t.storage;
    // Deferred tensors are computed for the scan and let go again; known-finite ones are skipped.
    if (s.kind !== 'inline' && !(s.kind === 'deferred' && !s.finite)) continue;
    assertFinite(
      t,
      v.name,
      'the converted model',
      `deltac made it from the checkpoint, whose values exceed what ${dtypeName(t.dtype)} holds (f16: ±65504): rescale the checkpoint or convert a model of a wider type`,
    );
    if (s.kind === 'deferred') s.finite = true; // what is derived from it later need not be scanned again
  }
}
