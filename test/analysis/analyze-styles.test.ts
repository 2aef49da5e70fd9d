/**
 * `deltac analyze` on every attention style the matcher knows (synthetic SD1.5-layout
 * exports, test/fixtures/exports): maps from the captured Softmax rows or, for fused
 * attention ops, recomputed from the weights; the TypeScript attention behind the
 * ERFs reproduces onnxruntime's output.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze/index.js';
import { saveModel } from '../../src/onnx/save.js';
import { ATTENTION_STYLES, buildExport } from '../fixtures/exports/index.js';
import { makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-analyze-styles-');
afterAll(() => tmp.cleanup());

/** onnxruntime's CPU provider does not implement packed QKV/KV MultiHeadAttention. */
const NOT_ON_CPU = new Set(['ms-mha-packed', 'ms-mha-packed-kv']);
const FUSED = new Set(['onnx-attention', 'onnx-attention-4d', 'ms-mha', 'ms-attention']);

describe('deltac analyze across export styles', () => {
  for (const style of ATTENTION_STYLES.filter((s) => !NOT_ON_CPU.has(s))) {
    it(style, async () => {
      const built = buildExport({ layout: 'sd15', style });
      const file = path.join(tmp.dir, `${style}.onnx`);
      saveModel(built.model, file);
      const r = await analyzeModel(file, { samples: 1, queries: 16, ...(built.options.staticShapes ? {} : { resolution: 96 }) });
      expect(r.layers).toHaveLength(built.selfBlocks.length);
      for (const l of r.layers) {
        expect(l.probsSource).toBe(FUSED.has(style) ? 'recomputed' : 'captured');
        expect(l.locality!.whole).toBeCloseTo(1, 5);
        if (style === 'ts-einsum') continue; // maps only: the einsum core is not re-matched for weights
        expect(l.check.output!).toBeLessThan(1e-5);
        expect(l.attentionErf).not.toBeNull();
      }
    });
  }

  it('ts-sdpa in float16 (random inputs in half precision; onnxruntime computes in half)', async () => {
    const built = buildExport({ layout: 'sd15', style: 'ts-sdpa', dtype: 'f16' });
    const file = path.join(tmp.dir, 'ts-sdpa-f16.onnx');
    saveModel(built.model, file);
    const r = await analyzeModel(file, { samples: 1, queries: 16, resolution: 96 });
    expect(r.layers).toHaveLength(built.selfBlocks.length);
    for (const l of r.layers) {
      expect(l.probsSource).toBe('captured');
      expect(l.check.output!).toBeLessThan(5e-3);
      expect(l.check.output!).toBeGreaterThan(1e-6); // really half precision, not float32
      expect(l.notes).toEqual([]);
    }
  });
});
