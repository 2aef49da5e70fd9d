/**
 * Reading a pipeline folder's layout from a file listing (as the browser does with a
 * picked folder), and resolving a preview's settings: the option, else generation.json,
 * else diffusers' defaults; latents from --latents, --seed, generation.json.
 */
import { describe, expect, it } from 'vitest';
import { type PipelineFiles, readPipelineLayout, readVaeConfig, requireSupported } from '../../src/pipeline/layout.js';
import { type PipelineFacts, resolveSettings } from '../../src/pipeline/settings.js';
import { torchRandn } from '../../src/pipeline/torch-randn.js';

function files(entries: Record<string, string>): PipelineFiles {
  return {
    label: 'pipe',
    files: new Map(Object.entries(entries).map(([k, v]) => [k, v.length])),
    readText: async (p) => entries[p]!,
  };
}

const SD_INDEX = JSON.stringify({
  _class_name: 'StableDiffusionPipeline',
  scheduler: ['diffusers', 'PNDMScheduler'],
  safety_checker: [null, null],
  text_encoder: ['diffusers', 'OnnxRuntimeModel'],
  unet: ['diffusers', 'OnnxRuntimeModel'],
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}

describe('pipeline layout', () => {
  it('lists the components of model_index.json with their files, skips null entries, keeps unlisted folders', async () => {
    const layout = await readPipelineLayout(
      files({ 'model_index.json': SD_INDEX, 'unet/model.onnx': 'x', 'unet/model.onnx_data': 'xx', 'text_encoder/model.onnx': 'y', 'feature_extractor/preprocessor_config.json': '{}', 'README.md': '' }),
    );
    expect(layout.kind).toBe('stable-diffusion');
    expect(layout.components.map((c) => [c.name, c.className ?? null, c.files.map((f) => f.path), c.model ?? null])).toEqual([
      ['scheduler', 'PNDMScheduler', [], null],
      ['text_encoder', 'OnnxRuntimeModel', ['text_encoder/model.onnx'], 'text_encoder/model.onnx'],
      ['unet', 'OnnxRuntimeModel', ['unet/model.onnx', 'unet/model.onnx_data'], 'unet/model.onnx'],
      ['feature_extractor', null, ['feature_extractor/preprocessor_config.json'], null],
    ]);
    expect(layout.topFiles.map((f) => f.path)).toEqual(['README.md', 'model_index.json']);
  });

  it('refuses a folder without model_index.json, without unet/model.onnx, or with broken JSON', async () => {
    expect(await code(readPipelineLayout(files({ 'unet/model.onnx': 'x' })))).toMatch(/^DELTAC_E_PIPELINE_FOLDER: .*without model_index.json/);
    expect(await code(readPipelineLayout(files({ 'model_index.json': SD_INDEX, 'text_encoder/model.onnx': 'y' })))).toMatch(
      /^DELTAC_E_PIPELINE_FOLDER: .*no unet\/model.onnx \(its components: text_encoder\)/,
    );
    expect(await code(readPipelineLayout(files({ 'model_index.json': '{"_class_name": ', 'unet/model.onnx': 'x' })))).toMatch(/^DELTAC_E_PIPELINE_FOLDER: model_index.json .* not valid JSON/);
  });

  it('knows an unsupported class (convert only) and names the supported ones when asked to run it', async () => {
    const layout = await readPipelineLayout(files({ 'model_index.json': JSON.stringify({ _class_name: 'StableDiffusionInpaintPipeline' }), 'unet/model.onnx': 'x' }));
    expect(layout.kind).toBeNull();
    expect(await code(Promise.resolve().then(() => requireSupported(layout)))).toMatch(/^DELTAC_E_UNSUPPORTED_PIPELINE: .*StableDiffusionInpaintPipeline; deltac runs StableDiffusionPipeline, .*StableDiffusionXLPipeline/);
  });

  it('reads the VAE scaling factor and its pixel factor from vae_decoder/config.json', async () => {
    const vae = await readVaeConfig(files({ 'vae_decoder/config.json': JSON.stringify({ scaling_factor: 0.13025, block_out_channels: [8, 8, 8] }) }));
    expect(vae).toEqual({ scalingFactor: 0.13025, shiftFactor: 0, scaleFactor: 4, source: 'vae_decoder/config.json' });
    expect((await readVaeConfig(files({}))).scalingFactor).toBe(0.18215);
  });
});

describe('preview settings', () => {
  const facts: PipelineFacts = { kind: 'stable-diffusion', vaeFactor: 8, latentChannels: 4, sampleSize: 8, scheduler: 'PNDMScheduler' };
  const noFile = async () => {
    throw new Error('not read');
  };

  it('takes options first, then generation.json, then diffusers\' defaults, and says where each came from', async () => {
    const s = await resolveSettings({ prompt: 'cat', steps: 3 }, { prompt: 'dog', guidance_scale: 5, negative_prompt: 'blur' }, facts, noFile);
    expect([s.prompt, s.steps, s.guidanceScale, s.negativePrompt, s.width, s.height, s.scheduler, s.seed]).toEqual(['cat', 3, 5, 'blur', 64, 64, 'PNDMScheduler', 0]);
    expect(s.sources).toEqual({ prompt: 'option', steps: 'option', guidanceScale: 'generation.json', negativePrompt: 'generation.json', width: 'default', height: 'default', scheduler: 'default', seed: 'default' });
    const defaults = await resolveSettings({ prompt: 'cat' }, undefined, { ...facts, kind: 'stable-diffusion-xl', sampleSize: 128 }, noFile);
    expect([defaults.steps, defaults.guidanceScale, defaults.width, defaults.negativePrompt]).toEqual([50, 5, 1024, undefined]);
    expect(await code(resolveSettings({}, undefined, facts, noFile))).toMatch(/^DELTAC_E_BAD_OPTION: give --prompt/);
  });

  it('draws latents from the seed with torch\'s generator, or takes a file, checking its shape against the size', async () => {
    const seeded = await resolveSettings({ prompt: 'x', seed: 42, width: 64, height: 128 }, undefined, facts, noFile);
    expect(seeded.latentDims).toEqual([1, 4, 16, 8]);
    expect(seeded.latents).toEqual(torchRandn(42, 4 * 16 * 8));
    const file = { data: new Float32Array(256), shape: [1, 4, 8, 8], source: 'l.npy' };
    expect((await resolveSettings({ prompt: 'x', latents: file }, { seed: 5 }, facts, noFile)).latentsFile).toBe('l.npy');
    expect(await code(resolveSettings({ prompt: 'x', latents: file, width: 128 }, undefined, facts, noFile))).toMatch(/^DELTAC_E_LATENTS_SHAPE: .*\[1, 4, 8, 8\].*\[1, 4, 8, 16\]/);
    expect(await code(resolveSettings({ prompt: 'x', width: 100 }, undefined, facts, noFile))).toMatch(/^DELTAC_E_BAD_OPTION: the width 100 is not a multiple of 8/);
  });

  it('uses generation.json\'s latents file unless --seed is given, and draws from its seed when the file does not fit --size', async () => {
    const read = async () => ({ data: new Float32Array(256).fill(1), shape: [1, 4, 8, 8] });
    const generation = { prompt: 'p', latents: 'latents.npy', seed: 3 };
    expect((await resolveSettings({}, generation, facts, read)).latents[0]).toBe(1);
    expect((await resolveSettings({ seed: 9 }, generation, facts, read)).seed).toBe(9);
    const resized = await resolveSettings({ width: 128 }, generation, facts, read);
    expect([resized.seed, resized.notes.length]).toEqual([3, 1]);
    expect(resized.latents).toEqual(torchRandn(3, 4 * 8 * 16));
  });
});
