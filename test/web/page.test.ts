/**
 * The web page (examples/web) in a real browser: Debian's Chromium, headless, driven by
 * puppeteer-core, served by the project's own server (`npm run web`). With WebGPU
 * (SwiftShader in headless Chromium: no shader-f16, so f32 kernels) both models run on
 * onnxruntime-web's WebGPU execution provider and the generated WGSL kernels run through
 * the generated host module, layer by layer (runLayer) and as whole ΔConvBlocks (runBlock,
 * batch 2, against the reference of the whole block); with `?ep=wasm` the models run on WebAssembly. Every number
 * the page shows is checked here. Screenshots: examples/out/web/page-{webgpu,wasm}.png.
 * Where Chromium offers no WebGPU adapter the WebGPU case skips with one loud line (fails
 * under DELTAC_REQUIRE_BROWSER=1) and the WebAssembly case still runs.
 */
import path from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResults } from '../../examples/web/main.js';
import { startWebServer, type WebServer } from '../../examples/web/serve.js';
import { WEB_OUT } from '../../examples/web/build.js';
import { type BrowserAdapter, NO_ADAPTER_HINT, chromiumWebGPUAdapter, findChromium, launchChromium } from '../helpers/browser.js';
import { systemDependency } from '../helpers/system.js';

const chromium = findChromium('test/web/page.test.ts (the web page in Chromium)');

/** SPEC.md §5: a converted fp32 model against PyTorch. */
const MODEL_TOLERANCE = 1e-4;
/** The WGSL kernels against the TypeScript reference (as in test/codegen/wgsl.test.ts). */
const KERNEL_TOLERANCE = 1e-5;

describe.skipIf(!chromium)('examples/web in headless Chromium', () => {
  let server: WebServer;
  let browser: Browser;
  let adapter: BrowserAdapter | null = null;

  beforeAll(async () => {
    server = await startWebServer(0);
    browser = await launchChromium(chromium!);
    adapter = await chromiumWebGPUAdapter(browser);
  }, 300_000); // the server converts the model and bundles the page first: minutes on a loaded machine
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function load(query: string, screenshot: string): Promise<PageResults> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
    });
    await page.setViewport({ width: 1040, height: 640 });
    await page.goto(server.url + query);
    await page.waitForFunction(() => document.documentElement.dataset.status !== 'running', { timeout: 200_000 });
    const results = (await page.evaluate(() => (window as unknown as { deltacResults: PageResults }).deltacResults))!;
    await page.screenshot({ path: path.join(WEB_OUT, screenshot), fullPage: true });
    await page.close();
    expect(results.error).toBeUndefined();
    expect(errors).toEqual([]);
    expect(results.status).toBe('done');
    return results;
  }

  function checkModels(results: PageResults, provider: string) {
    expect(results.models.map((m) => [m.model, m.provider, m.reference])).toEqual([
      ['original', provider, 'out0.attn.npy'],
      ['converted', provider, 'out0.delta.npy'],
    ]);
    for (const m of results.models) {
      expect(m.rel, `${m.model} on ${provider}`).toBeLessThanOrEqual(MODEL_TOLERANCE);
      expect(m.firstMs).toBeGreaterThan(0);
      expect(m.medianMs).toBeGreaterThan(0);
    }
  }

  it('runs both models on the WebGPU execution provider, every layer kernel and every whole block on WebGPU (SwiftShader: f32 shaders)', async (ctx) => {
    const webgpu = systemDependency({
      suite: 'test/web/page.test.ts, the web page on WebGPU (its WebAssembly case runs)',
      missing: adapter ? null : 'Chromium offers no WebGPU adapter',
      hint: NO_ADAPTER_HINT,
      require: 'DELTAC_REQUIRE_BROWSER',
    });
    if (!webgpu) return ctx.skip();
    const results = await load('', 'page-webgpu.png');
    expect(results.backend).toBe('webgpu');
    expect(results.adapter).toMatchObject({ vendor: 'google', architecture: 'swiftshader', shaderF16: false });
    checkModels(results, 'webgpu');
    // The WebGPU EP's own error on the unconverted model is the floor (~8e-5 on SwiftShader,
    // against ~3e-7 on WebAssembly; it comes from Cos/Sin of the timestep and position
    // embeddings, which the conversion does not touch): the conversion must not add to it.
    const [original, converted] = results.models;
    expect(converted!.rel).toBeLessThanOrEqual(2 * original!.rel + 1e-6);
    expect(results.kernels.map((k) => k.layer)).toEqual([0, 1, 2, 3].map((i) => `transformer_blocks.${i}.attn1`));
    for (const k of results.kernels) {
      expect(k.shader, k.layer).toBe('f32');
      expect(k.rel, k.layer).toBeLessThanOrEqual(KERNEL_TOLERANCE);
    }
    // the whole block: conv_up, the pyramid, conv_out and the pool, same f32 bound
    expect(results.blocks.map((b) => b.layer)).toEqual(results.kernels.map((k) => k.layer));
    for (const b of results.blocks) {
      expect(b.shader, b.layer).toBe('f32');
      expect(b.rel, b.layer).toBeLessThanOrEqual(KERNEL_TOLERANCE);
      expect(b.ms, b.layer).toBeGreaterThan(0);
    }
  }, 240_000); // ~20 s on an idle machine (SwiftShader compiles every shader on first use)

  it('falls back to WebAssembly (?ep=wasm) and says the kernels need WebGPU', async () => {
    const results = await load('?ep=wasm', 'page-wasm.png');
    expect(results.backend).toBe('wasm');
    checkModels(results, 'wasm');
    // WebAssembly is onnxruntime's CPU kernels: as close to PyTorch as onnxruntime-node
    for (const m of results.models) expect(m.rel, m.model).toBeLessThan(1e-5);
    expect(results.kernels).toEqual([]);
    expect(results.blocks).toEqual([]);
    expect(results.kernelsSkipped).toMatch(/WebGPU/);
  }, 240_000);

  it('finds no WebGPU adapter in a Chromium that may not render in software, where SwiftShader was its adapter (the WebGPU case then skips)', async (ctx) => {
    // with a GPU Chromium allows, switching software rendering off leaves that GPU: nothing to see
    if (adapter?.architecture !== 'swiftshader') return ctx.skip();
    const noSoftware = await launchChromium(chromium!, ['--disable-software-rasterizer']);
    try {
      expect(await chromiumWebGPUAdapter(noSoftware)).toBeNull();
    } finally {
      await noSoftware.close();
    }
  }, 120_000);
});
