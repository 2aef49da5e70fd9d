/**
 * A headless Chromium for tests (Debian's `chromium` package driven by puppeteer-core;
 * no browser download). Where the machine has none, suites that need it skip with one
 * loud line that says what to install — unless DELTAC_REQUIRE_BROWSER=1 (set by .ci/run
 * after it installs chromium), where a missing browser fails the run instead.
 *
 *   const chromium = findChromium('the web page');
 *   describe.skipIf(!chromium)('…', () => { … launchChromium(chromium!) … });
 */
import fs from 'node:fs';
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

/** Headless Chromium with WebGPU enabled (on Linux without a GPU it runs on SwiftShader). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-dev-shm-usage'],
  });
}

export const WEBGPU_HINT =
  'Chromium\'s WebGPU needs --enable-unsafe-webgpu on Linux (launchChromium passes it) and a Vulkan device: its bundled SwiftShader or a driver (mesa-vulkan-drivers\' lavapipe) that the Vulkan loader finds (check VK_ICD_FILENAMES) and that Chromium does not blocklist';

/**
 * Whether the browser offers a WebGPU adapter to a page of `url` (a secure context, as
 * 127.0.0.1 is). Without one, one loud SKIPPED line naming `suite` and false, so that a
 * WebGPU case can `ctx.skip()` while the WebAssembly cases run; under
 * DELTAC_REQUIRE_BROWSER=1 it throws instead.
 */
export async function browserHasWebGpu(browser: Browser, url: string, suite: string): Promise<boolean> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    const found = await page.evaluate('(async () => Boolean(navigator.gpu && (await navigator.gpu.requestAdapter())))()');
    return systemDependency({ suite, missing: found ? null : 'Chromium offers no WebGPU adapter', hint: WEBGPU_HINT, require: 'DELTAC_REQUIRE_BROWSER' });
  } finally {
    await page.close();
  }
}
