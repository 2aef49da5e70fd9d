/**
 * A WebGPU device for tests (Dawn through the `webgpu` package; Mesa lavapipe on CI).
 * Where the machine has no adapter (no Vulkan driver), suites that need one skip with
 * one loud line that says what to install — unless DELTAC_REQUIRE_WEBGPU=1 (set by
 * .ci/run after it installs lavapipe), where a missing adapter fails the run instead.
 *
 *   const gpu = await openWebGPU('WGSL kernels', { features: ['shader-f16'] });
 *   describe.skipIf(!gpu)('…', () => { … gpu!.device … });
 */
import { create, globals } from 'webgpu';
import { systemDependency } from './system.js';

export interface WebGPUContext {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
}

export const INSTALL_HINT =
  'install Mesa lavapipe from Debian bookworm-backports (apt-get install -t bookworm-backports mesa-vulkan-drivers; `bash .ci/run` does it)';

/** Keeps every GPU instance referenced for the life of the process: if it is collected, Dawn tears the device down. */
const keep: GPU[] = [];

export async function openWebGPU(suite: string, options: { features?: GPUFeatureName[] } = {}): Promise<WebGPUContext | null> {
  Object.assign(globalThis, globals);
  const gpu = create([]);
  keep.push(gpu);
  const adapter = await gpu.requestAdapter();
  const missing = !adapter
    ? 'no WebGPU adapter'
    : (options.features ?? []).filter((f) => !adapter.features.has(f)).map((f) => `the WebGPU adapter lacks "${f}"`)[0];
  if (!systemDependency({ suite, missing: missing ?? null, hint: INSTALL_HINT, require: 'DELTAC_REQUIRE_WEBGPU' }) || !adapter) return null;
  const device = await adapter.requestDevice({ requiredFeatures: options.features ?? [] });
  return { gpu, adapter, device };
}
