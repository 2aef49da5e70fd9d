import { describe, expect, it } from 'vitest';
import { BLOCK_WEIGHT_ALIGN, blockWeightLayout, packBlockWeights } from '../../src/codegen/kernel-plan.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { randomWeights } from '../reference/fixtures.js';

const config: PyramidConvConfig = { channels: 20, inner: 10, kernel: 3, scales: [1, 0.5], gate: 'simple', dtype: 'float16' };

describe('the whole-block weight buffer', () => {
  it('puts the checkpoint tensors in SPEC.md §2 order, each at a multiple of 64 elements', () => {
    const { slots, elements } = blockWeightLayout(config);
    expect(slots.map((s) => `${s.name}@${s.offset}`)).toEqual([
      'conv_up.weight@0', // [10, 20] = 200 → 256
      'conv_up.bias@256',
      'gates.conv_spatial.weight@320', // [2, 3, 3, 10] = 180 → 192
      'conv_out.weight@512', // [20, 10] = 200 → 256
      'conv_out.bias@768',
      'conv_pool.weight@832', // [20, 20] = 400 → 448
      'conv_pool.bias@1280',
    ]);
    expect(elements).toBe(1344);
    for (const s of slots) expect(s.offset % BLOCK_WEIGHT_ALIGN).toBe(0);
  });

  it('packs the weights there, zero between them, and names a tensor of the wrong size', () => {
    const w = randomWeights(20, 10, 3, 2, 1);
    const packed = packBlockWeights(config, w);
    expect(packed[256 + 9]).toBe(w.upBias[9]);
    expect(packed[1280 + 19]).toBe(w.poolBias[19]);
    expect(packed[200]).toBe(0);
    let error: unknown;
    try {
      packBlockWeights(config, { ...w, outWeight: new Float32Array(7) });
    } catch (e) {
      error = e;
    }
    expect((error as { code: string }).code).toBe('DELTAC_E_WEIGHT_SHAPE');
    expect(String(error)).toMatch(/conv_out\.weight has 7 elements, expected \[20,10\]/);
  });
});
