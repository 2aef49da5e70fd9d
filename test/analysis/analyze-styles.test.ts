/**
 * `deltac analyze` on every attention style the matcher knows (synthetic SD1.5-layout
 * exports, test/fixtures/exports): maps from the captured Softmax rows or, for fused
 * attention ops, recomputed from the weights; the TypeScript attention behind the
 * ERFs reproduces onnxruntime's output. Every style computes the same function, so
 * with one checkpoint each gives the same per-layer ΔConvBlock error (to_out's bias
 * fused into the next node included).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel, type LayerAnalysis } from '../../src/analysis/analyze/index.js';
import { saveModel } from '../../src/onnx/save.js';
import { writeNpy } from '../../src/runtime/npy.js';
import { ATTENTION_STYLES, type AttentionStyle, buildExport, deltaCheckpoint, makeFeeds } from '../fixtures/exports/index.js';
import { makeTempDir } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-analyze-styles-');
afterAll(() => tmp.cleanup());

/** onnxruntime's CPU provider does not implement packed QKV/KV MultiHeadAttention. */
const NOT_ON_CPU = new Set<AttentionStyle>(['ms-mha-packed', 'ms-mha-packed-kv']);
const FUSED = new Set(['onnx-attention', 'onnx-attention-4d', 'ms-mha', 'ms-attention']);

describe('deltac analyze across export styles', () => {
  const weights = path.join(tmp.dir, 'delta.safetensors');
  /** The fixtures' seeded inputs (the same for every style, at the static styles' size) as .npy files. */
  const inputs = path.join(tmp.dir, 'inputs');
  /** Per-layer ΔConvBlock error of the plain TorchScript export (ts-sdpa), with and without LoRA. */
  const reference = new Map<boolean, LayerAnalysis['fidelity'][]>();
  beforeAll(async () => {
    const plain = buildExport({ layout: 'sd15', style: 'ts-sdpa' });
    writeSafetensors(weights, deltaCheckpoint(plain));
    fs.mkdirSync(inputs);
    for (const [name, f] of Object.entries(makeFeeds(plain))) writeNpy(path.join(inputs, `in0.${name}.npy`), f.data, f.dims);
    for (const lora of [false, true]) {
      const file = path.join(tmp.dir, `reference${lora ? '-lora' : ''}.onnx`);
      saveModel(buildExport({ layout: 'sd15', style: 'ts-sdpa', lora }).model, file);
      reference.set(lora, (await analyzeModel(file, { inputs, queries: 16, weights })).layers.map((l) => l.fidelity));
    }
  });

  // every style that runs on CPU has an ERF (its projections read from the weights); LoRA: unfused adapters on q/k/v/out
  const cases = [...ATTENTION_STYLES.filter((s) => !NOT_ON_CPU.has(s)).map((style) => ({ style, lora: false })), { style: 'ts-einsum' as const, lora: true }, { style: 'ts-sdpa' as const, lora: true }];
  for (const { style, lora } of cases) {
    it(`${style}${lora ? ' with LoRA adapters' : ''}`, async () => {
      const built = buildExport({ layout: 'sd15', style, lora });
      const file = path.join(tmp.dir, `${style}${lora ? '-lora' : ''}.onnx`);
      saveModel(built.model, file);
      const r = await analyzeModel(file, { inputs, queries: 16, weights });
      expect(r.layers).toHaveLength(built.selfBlocks.length);
      r.layers.forEach((l, j) => {
        const want = reference.get(lora)![j]!;
        expect(l.fidelity!.samples).toHaveLength(want.samples.length);
        l.fidelity!.samples.forEach((s, b) => {
          expect(Math.abs(s.rms - want.samples[b]!.rms) / want.samples[b]!.rms).toBeLessThan(1e-4);
          expect(Math.abs(s.rel - want.samples[b]!.rel) / want.samples[b]!.rel).toBeLessThan(1e-4);
        });
      });
      for (const l of r.layers) {
        expect(l.probsSource).toBe(FUSED.has(style) ? 'recomputed' : 'captured');
        expect(l.locality!.whole).toBeCloseTo(1, 5);
        expect(l.notes).toEqual([]);
        expect(l.check.output!).toBeLessThan(1e-5);
        expect(l.attentionErf).toHaveLength(l.height * l.width);
        expect(Math.max(...l.attentionErf!)).toBeGreaterThan(0);
      }
    });
  }

  for (const style of NOT_ON_CPU) {
    it(`${style}: onnxruntime's CPU provider cannot run it, and the error names every packed layer`, async () => {
      const built = buildExport({ layout: 'sd15', style });
      const file = path.join(tmp.dir, `${style}.onnx`);
      saveModel(built.model, file);
      const err = await analyzeModel(file, { samples: 1, queries: 16, resolution: 96 }).then(() => null, (e: unknown) => e as Error & { code: string });
      expect(err?.code).toBe('DELTAC_E_RUNTIME');
      expect(err?.message).toMatch(/CPU provider cannot run com\.microsoft\.MultiHeadAttention with packed QKV or KV/);
      for (const b of built.selfBlocks) expect(err?.message).toContain(`${b.path}.attn1: MultiHeadAttention with packed QKV`);
      if (style === 'ms-mha-packed-kv') expect(err?.message).toMatch(/not an analysed self-attention layer\): MultiHeadAttention with packed KV/);
    });
  }

  it('ts-sdpa in float16 (random inputs in half precision; onnxruntime computes in half)', async () => {
    const built = buildExport({ layout: 'sd15', style: 'ts-sdpa', dtype: 'f16' });
    const file = path.join(tmp.dir, 'ts-sdpa-f16.onnx');
    saveModel(built.model, file);
    const r = await analyzeModel(file, { samples: 1, queries: 16, resolution: 96, weights });
    // the float32 export of the same function on the same random inputs (rounded to half in the f16 one)
    const f32 = path.join(tmp.dir, 'ts-sdpa-f32.onnx');
    saveModel(buildExport({ layout: 'sd15', style: 'ts-sdpa' }).model, f32);
    const full = await analyzeModel(f32, { samples: 1, queries: 16, resolution: 96, weights });
    expect(r.layers).toHaveLength(built.selfBlocks.length);
    r.layers.forEach((l, j) => {
      expect(l.probsSource).toBe('captured');
      expect(l.check.output!).toBeLessThan(5e-3);
      expect(l.check.output!).toBeGreaterThan(1e-6); // really half precision, not float32
      expect(l.notes).toEqual([]);
      // the ΔConvBlock's error against the half-precision attention: as in float32, to half precision's rounding
      const want = full.layers[j]!.fidelity!.rms;
      expect(Math.abs(l.fidelity!.rms - want) / want).toBeLessThan(1e-2);
    });
  });
});
