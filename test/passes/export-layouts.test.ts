/**
 * Beyond the SD1.5 UNet: SDXL (linear projections, two transformer blocks per
 * attention, text_embeds/time_ids), ControlNet (and a UNet taking its residuals),
 * inpainting (9 input channels), IP-Adapter (a second attention core in attn2),
 * and a PixArt-like DiT with symbolic height/width — each in several export
 * styles, through the same checks as export-variants.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { VariantHarness } from '../fixtures/exports/harness.js';
import { buildExport } from '../fixtures/exports/index.js';
import { makeTempDir } from '../helpers/paths.js';
import { convert } from '../../src/convert.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { type VariantCase, describeVariant } from './variant-suite.js';

const tmp = makeTempDir('deltac-layouts-');
afterAll(tmp.cleanup);
const harness = new VariantHarness(tmp.dir);

const CASES: VariantCase[] = [
  { layout: 'sdxl', style: 'ts-sdpa' },
  { layout: 'sdxl', style: 'ts-torch1' },
  { layout: 'sdxl', style: 'dynamo-sdpa' },
  { layout: 'sdxl', style: 'onnx-attention-4d' },
  { layout: 'sdxl', style: 'ms-attention' },
  { layout: 'sdxl', style: 'ts-sdpa', dtype: 'f16' },
  { layout: 'sdxl', style: 'dynamo-sdpa', dtype: 'f16' },
  { layout: 'controlnet', style: 'ts-sdpa' },
  { layout: 'controlnet', style: 'dynamo-sdpa' },
  { layout: 'controlnet', style: 'ms-mha' },
  { layout: 'sd15-control', style: 'ts-sdpa' },
  { layout: 'sd15-inpaint', style: 'ts-sdpa' },
  { layout: 'sd15-ip-adapter', style: 'ts-sdpa', coresPerCross: 2 },
  { layout: 'dit', style: 'ts-sdpa' },
  { layout: 'dit', style: 'dynamo-sdpa' },
  { layout: 'dit', style: 'dynamo-sdpa', staticShapes: false },
  { layout: 'dit', style: 'onnx-attention' },
  { layout: 'dit', style: 'ms-mha' },
  { layout: 'dit', style: 'ms-mha-packed' },
  { layout: 'dit', style: 'ms-attention' },
  { layout: 'dit', style: 'ts-sdpa', dtype: 'f16' },
  { layout: 'dit', style: 'onnx-attention', dtype: 'f16' },
];

for (const c of CASES) describeVariant(harness, c);

describe('layout specifics', () => {
  it('SDXL: the second transformer block of an attention module is its own layer', () => {
    const selfs = findAttention(buildExport({ layout: 'sdxl', style: 'dynamo-sdpa' }).model).matches.filter((m) => m.kind === 'self');
    expect(selfs.map((m) => m.blockPath)).toContain('down_blocks.1.attentions.0.transformer_blocks.1');
    expect(selfs.map((m) => m.blockPath)).toContain('up_blocks.0.attentions.1.transformer_blocks.1');
    // no attention at the first level (DownBlock2D / UpBlock2D), heads = C / head_dim
    expect(selfs.every((m) => !m.blockPath!.startsWith('down_blocks.0') && !m.blockPath!.startsWith('up_blocks.1'))).toBe(true);
    expect(new Set(selfs.map((m) => m.heads))).toEqual(new Set([4]));
  });

  it('SDXL: H and W come from the Transformer2DModel input although proj_in is a Linear after the flatten', async () => {
    const run = await harness.canonical('sdxl');
    expect(run.report.layers.map((l) => l.family)).toEqual(run.built.selfBlocks.map(() => 'unet'));
    expect(run.report.layers.every((l) => /Transformer2DModel input/.test(l.hwSource ?? ''))).toBe(true);
  });

  it('IP-Adapter: attn2 with to_k_ip/to_v_ip is one cross-attention module of two cores, left untouched', async () => {
    const run = await harness.canonical('sd15-ip-adapter');
    const cross = run.found.matches.filter((m) => m.kind === 'cross');
    expect(cross).toHaveLength(7);
    for (const m of cross) {
      expect(m.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(2);
      expect(m.nodes.filter((n) => /\/attn2\/processor\/to_[kv]_ip\.0\/MatMul$/.test(n.name))).toHaveLength(2);
      expect(m.weights).toHaveLength(6); // to_q, to_k, to_v, to_k_ip, to_v_ip, to_out
    }
    expect(run.built.model.graph.initializers.has('m.encoder_hid_proj.image_embeds.weight')).toBe(true);
  });

  it('DiT: H and W are the patch grid, computed at run time from the patch-embedding Conv', async () => {
    const run = await harness.canonical('dit');
    for (const l of run.report.layers) {
      expect(l.family).toBe('dit');
      expect(l.gate).toBe('sigmoid');
      expect(l.hw!.every((d) => typeof d === 'string')).toBe(true);
    }
  });

  it('DiT with static shapes: H and W are constants, and the model keeps no Shape of the patch grid for them', () => {
    const built = buildExport({ layout: 'dit', style: 'dynamo-sdpa' });
    const report = convert(built.model, { weights: Checkpoint.open(harness.checkpoint('dit')), emit: 'fused' });
    expect(report.layers.map((l) => l.hw)).toEqual([
      [8, 6],
      [8, 6],
    ]);
    const blocks = built.model.graph.nodes.filter((n) => n.opType === 'PyramidConvBlock');
    expect(blocks.map((b) => b.inputs[1]!.initializer?.toNumbers())).toEqual([
      [8, 6],
      [8, 6],
    ]);
  });

  it('ControlNet: every controlnet_down_blocks output and the mid output stay outputs of the converted model', async () => {
    const run = await harness.canonical('controlnet');
    expect(run.converted!.map((o) => o.dims)).toEqual([
      [2, 16, 12, 10],
      [2, 16, 12, 10],
      [2, 16, 6, 5],
      [2, 32, 6, 5],
      [2, 32, 6, 5],
    ]);
  });
});
