/**
 * A headless Chromium for tests (Debian's `chromium` package driven by puppeteer-core;
 * no browser download). Where the machine has none, suites that need it skip with one
 * loud line that says what to install — unless DELTAC_REQUIRE_BROWSER=1 (set by .ci/run
 * after it installs chromium), where a missing browser fails the run instead.
 *
 *   const chromium = findChromium('the web page');
 *   describe.skipIf(!chromium)('…', () => { … launchChromium(chromium!) … });
 *
 * Chromium's WebGPU runs on a GPU it allows or, without one, on its bundled SwiftShader,
 * which needs no Vulkan driver of the system (Dawn points the Vulkan loader at
 * SwiftShader's own ICD, so VK_ICD_FILENAMES does not hide it). It offers no adapter when
 * its software rendering is off or its GPU process cannot start: a case that needs
 * WebGPU asks `chromiumWebGPUAdapter` first and skips (loudly) without one.
 * DELTAC_CHROMIUM_ARGS adds switches to every launch, e.g. `--disable-software-rasterizer`
 * to see the suites as on a machine whose Chromium offers no adapter.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import puppeteer, { type Browser } from 'puppeteer-core';
import { systemDependency } from './system.js';

export const CHROMIUM_HINT = 'install Debian\'s chromium (apt-get install chromium; `bash .ci/run` does it) or set DELTAC_CHROMIUM to a Chromium binary';

/** The Chromium binary to drive, or null (after one loud line) when there is none. */
export function findChromium(suite: string): string | null {
  const candidates = process.env.DELTAC_CHROMIUM ? [process.env.DELTAC_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (found) return found;
  systemDependency({ suite, missing: `no Chromium at ${candidates.join(', ')}`, hint: CHROMIUM_HINT, require: 'DELTAC_REQUIRE_BROWSER' });
  return null;
}

/** Headless Chromium with WebGPU enabled (on Linux without a GPU it runs on SwiftShader), plus DELTAC_CHROMIUM_ARGS. */
export function launchChromium(executablePath: string, extraArgs: string[] = []): Promise<Browser> {
  const fromEnv = (process.env.DELTAC_CHROMIUM_ARGS ?? '').split(/\s+/).filter(Boolean);
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-dev-shm-usage', ...fromEnv, ...extraArgs],
  });
}

export interface BrowserAdapter {
  vendor: string;
  architecture: string;
}

export const NO_ADAPTER_HINT =
  "Chromium's WebGPU needs a GPU it allows or its bundled SwiftShader (no Vulkan driver needed); it offers no adapter when software rendering is off (--disable-software-rasterizer, DELTAC_CHROMIUM_ARGS) or its GPU process fails (see chrome://gpu)";

/** The WebGPU adapter Chromium gives a page (from a secure origin: a server on 127.0.0.1), or null. */
export async function chromiumWebGPUAdapter(browser: Browser): Promise<BrowserAdapter | null> {
  const server = http.createServer((_, res) => res.end('<!doctype html><title>WebGPU probe</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const page = await browser.newPage();
  try {
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return await page.evaluate(async () => {
      const adapter = await navigator.gpu?.requestAdapter();
      return adapter ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture } : null;
    });
  } finally {
    await page.close();
    // Chromium keeps its connection alive: end it here, or closing the browser later waits on it
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/**
 * Whether Chromium offers a WebGPU adapter (`chromiumWebGPUAdapter`). Without one, one loud
 * SKIPPED line naming `suite` and false, so that a WebGPU case can `ctx.skip()` while the
 * WebAssembly cases run; under DELTAC_REQUIRE_BROWSER=1 it throws instead.
 */
export async function browserHasWebGpu(browser: Browser, suite: string): Promise<boolean> {
  const adapter = await chromiumWebGPUAdapter(browser);
  return systemDependency({ suite, missing: adapter ? null : 'Chromium offers no WebGPU adapter', hint: NO_ADAPTER_HINT, require: 'DELTAC_REQUIRE_BROWSER' });
}
