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
import { Tensor } from '../../src/ir/tensor.js';
import { buildExport, makeFeeds } from '../fixtures/exports/index.js';
import { relativeError, runModel } from '../fixtures/exports/runtime.js';
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
  // LoRA adapters left unfused (base weights W − s·B·A: the same function), attention written with
  // Einsum (LDM / CompVis), CompVis/LDM module names bound to the diffusers checkpoint without --map
  { layout: 'sd15', style: 'ts-sdpa', lora: true, convertedTolerance: 1e-6 },
  { layout: 'sd15', style: 'ts-einsum', convertedTolerance: 1e-6 },
  { layout: 'sd15', style: 'ts-sdpa', names: 'ldm', convertedTolerance: 1e-6 },
  { layout: 'sd15', style: 'ts-einsum', names: 'ldm', lora: true, convertedTolerance: 1e-6 },
  { layout: 'sd15', style: 'ts-einsum', names: 'ldm', dtype: 'f16' },
  // SDXL layout: no attention at the first level, two transformer blocks per module
  { layout: 'sdxl', style: 'ts-einsum', names: 'ldm', convertedTolerance: 1e-6 },
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

  it('LoRA: attn1\'s adapters go with its attention; attn2\'s stay in the converted model and still change its output', async () => {
    const options = { layout: 'sd15', style: 'ts-sdpa', lora: true } as const;
    // the adapters' weight names, from a second (identical) build: conversion detaches the removed nodes
    const found = findAttention(buildExport(options).model);
    const run = await harness.run(options);
    const model = run.built.model;
    const adapterWeights = (kind: 'self' | 'cross') =>
      found.matches.filter((m) => m.kind === kind).flatMap((m) => m.nodes.filter((n) => /\/lora_[AB]\/default\/MatMul$/.test(n.name)).map((n) => n.inputs[1]!.name));
    // A and B of to_q, to_k, to_v and to_out.0 in every module, reported with the module's weights
    expect(adapterWeights('self')).toHaveLength(run.built.selfBlocks.length * 8);
    expect(adapterWeights('cross')).toHaveLength(run.built.crossCount * 8);
    const removed = new Set(run.report.removedInitializers.map((r) => r.name));
    expect(adapterWeights('self').every((w) => removed.has(w))).toBe(true);
    expect(adapterWeights('cross').every((w) => model.graph.initializers.has(w))).toBe(true);
    // switching attn2's adapters off (B = 0) changes what the converted model computes
    for (const name of adapterWeights('cross')) {
      const w = model.graph.initializers.get(name)!;
      const reader = w.users().find((n) => n.name.includes('/lora_B/'));
      if (reader) reader.setInput(1, model.graph.addInitializer(`${name}_off`, Tensor.fromFloat32(new Float32Array(w.initializer!.elementCount), w.initializer!.dims)));
    }
    const off = await runModel(model, makeFeeds(run.built));
    expect(relativeError(off, run.converted!)).toBeGreaterThan(1e-2);
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
