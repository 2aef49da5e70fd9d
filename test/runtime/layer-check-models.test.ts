/**
 * The per-layer check passes on every shared model with default flags (UNets with
 * run-time H/W, PixArt's static 8×6 tokens), on every export style deltac converts in
 * f32 and f16 (onnxruntime-optimized graphs included: a layer's region is standard
 * ONNX even where the model's contrib operators have no CPU kernel), and on the
 * full-size layouts (elided UNet/DiT weights, a seeded ΔConvFusion checkpoint of the
 * real shapes: only the layers are read), where its time is measured.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import { saveModel } from '../../src/onnx/save.js';
import { checkLayers } from '../../src/runtime/layer-check.js';
import { snapshotGraph } from '../../src/runtime/outside-nodes.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { ATTENTION_STYLES } from '../fixtures/exports/attention.js';
import { type ExportOptions, buildExport, deltaCheckpoint } from '../fixtures/exports/index.js';
import { seededCheckpoint } from '../fixtures/full-size/checkpoint.js';
import { type FullSizeOptions, buildFullSize } from '../fixtures/full-size/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-layer-check-models-');
afterAll(tmp.cleanup);

const CHECK_LINE = /^check {12}(.*)$/m;

describe('deltac convert checks every layer by default', () => {
  it.each([
    ['sd15-mini', 'model.onnx', 16, ['1×4×4', '2×3×5']],
    ['pixart-mini', 'model.onnx', 4, ['2×8×6']],
    ['sd-tiny-pipeline', 'unet/model.onnx', 4, ['1×4×4', '2×3×5']],
    ['sdxl-tiny-pipeline', 'unet/model.onnx', 8, ['1×4×4', '2×3×5']],
  ])('%s (%s): %i layers at %j', async (name, file, count, sizes) => {
    const out = path.join(tmp.dir, `${name}.onnx`);
    const r = await runCli('convert', modelPath(name, file), '--weights', modelPath(name, 'delta.safetensors'), '-o', out, '--json');
    expect(r.code, r.err).toBe(0);
    const { check } = JSON.parse(r.out);
    expect(check).toMatchObject({ mode: 'layers', status: 'passed' });
    expect(check.full).toBeUndefined();
    expect(check.layers.layers).toHaveLength(count);
    for (const l of check.layers.layers) {
      expect(l).toMatchObject({ dtype: 'f32', sizes, tolerance: 1e-4, weightTolerance: 5e-7 });
      expect(l.error).toBeGreaterThan(0);
      expect(l.error).toBeLessThan(1e-5);
      expect(l.weightError).toBeLessThanOrEqual(5e-7);
    }
    expect(check.layers.outside.nodes).toBeGreaterThan(100);
    expect(check.layers.ms).toBeGreaterThan(0);
  });

  it('the text report: each layer’s relative error in the table, one check line with sizes, weights and the nodes outside', async () => {
    const r = await runCli('convert', modelPath('pixart-mini'), '--weights', modelPath('pixart-mini', 'delta.safetensors'), '-o', path.join(tmp.dir, 'text.onnx'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^layer +H×W +H×W from .* check \(rel\. err\)$/m);
    expect(r.out).toMatch(/^transformer_blocks\.0\.attn1 +8×6 +patch embed .* \d\.\de-\d$/m);
    expect(CHECK_LINE.exec(r.out)?.[1]).toMatch(
      /^passed in \d+\.\d s: 4 layers cut from the saved model ran in onnxruntime CPU at 2×8×6 \(batch×H×W; H, W static in the model: its own size only\) and matched the reference ΔConvBlock with their saved weights \(worst relative error \d\.\de-\d, f32 tolerance 1\.0e-4\); saved weights equal the checkpoint's; 794 nodes outside the layers as in the original$/,
    );
  });

  it('--emit fused: onnxruntime has no kernel for the fused block, so the layers’ weights are checked and the rest compared', async () => {
    const r = await runCli('convert', modelPath('pixart-mini'), '--weights', modelPath('pixart-mini', 'delta.safetensors'), '-o', path.join(tmp.dir, 'fused.onnx'), '--emit', 'fused', '--json');
    expect(r.code).toBe(0);
    const { check } = JSON.parse(r.out);
    for (const l of check.layers.layers) {
      expect(l).toMatchObject({ error: null, weightError: 0, sizes: [] });
      expect(l.notRun).toMatch(/^onnxruntime has no kernel for ai\.deltac PyramidConvBlock \(--emit fused keeps it for runtimes with the generated kernels, and the model carries no function for it\)$/);
    }
    expect(check.layers.outside.nodes).toBe(794);
  });
});

describe('every export style, f32 and f16', () => {
  const cases: ExportOptions[] = [
    ...ATTENTION_STYLES.flatMap((style) => (['f32', 'f16'] as const).map((dtype) => ({ layout: 'sd15' as const, style, dtype }))),
    { layout: 'dit', style: 'ts-sdpa' },
    { layout: 'dit', style: 'dynamo-sdpa', dtype: 'f16' },
    { layout: 'sd15', style: 'ts-sdpa', lora: true },
    { layout: 'sd15', style: 'ts-sdpa', names: 'ldm' },
    { layout: 'sd15-control', style: 'ts-sdpa' },
  ];
  it.each(cases.map((c) => [`${c.layout} · ${c.style} · ${c.dtype ?? 'f32'}${c.lora ? ' · LoRA' : ''}${c.names ? ` · ${c.names} names` : ''}`, c]))('%s', async (label, c) => {
    const built = buildExport(c);
    const weights = path.join(tmp.dir, `${label.replace(/\W+/g, '-')}.safetensors`);
    writeSafetensors(weights, deltaCheckpoint(built));
    const original = path.join(tmp.dir, `${label.replace(/\W+/g, '-')}.onnx`);
    saveModel(built.model, original);
    const before = snapshotGraph(built.model);
    convert(built.model, { weights: Checkpoint.open(weights) });
    const saved = saveModel(built.model, original.replace(/\.onnx$/, '.delta.onnx'));
    const r = await checkLayers(before, saved.modelPath, { weights });
    expect(r.layers).toHaveLength(built.selfBlocks.length);
    const f16 = c.dtype === 'f16';
    for (const l of r.layers) {
      expect(l.dtype).toBe(f16 ? 'f16' : 'f32');
      expect(l.error).toBeGreaterThan(f16 ? 1e-5 : 0); // half precision really ran in half
      expect(l.error).toBeLessThan(f16 ? 5e-3 : 1e-5);
      expect(l.weightError).toBeLessThanOrEqual(l.weightTolerance);
    }
    expect('nodes' in r.outside && r.outside.nodes).toBeGreaterThan(50);
    // the original's file gives the same comparison as the snapshot taken before converting
    expect((await checkLayers(original, saved.modelPath, { weights })).outside).toEqual(r.outside);
  });
});

describe('a partial conversion (--allow-partial)', () => {
  it('the attention layers it kept are compared with the original like every node outside the converted ones', async () => {
    const built = buildExport({ layout: 'sd15', style: 'ts-sdpa' });
    const kept = built.selfBlocks.slice(0, 2).map((b) => b.path);
    const weights = path.join(tmp.dir, 'partial.safetensors');
    writeSafetensors(weights, deltaCheckpoint(built, { omit: kept }));
    const original = path.join(tmp.dir, 'partial.onnx');
    saveModel(built.model, original);
    const r = await runCli('convert', original, '--weights', weights, '-o', path.join(tmp.dir, 'partial.delta.onnx'), '--allow-partial', '--json');
    expect(r.code, r.err).toBe(0);
    const { check, report } = JSON.parse(r.out);
    expect(report.layers.filter((l: { status: string }) => l.status === 'kept')).toHaveLength(2);
    expect(check.layers.layers.map((l: { layer: string }) => l.layer)).toEqual(built.selfBlocks.slice(2).map((b) => `${b.path}.attn1`));
    expect(check.layers.outside.nodes).toBeGreaterThan(100);
  });
});

describe('full-size layouts (elided weights; a seeded checkpoint of the real shapes)', () => {
  const cases: [string, FullSizeOptions, number][] = [
    ['SD1.5', { layout: 'sd15', style: 'ts-sdpa' }, 16],
    ['SD1.5 onnxruntime-optimized, f16', { layout: 'sd15', style: 'ms-mha-packed', ort: true, dtype: 'f16' }, 16],
    ['SD2.1 dynamo (static 96² latent)', { layout: 'sd21', style: 'dynamo-sdpa' }, 16],
    ['PixArt-Σ', { layout: 'pixart-sigma', style: 'ts-sdpa' }, 28],
  ];
  const times: string[] = [];
  afterAll(() => {
    const file = path.join(tmp.dir, 'times.txt');
    fs.writeFileSync(file, times.join('\n'));
    console.log(`per-layer check on the full-size layouts (this machine, shared):\n${times.join('\n')}`);
  });

  it.each(cases)('%s', async (label, c, count) => {
    const built = buildFullSize(c);
    const dtype = c.dtype === 'f16' ? DataType.FLOAT16 : DataType.FLOAT;
    const ckpt = seededCheckpoint(path.join(tmp.dir, `${c.layout}-${c.style}.safetensors`), built.selfBlocks.map((b) => ({ block: b.path, channels: b.channels, kernel: b.kernel })), dtype);
    const before = snapshotGraph(built.model);
    convert(built.model, { weights: ckpt });
    const r = await checkLayers(before, built.model, { weights: ckpt });
    expect(r.layers).toHaveLength(count);
    for (const l of r.layers) {
      expect(l.error).toBeGreaterThan(0);
      expect(l.error).toBeLessThan(l.tolerance / 10);
      expect(l.weightError).toBeLessThanOrEqual(l.weightTolerance);
    }
    if (c.style === 'dynamo-sdpa') {
      // static sizes: each layer at its own, large ones on the window the reference reads
      expect(r.layers[0]!.sizes).toEqual(['1×96×96 (its last 2×2 tokens)']);
      expect(r.layers.at(-1)!.sizes).toEqual(['1×96×96 (its last 2×2 tokens)']);
    } else {
      expect(r.layers.every((l) => l.sizes.join() === '1×4×4,2×3×5')).toBe(true);
    }
    expect('nodes' in r.outside && r.outside.nodes).toBeGreaterThan(800);
    times.push(`${label}: ${count} layers in ${(r.ms / 1000).toFixed(1)} s`);
  });
});
