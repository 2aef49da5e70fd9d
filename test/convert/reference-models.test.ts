/**
 * End to end on the shared fixtures: convert with the distilled weights, run in
 * onnxruntime-node, compare with the PyTorch outputs of the ΔConvFusion model
 * (SPEC.md §5: max|Δ| / max|ref| ≤ 1e-4).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { verifyModel } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { readNpy } from '../../src/runtime/npy.js';
import { OrtModel, compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const CASES = [
  { name: 'sd15-mini', self: 16, cross: 16, sets: 2, gate: 'simple', family: 'unet', kernels: [9, 7, 5] },
  { name: 'pixart-mini', self: 4, cross: 4, sets: 1, gate: 'sigmoid', family: 'dit', kernels: [5] },
] as const;

const tmp = makeTempDir('deltac-convert-');
afterAll(tmp.cleanup);

const countOps = (m: ReturnType<typeof loadModel>, op: string) => [...m.graph.allNodes()].filter((n) => n.opType === op).length;

describe.each(CASES)('$name', (c) => {
  const dir = path.join(MODELS_DIR, c.name);
  const model = loadModel(path.join(dir, 'model.onnx'));
  const softmaxBefore = countOps(model, 'Softmax');
  const report = convert(model, { weights: path.join(dir, 'delta.safetensors') });
  const out = path.join(tmp.dir, `${c.name}.delta.onnx`);
  saveModel(model, out);

  it(`replaces exactly ${c.self} self-attention blocks and keeps the ${c.cross} cross-attention blocks`, () => {
    expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(c.self);
    expect(report.crossAttention).toBe(c.cross);
    expect(softmaxBefore).toBe(c.self + c.cross);
    expect(countOps(model, 'Softmax')).toBe(c.cross);
    const again = findAttention(model);
    expect(again.matches.filter((m) => m.kind === 'self')).toHaveLength(0);
    expect(again.matches.filter((m) => m.kind === 'cross')).toHaveLength(c.cross);
  });

  it('binds every layer by name with the family defaults and the checkpoint geometry', () => {
    for (const l of report.layers) {
      expect(l.binding).toBe('name');
      expect(l.gate).toBe(c.gate);
      expect(l.family).toBe(c.family);
      expect(l.scales).toEqual([1, 0.5]);
      expect(c.kernels).toContain(l.kernel);
      expect(l.checkpointBlock).toBe(l.blockPath);
    }
    // the attention projections are gone, the new weights are in
    expect(report.removedInitializers.length).toBeGreaterThanOrEqual(c.self * 2);
    expect(verifyModel(model).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('reproduces the PyTorch ΔConvFusion outputs in onnxruntime-node', async () => {
    const ort = await OrtModel.load(out);
    const sets = readInputFolder(dir);
    expect(sets.size).toBe(c.sets);
    for (const [key, feeds] of sets) {
      const result = Object.values(await ort.run(feeds))[0]!;
      const ref = readNpy(path.join(dir, `${key.replace('in', 'out')}.delta.npy`));
      expect(result.dims).toEqual(ref.shape);
      const cmp = compareArrays(result.data, ref.data as Float32Array);
      expect(cmp.rel).toBeLessThanOrEqual(1e-4);
      // and it is really the ΔConvBlock model, not the attention one
      const attn = readNpy(path.join(dir, `${key.replace('in', 'out')}.attn.npy`));
      expect(compareArrays(result.data, attn.data as Float32Array).rel).toBeGreaterThan(1e-2);
    }
    await ort.release();
  });
});

describe('emit fused', () => {
  it('keeps one ai.deltac.PyramidConvBlock per layer and imports its opset', () => {
    const dir = path.join(MODELS_DIR, 'sd15-mini');
    const model = loadModel(path.join(dir, 'model.onnx'));
    const report = convert(model, { weights: path.join(dir, 'delta.safetensors'), emit: 'fused' });
    const blocks = [...model.graph.allNodes()].filter((n) => n.domain === 'ai.deltac');
    expect(blocks).toHaveLength(16);
    expect(report.emit).toBe('fused');
    expect(model.opset('ai.deltac')).toBe(1);
    expect(blocks[0]!.getString('module_path')).toBe('down_blocks.0.attentions.0.transformer_blocks.0.attn1');
    expect(blocks.map((b) => b.getInt('kernel_size'))).toContain(5);
  });
});

describe('counts FLOPs at a resolution', () => {
  it('reports attention vs ΔConvBlock FLOPs per layer at 512 px', () => {
    const dir = path.join(MODELS_DIR, 'sd15-mini');
    const model = loadModel(path.join(dir, 'model.onnx'));
    const report = convert(model, { weights: path.join(dir, 'delta.safetensors'), resolutions: [512] });
    const first = report.layers[0]!.flops![0]!;
    expect([first.height, first.width]).toEqual([64, 64]);
    const last = report.layers[15]!.flops![0]!;
    expect([last.height, last.width]).toEqual([64, 64]);
    const mid = report.layers.find((l) => l.modulePath?.startsWith('mid_block'))!.flops![0]!;
    expect([mid.height, mid.width]).toEqual([8, 8]);
    expect(report.totals[0]!.attention).toBeGreaterThan(20 * report.totals[0]!.block);
    expect(fs.existsSync(dir)).toBe(true);
  });
});
