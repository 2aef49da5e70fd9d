/**
 * Bad pipeline folders and options: each a DELTAC_E_ code with a message that says what
 * to do, and nothing written (no output folder, no temporary folder left beside it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/runtime/npy.js';
import { runCli } from '../helpers/cli.js';
import { listDir, makeTempDir, modelPath } from '../helpers/paths.js';
import { SD_TINY, copyPipeline } from '../helpers/pipeline-variants.js';

const WEIGHTS = path.join(SD_TINY, 'delta.safetensors');
let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = makeTempDir('deltac-pipeline-bad-');
});
afterAll(() => tmp.cleanup());

/** A copy of sd-tiny-pipeline changed by `edit`. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = copyPipeline(SD_TINY, path.join(tmp.dir, name));
  edit(dir);
  return dir;
}

function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j, null, 2));
}

/** Runs the CLI expecting exit 1 with `code`; the output path must not exist afterwards, nor any temp folder. */
async function refused(code: string, out: string, ...argv: string[]) {
  const r = await runCli(...argv);
  expect(r.code, r.out).toBe(1);
  expect(r.err).toContain(code);
  expect(fs.existsSync(out)).toBe(false);
  expect(listDir(path.dirname(out)).filter((f) => f.includes('.deltac-'))).toEqual([]);
  return r.err;
}

describe('bad pipeline input', () => {
  it('a folder without unet/: convert, preview and inspect say what is missing', async () => {
    const dir = variant('no-unet', (d) => fs.rmSync(path.join(d, 'unet'), { recursive: true }));
    const out = path.join(tmp.dir, 'out-no-unet');
    const err = await refused('DELTAC_E_PIPELINE_FOLDER', out, 'convert', dir, '--weights', WEIGHTS, '-o', out);
    expect(err).toContain('has no unet/model.onnx (its components: scheduler, text_encoder, tokenizer, vae_decoder)');
    await refused('DELTAC_E_PIPELINE_FOLDER', out, 'preview', dir, '-o', out);
    expect((await runCli('inspect', dir)).err).toContain('DELTAC_E_PIPELINE_FOLDER');
  });

  it('a folder without model_index.json is not taken for a pipeline', async () => {
    const dir = variant('no-index', (d) => fs.rmSync(path.join(d, 'model_index.json')));
    const out = path.join(tmp.dir, 'out-no-index');
    const err = await refused('DELTAC_E_PIPELINE_FOLDER', out, 'preview', dir, '-o', out);
    expect(err).toContain('without model_index.json');
  });

  it('an unsupported pipeline class: preview names the supported ones; convert still converts its UNet', async () => {
    const dir = variant('img2img', (d) => editJson(path.join(d, 'model_index.json'), (j) => (j._class_name = 'StableDiffusionImg2ImgPipeline')));
    const out = path.join(tmp.dir, 'out-img2img');
    const err = await refused('DELTAC_E_UNSUPPORTED_PIPELINE', out, 'preview', dir, '--weights', WEIGHTS, '-o', out);
    expect(err).toContain('StableDiffusionImg2ImgPipeline');
    expect(err).toContain('StableDiffusionPipeline');
    expect(err).toContain('StableDiffusionXLPipeline');
    const converted = await runCli('convert', dir, '--weights', WEIGHTS, '-o', out, '--no-check');
    expect(converted.code, converted.err).toBe(0);
    expect(fs.existsSync(path.join(out, 'unet', 'model.onnx'))).toBe(true);
  });

  it('an unsupported scheduler, in the folder or asked for', async () => {
    const dir = variant('lms', (d) => {
      editJson(path.join(d, 'scheduler', 'scheduler_config.json'), (j) => (j._class_name = 'LMSDiscreteScheduler'));
      editJson(path.join(d, 'generation.json'), (j) => delete j.scheduler);
    });
    const out = path.join(tmp.dir, 'out-lms');
    const err = await refused('DELTAC_E_UNSUPPORTED_SCHEDULER', out, 'preview', dir, '--weights', WEIGHTS, '-o', out);
    expect(err).toContain('PNDMScheduler');
    expect(err).toContain('EulerDiscreteScheduler');
    await refused('DELTAC_E_UNSUPPORTED_SCHEDULER', out, 'preview', SD_TINY, '--scheduler', 'heun', '-o', out);
  });

  it('a tokenizer folder in neither format', async () => {
    const dir = variant('no-tokenizer-files', (d) => {
      fs.rmSync(path.join(d, 'tokenizer', 'vocab.json'));
    });
    const out = path.join(tmp.dir, 'out-tokenizer');
    const err = await refused('DELTAC_E_TOKENIZER', out, 'preview', dir, '-o', out);
    expect(err).toMatch(/tokenizer\.json|vocab\.json/);
  });

  it('--size not a multiple of the VAE factor, and --latents of the wrong shape', async () => {
    const out = path.join(tmp.dir, 'out-size');
    const err = await refused('DELTAC_E_BAD_OPTION', out, 'preview', SD_TINY, '--size', '60x64', '-o', out);
    expect(err).toContain('not a multiple of 8');
    const latents = path.join(tmp.dir, 'latents-9.npy');
    writeNpy(latents, new Float32Array(4 * 8 * 9), [1, 4, 8, 9]);
    const shape = await refused('DELTAC_E_LATENTS_SHAPE', out, 'preview', SD_TINY, '--latents', latents, '-o', out);
    expect(shape).toContain('[1, 4, 8, 9]');
    expect(shape).toContain('[1, 4, 8, 8]');
  });

  it('contradicting options', async () => {
    const out = path.join(tmp.dir, 'out-options');
    await refused('DELTAC_E_BAD_OPTION', out, 'preview', SD_TINY, '--weights', WEIGHTS, '--compare', SD_TINY, '-o', out);
    await refused('DELTAC_E_BAD_OPTION', out, 'preview', SD_TINY, '--seed', '1', '--latents', path.join(SD_TINY, 'latents.npy'), '-o', out);
    await refused('DELTAC_E_BAD_OPTION', out, 'convert', SD_TINY, '--weights', WEIGHTS, '--reuse-weights', '-o', out);
  });

  it('a checkpoint for another model: the in-memory conversion fails and nothing is written', async () => {
    const out = path.join(tmp.dir, 'out-other-weights');
    await refused('DELTAC_E_', out, 'preview', SD_TINY, '--weights', modelPath('pixart-mini', 'delta.safetensors'), '-o', out);
  });

  it('truncates a prompt over 77 tokens with a warning, as diffusers does', async () => {
    const out = path.join(tmp.dir, 'out-long');
    const prompt = Array.from({ length: 90 }, (_, i) => `word${i}`).join(' ');
    const r = await runCli('preview', SD_TINY, '--prompt', prompt, '--steps', '2', '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/warning: the prompt ".*" has more tokens than the text encoder takes \(77 with CLIP's\); it was truncated, as diffusers does. Dropped: ".*word 8 9"/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'preview.json'), 'utf8')).truncatedPrompts.map((t: { prompt: string }) => t.prompt)).toEqual([prompt]);
  });
});

describe('where outputs may go', () => {
  it('never into the input folder, nor around it', async () => {
    const dir = variant('inside', () => {});
    const inside = path.join(dir, 'converted');
    await refused('DELTAC_E_OUTPUT_EXISTS', inside, 'convert', dir, '--weights', WEIGHTS, '-o', inside);
    await refused('DELTAC_E_OUTPUT_EXISTS', inside, 'preview', dir, '-o', inside);
    const before = fs.readdirSync(dir).sort();
    const r = await runCli('convert', dir, '--weights', WEIGHTS, '-o', dir);
    expect(r.err).toContain('DELTAC_E_OUTPUT_EXISTS');
    const around = await runCli('convert', dir, '--weights', WEIGHTS, '-o', tmp.dir, '--force');
    expect(around.err).toContain('DELTAC_E_OUTPUT_EXISTS');
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });

  it('an existing output folder: refused unless --force, and --force replaces only a pipeline folder', async () => {
    const out = path.join(tmp.dir, 'existing');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    for (const force of [[], ['--force']]) {
      const r = await runCli('convert', SD_TINY, '--weights', WEIGHTS, '-o', out, '--no-check', ...force);
      expect(r.err).toContain('DELTAC_E_OUTPUT_EXISTS');
      expect(fs.readdirSync(out)).toEqual(['notes.txt']);
    }
    const pipeline = path.join(tmp.dir, 'existing-pipeline');
    expect((await runCli('convert', SD_TINY, '--weights', WEIGHTS, '-o', pipeline, '--no-check')).code).toBe(0);
    fs.writeFileSync(path.join(pipeline, 'stale.txt'), 'old');
    expect((await runCli('convert', SD_TINY, '--weights', WEIGHTS, '-o', pipeline, '--no-check')).err).toContain('DELTAC_E_OUTPUT_EXISTS');
    const replaced = await runCli('convert', SD_TINY, '--weights', WEIGHTS, '-o', pipeline, '--no-check', '--force');
    expect(replaced.code, replaced.err).toBe(0);
    expect(fs.existsSync(path.join(pipeline, 'stale.txt'))).toBe(false);
    expect(listDir(tmp.dir).filter((f) => f.includes('.deltac-'))).toEqual([]);
  });
});
