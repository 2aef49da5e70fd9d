/**
 * One SD1.5-layout UNet written in every export style deltac meets (see
 * test/fixtures/exports/attention.ts): the matchers find the same modules, the
 * fixtures compute the same function, and the conversion is invariant to the
 * export style — the converted model of every style equals the converted
 * canonical (TorchScript) export, which the sd15-mini test checks against PyTorch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { VariantHarness } from '../fixtures/exports/harness.js';
import { buildExport } from '../fixtures/exports/index.js';
import { makeTempDir } from '../helpers/paths.js';
import { type VariantCase, describeVariant } from './variant-suite.js';

const tmp = makeTempDir('deltac-variants-');
afterAll(tmp.cleanup);
const harness = new VariantHarness(tmp.dir);

const CASES: VariantCase[] = [
  { layout: 'sd15', style: 'ts-sdpa' },
  // a fixed-size TorchScript export: Reshape targets are constants, only the scale still comes from Shape
  { layout: 'sd15', style: 'ts-sdpa', staticShapes: true },
  { layout: 'sd15', style: 'ts-sdpa-mask' },
  { layout: 'sd15', style: 'ts-torch1' },
  { layout: 'sd15', style: 'ts-div' },
  { layout: 'sd15', style: 'dynamo-sdpa' },
  { layout: 'sd15', style: 'dynamo-sdpa', staticShapes: false },
  { layout: 'sd15', style: 'onnx-attention' },
  { layout: 'sd15', style: 'onnx-attention-4d' },
  { layout: 'sd15', style: 'ms-mha' },
  { layout: 'sd15', style: 'ms-mha-packed' },
  { layout: 'sd15', style: 'ms-mha-packed-kv' },
  { layout: 'sd15', style: 'ms-attention' },
  // fp16 exports: fp16 weights and activations, Softmax (and torch-1 scores) in fp32
  { layout: 'sd15', style: 'ts-sdpa', dtype: 'f16' },
  { layout: 'sd15', style: 'ts-torch1', dtype: 'f16' },
  { layout: 'sd15', style: 'dynamo-sdpa', dtype: 'f16' },
  { layout: 'sd15', style: 'onnx-attention', dtype: 'f16' },
  { layout: 'sd15', style: 'ms-attention', dtype: 'f16' },
];

for (const c of CASES) describeVariant(harness, c);

describe('what the styles put in the graph', () => {
  it('dynamo exports carry module paths only in metadata_props, IR 10', () => {
    const m = buildExport({ layout: 'sd15', style: 'dynamo-sdpa' }).model;
    expect(m.irVersion).toBe(10);
    expect(m.graph.nodes.every((n) => /^node_[A-Za-z]+_\d+$/.test(n.name))).toBe(true);
    const q = findAttention(m).matches[0]!.nodes.find((n) => n.opType === 'MatMul')!;
    expect(q.meta('pkg.torch.onnx.name_scopes')).toMatch(/^\['', 'down_blocks\.0', .*'down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn1\.to_q', '[a-z_0-9]+'\]$/);
  });

  it('the onnxruntime-optimized export fuses to_out bias into SkipLayerNormalization, and the conversion detaches it for attn1 only', async () => {
    const run = await harness.run({ layout: 'sd15', style: 'ms-attention' });
    const selfs = run.found.matches.filter((m) => m.kind === 'self');
    expect(selfs.every((m) => m.absorbedBias?.node.opType === 'SkipLayerNormalization')).toBe(true);
    const withBias = run.built.model.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization' && n.inputs[4]);
    // attn2's SkipLayerNormalization keeps its bias; attn1's lost it
    expect(withBias).toHaveLength(run.built.crossCount);
    expect(run.built.model.graph.nodes.filter((n) => n.is('Attention', 'com.microsoft'))).toHaveLength(0);
  });

  it('shape inference gives a packed-QKV MultiHeadAttention heads·head_size channels', () => {
    const m = buildExport({ layout: 'sd15', style: 'ms-mha-packed' }).model;
    const env = runInference(m);
    const packed = m.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention' && n.inputs.length === 1);
    expect(packed).toHaveLength(7);
    const channels = packed.map((n) => {
      const t = env.types.get(n.outputs[0]!);
      return t?.kind === 'tensor' ? t.shape?.[2] : undefined;
    });
    expect(channels).toEqual([16, 32, 32, 32, 32, 16, 16]);
  });
});
