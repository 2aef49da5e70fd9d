/**
 * Every row of SPEC.md §5.1 at its real size (graph only, elided weights, a
 * zero checkpoint of the real ΔConvBlock shapes), in the export styles that
 * apply: each converts every self-attention layer, keeps every
 * cross-attention, verifies, and holds one ΔConvBlock per converted layer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { verifyModel } from '../../src/ir/verify.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import type { AttentionStyle } from '../fixtures/exports/attention.js';
import { convertFullSize } from '../fixtures/full-size/convert.js';
import { FULL_LAYOUTS, type FullSizeOptions } from '../fixtures/full-size/index.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-full-size-');
afterAll(tmp.cleanup);

const CASES: FullSizeOptions[] = [
  { layout: 'sd15', style: 'ts-sdpa' },
  { layout: 'sd15', style: 'dynamo-sdpa' },
  { layout: 'sd15', style: 'onnx-attention' },
  { layout: 'sd15', style: 'ts-sdpa', dtype: 'f16' },
  { layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' },
  { layout: 'sd15', style: 'ms-attention', ort: true },
  { layout: 'sd21', style: 'ts-torch1' },
  { layout: 'sd21', style: 'dynamo-sdpa', dtype: 'f16' },
  { layout: 'sd21', style: 'ms-mha', ort: true },
  { layout: 'sdxl-base', style: 'ts-sdpa' },
  { layout: 'sdxl-base', style: 'dynamo-sdpa', dtype: 'f16' },
  { layout: 'sdxl-base', style: 'onnx-attention-4d' },
  { layout: 'sdxl-base', style: 'ms-mha-packed-kv', ort: true, dtype: 'f16' },
  { layout: 'sdxl-refiner', style: 'ts-sdpa', dtype: 'f16' },
  { layout: 'sdxl-refiner', style: 'ms-mha', ort: true },
  { layout: 'pixart-sigma', style: 'ts-sdpa' },
  { layout: 'pixart-sigma', style: 'dynamo-sdpa', dtype: 'f16' },
  { layout: 'pixart-sigma', style: 'onnx-attention' },
  { layout: 'pixart-sigma', style: 'ms-mha' },
];

const label = (c: FullSizeOptions) => `${c.layout} ${c.style}${c.ort ? ' (onnxruntime-optimized)' : ''} ${c.dtype ?? 'f32'}`;

const CORE: Partial<Record<AttentionStyle, string>> = { 'ms-attention': 'MultiHeadAttention', 'ms-mha': 'MultiHeadAttention', 'ms-mha-packed': 'MultiHeadAttention', 'ms-mha-packed-kv': 'MultiHeadAttention', 'onnx-attention': 'Attention', 'onnx-attention-4d': 'Attention' };

describe.each(CASES)('full size: $layout $style', (c) => {
  it(`${label(c)}: converts every self-attention layer and keeps every cross-attention`, () => {
    const { built, report } = convertFullSize(c, tmp.dir);
    const layers = FULL_LAYOUTS[c.layout].selfLayers;
    expect(built.selfBlocks).toHaveLength(layers);
    const converted = report.layers.filter((l) => l.status === 'converted');
    expect(converted).toHaveLength(layers);
    expect(converted.map((l) => l.checkpointBlock)).toEqual(built.selfBlocks.map((b) => b.path));
    expect(converted.map((l) => l.channels)).toEqual(built.selfBlocks.map((b) => b.channels));
    expect(converted.map((l) => l.dtype)).toEqual(built.selfBlocks.map(() => (c.dtype === 'f16' ? 'f16' : 'f32')));
    expect(report.crossAttention).toBe(built.crossCount);
    expect(report.unmatched).toEqual([]);
    const nodes = built.model.graph.nodes;
    expect(nodes.filter((n) => n.opType === 'PyramidConvBlock')).toHaveLength(layers);
    // what is left of attention is exactly the cross-attention
    const left = findAttention(built.model).matches;
    expect(left.filter((m) => m.kind === 'self')).toEqual([]);
    expect(left).toHaveLength(built.crossCount);
    const core = CORE[c.style] ?? 'Softmax';
    expect(nodes.filter((n) => n.opType === core)).toHaveLength(built.crossCount);
    expect(verifyModel(built.model).filter((d) => d.severity === 'error')).toEqual([]);
  });
});

describe('full size: where H and W come from', () => {
  it('SDXL base (static 1024²): H×W per level, 64² at 640 channels and 32² at 1280, ten blocks per attention module', () => {
    const { report } = convertFullSize({ layout: 'sdxl-base', style: 'dynamo-sdpa' }, tmp.dir);
    const hw = (prefix: string) => new Set(report.layers.filter((l) => l.id.startsWith(prefix)).map((l) => l.hw!.join('×')));
    expect(hw('down_blocks.1.')).toEqual(new Set(['64×64']));
    expect(hw('down_blocks.2.')).toEqual(new Set(['32×32']));
    expect(hw('mid_block.')).toEqual(new Set(['32×32']));
    expect(hw('up_blocks.0.')).toEqual(new Set(['32×32']));
    expect(hw('up_blocks.1.')).toEqual(new Set(['64×64']));
    expect(report.layers.filter((l) => l.id.startsWith('up_blocks.0.attentions.2.')).map((l) => l.id.split('.').pop())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('PixArt-Σ: all 28 blocks read H, W from the patch embedding (the 16th and deeper too)', () => {
    const { report } = convertFullSize({ layout: 'pixart-sigma', style: 'ts-sdpa' }, tmp.dir);
    expect(report.layers).toHaveLength(28);
    for (const l of report.layers) {
      expect(l.family).toBe('dit');
      expect(l.hwSource).toMatch(/DiT patch embedding \/m\/pos_embed\/proj\/Conv/);
      expect(l.hw).toEqual(['floor((height-2)/2)+1', 'floor((width-2)/2)+1']);
    }
  });

  it('depth does not matter: a 96-block DiT converts every block', () => {
    const { report } = convertFullSize({ layout: 'pixart-sigma', style: 'ts-sdpa', blocks: 96, channels: 64 }, tmp.dir);
    expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(96);
    expect(report.layers[95]!.id).toBe('transformer_blocks.95');
    expect(report.layers[95]!.family).toBe('dit');
  });
});
