/**
 * `deltac preview` and `deltac convert` on the shared tiny pipelines, through the CLI and
 * onnxruntime-node: the images must reproduce diffusers' (reference.original.npy,
 * reference.delta.npy) within 1e-4, also for variants made from the fixture with deltac's
 * IR API (float32/float16 timestep, a tokenizer.json tokenizer) and for a converted folder
 * previewed alone or against its original.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { previewPipelineFolder } from '../../src/pipeline/node/preview-folder.js';
import { readNpy } from '../../src/runtime/npy.js';
import { runCli } from '../helpers/cli.js';
import { SD_TINY, SDXL_TINY, copyPipeline, withExternalData, withHalfIo, withTimestepType, withTokenizerJson } from '../helpers/pipeline-variants.js';
import { listDir, makeTempDir } from '../helpers/paths.js';

const WEIGHTS = path.join(SD_TINY, 'delta.safetensors');

function maxAbs(file: string, reference: string): number {
  const a = readNpy(file);
  const b = readNpy(reference);
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = makeTempDir('deltac-pipeline-');
});
afterAll(() => tmp.cleanup());

async function preview(dir: string, name: string, ...args: string[]) {
  const out = path.join(tmp.dir, name);
  const r = await runCli('preview', dir, '-o', out, ...args);
  return { ...r, out };
}

describe('deltac preview on sd-tiny-pipeline', () => {
  it('reproduces diffusers\' original and converted images with the generation.json settings (--weights: converted in memory)', async () => {
    const r = await preview(SD_TINY, 'weights', '--weights', WEIGHTS);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(listDir(r.out)).toEqual(['compare.png', 'delta.npy', 'delta.png', 'original.npy', 'original.png', 'preview.json']);
    const original = maxAbs(path.join(r.out, 'original.npy'), path.join(SD_TINY, 'reference.original.npy'));
    const delta = maxAbs(path.join(r.out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'));
    console.log(`sd-tiny-pipeline: original max abs ${original.toExponential(2)}, delta ${delta.toExponential(2)} (vs diffusers)`);
    expect(original).toBeLessThan(1e-4);
    expect(delta).toBeLessThan(1e-4);
    // the two images differ (the conversion changes the picture), and preview.json says so
    expect(maxAbs(path.join(r.out, 'original.npy'), path.join(r.out, 'delta.npy'))).toBeGreaterThan(1e-2);
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'preview.json'), 'utf8'));
    expect(json.settings).toMatchObject({ prompt: 'a photograph of an astronaut riding a horse', steps: 8, guidanceScale: 7.5, width: 64, height: 64, scheduler: 'PNDMScheduler', latents: 'latents.npy', vaeScalingFactor: 0.18215 });
    expect(json.timesteps).toEqual([876, 751, 751, 626, 501, 376, 251, 126, 1]); // PNDM (skip_prk_steps) repeats one
    expect(json.models.map((m: { name: string; stepMs: number[] }) => [m.name, m.stepMs.length])).toEqual([['original', 9], ['delta', 9]]);
    expect(json.latentDeviation.length).toBe(9);
    expect(json.latentDeviation[0].relativeRms).toBeGreaterThan(0);
    expect(json.speedup).toBeGreaterThan(0);
    expect(json.converted).toHaveLength(4);
    expect(listDir(tmp.dir).filter((f) => f.includes('.deltac-'))).toEqual([]);
  });

  it('gives the same images when the converted UNet goes to onnxruntime through a temporary file (large models)', async () => {
    const out = path.join(tmp.dir, 'through-file');
    const s = await previewPipelineFolder(SD_TINY, { weights: WEIGHTS, request: {}, output: out, inMemoryLimit: 0 });
    expect(s.models.map((m) => m.name)).toEqual(['original', 'delta']);
    expect(maxAbs(path.join(out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'))).toBeLessThan(1e-4);
    expect(listDir(out)).not.toContain('.unet');
  });

  it('writes PNGs of the images and a compare.png with the three panels and the plot', async () => {
    const out = path.join(tmp.dir, 'weights');
    const { PNG } = (await import('pngjs')).default;
    const png = PNG.sync.read(fs.readFileSync(path.join(out, 'original.png')));
    expect([png.width, png.height]).toEqual([64, 64]);
    const npy = readNpy(path.join(out, 'original.npy')).data as Float32Array;
    for (const i of [0, 1000, 12287]) expect(png.data[Math.floor(i / 3) * 4 + (i % 3)]).toBe(Math.round(npy[i]! * 255));
    const compare = PNG.sync.read(fs.readFileSync(path.join(out, 'compare.png')));
    expect(compare.width).toBeGreaterThan(3 * 256);
    expect(compare.height).toBeGreaterThan(256 + 200);
  });

  it('gives the same images for the variants made from it: float32 and float16 timestep, a tokenizer.json tokenizer', async () => {
    const variants: [string, (dir: string) => void][] = [
      ['timestep-f32', (d) => withTimestepType(d, DataType.FLOAT)],
      ['timestep-f16', (d) => withTimestepType(d, DataType.FLOAT16)],
      ['tokenizer-json', (d) => withTokenizerJson(d, path.join(SDXL_TINY, 'tokenizer'))],
    ];
    for (const [name, make] of variants) {
      const dir = copyPipeline(SD_TINY, path.join(tmp.dir, `variant-${name}`));
      make(dir);
      const r = await preview(dir, `preview-${name}`, '--weights', WEIGHTS);
      expect(r.code, r.err).toBe(0);
      const original = maxAbs(path.join(r.out, 'original.npy'), path.join(SD_TINY, 'reference.original.npy'));
      const delta = maxAbs(path.join(r.out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'));
      console.log(`variant ${name}: original ${original.toExponential(2)}, delta ${delta.toExponential(2)}`);
      expect(original).toBeLessThan(1e-4);
      expect(delta).toBeLessThan(1e-4);
    }
    const inspect = await runCli('inspect', path.join(tmp.dir, 'variant-timestep-f16'));
    expect(inspect.out).toContain('timestep f16[1]');
  });

  it('runs a UNet with float16 inputs and output (cast as it declares them), close to the float32 images', async () => {
    const dir = copyPipeline(SD_TINY, path.join(tmp.dir, 'variant-half'));
    withHalfIo(dir);
    const r = await preview(dir, 'preview-half', '--weights', WEIGHTS);
    expect(r.code, r.err).toBe(0);
    const original = maxAbs(path.join(r.out, 'original.npy'), path.join(SD_TINY, 'reference.original.npy'));
    console.log(`float16 UNet inputs/output: original max abs ${original.toExponential(2)} vs the float32 reference`);
    expect(original).toBeGreaterThan(0); // the float16 rounding shows …
    expect(original).toBeLessThan(5e-3); // … and stays small
  });
});

describe('deltac preview on sdxl-tiny-pipeline', () => {
  it('reproduces diffusers\' SDXL images: two text encoders, text_embeds and time_ids, EulerDiscrete, float32 timestep, "!" padding', async () => {
    const r = await preview(SDXL_TINY, 'sdxl', '--weights', path.join(SDXL_TINY, 'delta.safetensors'));
    expect(r.code, r.err).toBe(0);
    const original = maxAbs(path.join(r.out, 'original.npy'), path.join(SDXL_TINY, 'reference.original.npy'));
    const delta = maxAbs(path.join(r.out, 'delta.npy'), path.join(SDXL_TINY, 'reference.delta.npy'));
    console.log(`sdxl-tiny-pipeline: original max abs ${original.toExponential(2)}, delta ${delta.toExponential(2)} (vs diffusers)`);
    expect(original).toBeLessThan(1e-4);
    expect(delta).toBeLessThan(1e-4);
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'preview.json'), 'utf8'));
    expect(json.settings).toMatchObject({ scheduler: 'EulerDiscreteScheduler', guidanceScale: 5, vaeScalingFactor: 0.13025 });
  });
});

describe('deltac convert on a pipeline folder', () => {
  let out: string;
  beforeAll(async () => {
    out = path.join(tmp.dir, 'sd-tiny.delta');
    const r = await runCli('convert', SD_TINY, '--weights', WEIGHTS, '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('4 converted');
    expect(r.out).toMatch(/check +passed/);
    expect(r.out).toMatch(/15 other files carried over unchanged/);
  });

  it('writes a drop-in folder: every file but the UNet byte-identical, under the same names', () => {
    const files = (dir: string) => (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
    expect(files(out)).toEqual(files(SD_TINY));
    for (const f of files(SD_TINY)) {
      const same = fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(SD_TINY, f)));
      expect(same, f).toBe(f !== path.join('unet', 'model.onnx'));
    }
    expect(listDir(tmp.dir).filter((f) => f.includes('.deltac-'))).toEqual([]);
  });

  it('previews alone as the converted pipeline: its image is diffusers\' converted one', async () => {
    const r = await preview(out, 'converted-alone');
    expect(r.code, r.err).toBe(0);
    expect(listDir(r.out)).toEqual(['delta.npy', 'delta.png', 'preview.json']);
    const delta = maxAbs(path.join(r.out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'));
    console.log(`converted folder previewed alone: delta max abs ${delta.toExponential(2)}`);
    expect(delta).toBeLessThan(1e-4);
    const inspect = await runCli('inspect', out);
    expect(inspect.out).toContain('converted by deltac: 4 ΔConvBlocks (K 5, scales 1,0.5, gate simple)');
  });

  it('previews against its original with --compare', async () => {
    const r = await preview(SD_TINY, 'compare', '--compare', out);
    expect(r.code, r.err).toBe(0);
    expect(maxAbs(path.join(r.out, 'original.npy'), path.join(SD_TINY, 'reference.original.npy'))).toBeLessThan(1e-4);
    expect(maxAbs(path.join(r.out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'))).toBeLessThan(1e-4);
  });

  it('keeps the name of the UNet\'s external-data file and does not carry the old one', async () => {
    const dir = copyPipeline(SD_TINY, path.join(tmp.dir, 'variant-external'));
    withExternalData(dir, 'model.onnx_data');
    const converted = path.join(tmp.dir, 'variant-external.delta');
    const r = await runCli('convert', dir, '--weights', WEIGHTS, '-o', converted);
    expect(r.code, r.err).toBe(0);
    expect(listDir(path.join(converted, 'unet'))).toEqual(['config.json', 'model.onnx', 'model.onnx_data']);
    expect(fs.statSync(path.join(converted, 'unet', 'model.onnx_data')).ino).not.toBe(fs.statSync(path.join(dir, 'unet', 'model.onnx_data')).ino);
    const json = JSON.parse((await runCli('inspect', converted, '--json')).out);
    expect(json.unet.converted).toBe(true);
    expect(json.components.find((c: { name: string }) => c.name === 'unet').model.externalData).toEqual(['model.onnx_data']);
    const p = await preview(converted, 'external-alone');
    expect(p.code, p.err).toBe(0);
    expect(maxAbs(path.join(p.out, 'delta.npy'), path.join(SD_TINY, 'reference.delta.npy'))).toBeLessThan(1e-4);
  });

  it('previews the original folder alone as the original', async () => {
    const r = await preview(SD_TINY, 'original-alone', '--steps', '2');
    expect(r.code, r.err).toBe(0);
    expect(listDir(r.out)).toEqual(['original.npy', 'original.png', 'preview.json']);
  });
});
