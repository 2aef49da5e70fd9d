/**
 * The preview page (examples/web/preview.html) in a real browser on sd-tiny-pipeline:
 * Debian's Chromium, headless, driven by puppeteer-core, served by `npm run web --
 * --pipeline … --weights …` (the folder converted at serve time by `deltac convert`).
 * The page runs the original and the converted pipeline with deltac's own pipeline code
 * in onnxruntime-web and must reproduce diffusers' two images (reference.original.npy,
 * reference.delta.npy): within 1e-4 on WebAssembly, within 1e-3 on the WebGPU EP
 * (SwiftShader in headless Chromium; skipped loudly where Chromium has no adapter), and
 * show every UNet step's time. A third case picks the folders from disk as a user does
 * (`<input webkitdirectory>`), the converted one with its UNet weights as external data.
 * Screenshots: examples/out/web/preview-{wasm,webgpu,picked}.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_OUT } from '../../examples/web/build.js';
import type { PreviewPageResults } from '../../examples/web/preview.js';
import { startWebServer, type WebServer } from '../../examples/web/serve.js';
import { convertPipelineFolder } from '../../src/pipeline/node/convert-folder.js';
import { browserHasWebGpu, findChromium, launchChromium } from '../helpers/browser.js';
import { makeTempDir } from '../helpers/paths.js';
import { SD_TINY } from '../helpers/pipeline-variants.js';

const SUITE = 'test/web/preview.test.ts (the pipeline preview page in Chromium)';
const chromium = findChromium(SUITE);
const WEIGHTS = path.join(SD_TINY, 'delta.safetensors');
/** The issue's bounds on the image (max abs, HWC in [0, 1]) against diffusers'. */
const WASM_TOLERANCE = 1e-4;
const WEBGPU_TOLERANCE = 1e-3;

describe.skipIf(!chromium)('examples/web/preview.html in headless Chromium: sd-tiny-pipeline', () => {
  let server: WebServer;
  let browser: Browser;
  const tmp = makeTempDir('deltac-web-preview-');

  beforeAll(async () => {
    server = await startWebServer(0, () => {}, { pipeline: { pipeline: SD_TINY, weights: WEIGHTS } });
    browser = await launchChromium(chromium!);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    tmp.cleanup();
  });

  async function open(query: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
    });
    await page.setViewport({ width: 1100, height: 800 });
    await page.goto(`${server.url}preview.html${query}`);
    return { page, errors };
  }

  async function finish(page: Page, errors: string[], screenshot: string): Promise<PreviewPageResults> {
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.status ?? ''), { timeout: 400_000 });
    const results = (await page.evaluate(() => (window as unknown as { deltacPreview: PreviewPageResults }).deltacPreview))!;
    // the step table as the user sees it: one row per UNet step, both models' times
    const shown = await page.evaluate(() =>
      Array.from(document.querySelectorAll('#step-times tbody tr'), (tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? '')),
    );
    await page.screenshot({ path: path.join(WEB_OUT, screenshot), fullPage: true });
    await page.close();
    expect(results.error).toBeUndefined();
    expect(errors).toEqual([]);
    expect(results.status).toBe('done');
    expect(shown).toEqual(results.timesteps.map((t, i) => [String(i + 1), String(t), ...results.models.map((m) => m.stepMs[i]!.toFixed(1)), (100 * results.deviation[i]!.relativeRms).toPrecision(3)]));
    return results;
  }

  /** Both images within `tolerance` of diffusers', with the folder's own settings; every step timed. */
  function check(results: PreviewPageResults, tolerance: number): void {
    expect(results.settings).toMatchObject({ prompt: 'a photograph of an astronaut riding a horse', steps: 8, guidanceScale: 7.5, width: 64, height: 64, scheduler: 'PNDMScheduler', latentsFile: 'latents.npy' });
    expect(Object.values(results.settings!.sources).every((s) => s === 'generation.json')).toBe(true);
    // PNDM with skip_prk_steps: 8 inference steps are 9 UNet steps, as diffusers runs them
    expect(results.timesteps).toEqual([876, 751, 751, 626, 501, 376, 251, 126, 1]);
    expect(results.models.map((m) => m.role)).toEqual(['original', 'delta']);
    for (const m of results.models) {
      expect(m.stepMs).toHaveLength(results.timesteps.length);
      for (const t of m.stepMs) expect(t, m.role).toBeGreaterThan(0);
      expect(m.totalMs).toBeCloseTo(m.stepMs.reduce((a, b) => a + b, 0), 6);
      expect(m.loadMs).toBeGreaterThan(0);
    }
    // the speed-ups are preview.json's: median step, all steps, steps 2 … n
    const [o, d] = results.models as [(typeof results.models)[0], (typeof results.models)[0]];
    expect(results.speedup).toBeCloseTo(o.medianStepMs / d.medianStepMs, 12);
    expect(results.meanSpeedup).toBeCloseTo(o.meanStepMs / d.meanStepMs, 12);
    expect(results.warmSpeedup).toBeCloseTo(o.warmMeanStepMs / d.warmMeanStepMs, 12);
    expect(results.references.map((r) => [r.model, r.file])).toEqual([
      ['original', 'reference.original.npy'],
      ['delta', 'reference.delta.npy'],
    ]);
    for (const r of results.references) expect(r.maxAbs, `${r.model} image vs ${r.file} on ${results.backend}`).toBeLessThanOrEqual(tolerance);
    // the conversion changes the picture (the two references differ by ~0.13): the page must not compare a model with itself
    expect(results.imageDifference!.maxAbs).toBeGreaterThan(0.01);
  }

  it('on WebAssembly (?ep=wasm): both images within 1e-4 of diffusers\', the time of every UNet step shown', async () => {
    const { page, errors } = await open('?ep=wasm');
    const results = await finish(page, errors, 'preview-wasm.png');
    expect(results.backend).toBe('wasm');
    expect(results.pipeline).toMatchObject({ source: 'served', className: 'StableDiffusionPipeline', label: 'sd-tiny-pipeline' });
    check(results, WASM_TOLERANCE);
  }, 300_000);

  it('on the WebGPU execution provider: both images within 1e-3 of diffusers\'', async (ctx) => {
    if (!(await browserHasWebGpu(browser, `${SUITE}, WebGPU case (its WebAssembly cases run)`))) ctx.skip();
    const { page, errors } = await open('');
    const results = await finish(page, errors, 'preview-webgpu.png');
    expect(results.backend).toBe('webgpu');
    expect(results.layout).toBe('NCHW');
    check(results, WEBGPU_TOLERANCE);
  }, 600_000); // ~40 s on an idle 2-core machine: SwiftShader runs every shader on the CPU

  it('from folders picked on disk: the original and one `deltac convert` wrote with external data', async () => {
    const converted = path.join(tmp.dir, 'sd-tiny.delta');
    await convertPipelineFolder(SD_TINY, { weights: WEIGHTS, output: converted, externalData: true });
    const unetFiles = fs.readdirSync(path.join(converted, 'unet')).sort();
    expect(unetFiles.length).toBeGreaterThan(2); // model.onnx, config.json and the weights beside them
    const { page, errors } = await open('?ep=wasm&autorun=0');
    await page.waitForFunction(() => document.documentElement.dataset.status === 'ready');
    await (await page.$('input#pick-main'))!.uploadFile(SD_TINY);
    await (await page.$('input#pick-compare'))!.uploadFile(converted);
    await page.waitForFunction(() => /sd-tiny\.delta/.test(document.getElementById('opened')!.textContent ?? '') && !(document.getElementById('run') as HTMLButtonElement).disabled);
    expect(await page.$eval('#opened', (e) => e.textContent)).toMatch(/all other files identical/);
    await page.click('#run');
    const results = await finish(page, errors, 'preview-picked.png');
    expect(results.pipeline).toMatchObject({ source: 'picked', label: 'sd-tiny-pipeline', compare: 'sd-tiny.delta' });
    check(results, WASM_TOLERANCE);
  }, 300_000);

  it('says what is wrong with a picked folder that is not a pipeline, and with a size the VAE cannot make', async () => {
    const notPipeline = path.join(tmp.dir, 'just-a-model');
    fs.mkdirSync(notPipeline);
    fs.writeFileSync(path.join(notPipeline, 'model.onnx'), 'x');
    const { page, errors } = await open('?ep=wasm&autorun=0');
    await page.waitForFunction(() => document.documentElement.dataset.status === 'ready');
    const statusLine = async () => {
      await page.waitForFunction(() => document.documentElement.dataset.status === 'error');
      return page.$eval('#status', (e) => e.textContent);
    };
    await (await page.$('input#pick-main'))!.uploadFile(notPipeline);
    expect(await statusLine()).toMatch(/^error DELTAC_E_PIPELINE_FOLDER: "just-a-model" is a folder without model_index\.json/);
    await page.reload();
    await page.waitForFunction(() => document.documentElement.dataset.status === 'ready');
    await page.$eval('#width', (e) => ((e as HTMLInputElement).value = '60'));
    await page.click('#run');
    expect(await statusLine()).toMatch(/^error DELTAC_E_BAD_OPTION: the width 60 is not a multiple of 8/);
    await page.close();
    expect(errors).toEqual([]);
  }, 60_000);
});
