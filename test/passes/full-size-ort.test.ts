/**
 * SD1.5 as onnxruntime's transformer optimizer leaves it (SPEC.md §5.2):
 * channels-last NhwcConv / GroupNorm / SkipGroupNorm, SkipLayerNormalization with
 * to_out's bias, BiasSplitGelu, BiasAdd and MultiHeadAttention with packed QKV.
 * The contrib shape rules type the graph, the tokens come from [B, H, W, C]
 * tensors, the 16 self-attention layers convert and everything else stays.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { verifyModel } from '../../src/ir/verify.js';
import { saveModel } from '../../src/onnx/save.js';
import { convertFullSize } from '../fixtures/full-size/convert.js';
import { buildFullSize } from '../fixtures/full-size/index.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-full-size-ort-');
afterAll(tmp.cleanup);

const CONTRIB = ['NhwcConv', 'GroupNorm', 'SkipGroupNorm', 'SkipLayerNormalization', 'BiasSplitGelu', 'BiasAdd', 'MultiHeadAttention'];
const count = (m: Model) => Object.fromEntries(CONTRIB.map((op) => [op, m.graph.nodes.filter((n) => n.opType === op && n.domain === 'com.microsoft').length]));

describe('onnxruntime-optimized SD1.5 UNet at full size', () => {
  it('every contrib operator output gets an element type and a shape', () => {
    const { model } = buildFullSize({ layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' });
    const env = runInference(model);
    const outs = model.graph.nodes.filter((n) => n.domain === 'com.microsoft').map((n) => n.outputs[0]!);
    expect(outs.length).toBeGreaterThan(100);
    for (const v of outs) {
      const t = env.types.get(v);
      expect(t?.kind === 'tensor' && t.dtype).toBe(DataType.FLOAT16);
      expect(t?.kind === 'tensor' && t.shape?.length).toBeGreaterThanOrEqual(3);
    }
    // NhwcConv keeps channels last: the first one is [batch, height, width, 320]
    const first = model.graph.nodes.find((n) => n.opType === 'NhwcConv')!;
    expect(env.types.get(first.outputs[0]!)).toMatchObject({ shape: ['batch', 'height', 'width', 320] });
  });

  it('converts: 16 MultiHeadAttention left (cross-attention), 16 ΔConvBlocks in, the other contrib operators kept', () => {
    const before = count(buildFullSize({ layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' }).model);
    // 98 convolutions (22 resnets: 44 + 14 shortcuts; conv_in, conv_out, 3 down- and 3 upsamplers, 16 × proj_in/proj_out); 45 GroupNorms
    expect(before).toEqual({ NhwcConv: 98, GroupNorm: 45, SkipGroupNorm: 16, SkipLayerNormalization: 32, BiasSplitGelu: 16, BiasAdd: 16, MultiHeadAttention: 32 });
    const { built, report } = convertFullSize({ layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' }, tmp.dir);
    expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(16);
    expect(report.crossAttention).toBe(16);
    expect(count(built.model)).toEqual({ ...before, MultiHeadAttention: 16 });
    expect(built.model.graph.nodes.filter((n) => n.opType === 'PyramidConvBlock')).toHaveLength(16);
    expect(built.model.opsetImports.get('com.microsoft')).toBe(1);
    for (const l of report.layers) {
      expect(l.dtype).toBe('f16');
      expect(l.hwSource).toMatch(/proj_in NhwcConv .* \(flattened channels-last\)/);
      expect(l.hw).toEqual(expect.arrayContaining([expect.any(String)]));
    }
    // attn1's to_out bias left its SkipLayerNormalization (norm2); attn2's stayed in norm3
    const sln = built.model.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization');
    expect(sln.filter((n) => n.inputs.length === 4)).toHaveLength(16);
    expect(sln.filter((n) => n.inputs[4]?.name.includes('attn2.to_out.0.bias'))).toHaveLength(16);
    expect(verifyModel(built.model).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('the lowered model passes onnxruntime-node’s type and shape checks; only the CUDA-only kernels are missing on CPU, as for the original', async () => {
    const { built } = convertFullSize({ layout: 'sd15', style: 'ms-mha', ort: true, narrow: true }, tmp.dir, 'standard');
    expect(built.model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention')).toHaveLength(16);
    expect(built.model.graph.nodes.some((n) => n.domain === 'ai.deltac')).toBe(false);
    const original = buildFullSize({ layout: 'sd15', style: 'ms-mha', ort: true, narrow: true }).model;
    const load = async (m: Model, name: string) => {
      const file = path.join(tmp.dir, name);
      saveModel(m, file);
      return ort.InferenceSession.create(file).then(
        () => 'loaded',
        (e: Error) => e.message,
      );
    };
    const cudaOnly = /^Could not find an implementation for (NhwcConv|GroupNorm|SkipGroupNorm|BiasSplitGelu|BiasAdd)\(1\) node/;
    const [a, b] = [await load(original, 'original.onnx'), await load(built.model, 'converted.onnx')];
    expect(a).toMatch(cudaOnly);
    expect(b).toBe(a);
  });
});
