/**
 * `--seed` draws latents as torch's CPU generator does. The expected values are torch's
 * own (torch.manual_seed(s); torch.randn(n), printed to 4 decimals): the vectorised
 * path (n ≥ 16, Box–Muller over blocks of 16) and the scalar path (n < 16, 53-bit
 * uniforms, cached second value).
 */
import { describe, expect, it } from 'vitest';
import { torchRandn } from '../../src/pipeline/torch-randn.js';

const round4 = (a: Float32Array) => Array.from(a, (v) => Math.round(v * 1e4) / 1e4);

describe('torchRandn', () => {
  it('matches torch.randn(4, 4) after manual_seed(0) (the block-of-16 path)', () => {
    expect(round4(torchRandn(0, 16))).toEqual([
      -1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.692, -0.316, -2.1152, 0.3223, -1.2633, 0.35, 0.3081, 0.1198, 1.2377, 1.1168, -0.2473,
    ]);
  });

  it('matches torch.randn(2, 3) after manual_seed(0) and torch.randn(5) after manual_seed(42) (the scalar path)', () => {
    expect(round4(torchRandn(0, 6))).toEqual([1.541, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986]);
    expect(round4(torchRandn(42, 5))).toEqual([0.3367, 0.1288, 0.2345, 0.2303, -1.1229]);
  });

  it('matches torch.randn(16) after manual_seed(42), and redraws the tail when the size is not a multiple of 16', () => {
    expect(round4(torchRandn(42, 16)).slice(0, 8)).toEqual([1.9269, 1.4873, 0.9007, -2.1055, 0.6784, -1.2345, -0.0431, -1.6047]);
    const a = torchRandn(0, 20);
    expect(round4(a.subarray(0, 4))).toEqual([-1.1258, -1.1524, -0.2506, -0.4339]); // the first block as for 16
    expect(round4(a.subarray(4, 8))).not.toEqual(round4(torchRandn(0, 16).subarray(4, 8))); // the last 16 were drawn again
  });

  it('uses the low 32 bits of the seed, as torch\'s mt19937 does', () => {
    expect(torchRandn(2 ** 32 + 7, 16)).toEqual(torchRandn(7, 16));
  });
});
