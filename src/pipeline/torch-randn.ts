/**
 * `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` in float32,
 * so that `deltac preview --seed N` starts from the latents diffusers' pipelines draw
 * with `generator=torch.manual_seed(N)` on the CPU.
 *
 * torch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded with the seed's
 * low 32 bits. A contiguous float32 tensor of at least 16 elements is filled by
 * `normal_fill`: every element first gets a uniform (the twister's output & 2^24−1)·2^−24,
 * then each block of 16 becomes 8 Box–Muller pairs (u1 = 1 − data[j], u2 = data[j+8]:
 * data[j] = √(−2 ln u1)·cos 2πu2, data[j+8] = … sin …); when the size is not a multiple of
 * 16, the last 16 elements are drawn again and transformed once more. Smaller tensors
 * take the scalar path: double-precision Box–Muller on 53-bit uniforms (two 32-bit draws
 * each), the sine half of each pair cached for the next element.
 *
 * torch computes the float path in float32 (with AVX2, in SLEEF's vector log/sin/cos);
 * this computes the transcendental functions in double and rounds, so values can differ
 * from torch's in the last bit (relative 1e-7), far below what moves an image.
 */

/** MT19937, as `at::mt19937` (and C++'s std::mt19937) generates it. */
class MersenneTwister {
  private readonly state = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    this.state[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.state[i - 1]! ^ (this.state[i - 1]! >>> 30);
      this.state[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  next(): number {
    if (this.index >= 624) this.twist();
    let y = this.state[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let k = 0; k < 624; k++) {
      const y = (s[k]! & 0x80000000) | (s[(k + 1) % 624]! & 0x7fffffff);
      s[k] = s[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }
}

/** Standard normal float32 samples as torch's CPU `randn` draws them for `count` elements after `manual_seed(seed)`. */
export function torchRandn(seed: number, count: number): Float32Array {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  const mt = new MersenneTwister(Number(BigInt(seed) & 0xffffffffn));
  return count >= 16 ? normalFill(mt, count) : scalarNormals(mt, count);
}

function normalFill(mt: MersenneTwister, count: number): Float32Array {
  const data = new Float32Array(count);
  const uniform = () => (mt.next() & 0xffffff) * 2 ** -24;
  for (let i = 0; i < count; i++) data[i] = uniform();
  const fill16 = (o: number) => {
    for (let j = 0; j < 8; j++) {
      const u1 = Math.fround(1 - data[o + j]!);
      const u2 = data[o + j + 8]!;
      const radius = Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(u1)))));
      const theta = Math.fround(2 * Math.PI * u2);
      data[o + j] = radius * Math.fround(Math.cos(theta));
      data[o + j + 8] = radius * Math.fround(Math.sin(theta));
    }
  };
  for (let i = 0; i + 16 <= count; i += 16) fill16(i);
  if (count % 16 !== 0) {
    for (let i = count - 16; i < count; i++) data[i] = uniform();
    fill16(count - 16);
  }
  return data;
}

function scalarNormals(mt: MersenneTwister, count: number): Float32Array {
  const data = new Float32Array(count);
  const uniform53 = () => {
    const hi = mt.next();
    const lo = mt.next();
    // (hi << 32 | lo) & (2^53 − 1), times 2^−53
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  };
  let cached: number | null = null;
  for (let i = 0; i < count; i++) {
    if (cached !== null) {
      data[i] = cached;
      cached = null;
      continue;
    }
    const u1 = uniform53();
    const u2 = uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    cached = r * Math.sin(theta);
    data[i] = r * Math.cos(theta);
  }
  return data;
}
