/**
 * The generated WGSL on a real WebGPU implementation (Dawn through the `webgpu`
 * package; Mesa lavapipe on CI): every module validates with Dawn's WGSL compiler,
 * and the generated host module runs every layer of sd15-mini and pixart-mini plus
 * odd shapes, compared with the CPU reference. Lavapipe compiles a pipeline in
 * 1–3 s when its shader cache is cold, so pipelines are created once and reused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { emitKernels } from '../../src/codegen/emit.js';
import type { PyramidConvKernel } from '../../src/codegen/host/webgpu-runtime.js';
import { wgslSource } from '../../src/codegen/wgsl/wgsl-kernel.js';
import type { PyramidConvConfig } from '../../src/passes/delta-conv/op.js';
import { pyramidConvReference } from '../../src/reference/index.js';
import { openWebGPU } from '../helpers/webgpu.js';
import { fixtureLayers, maxRelError, pyramidModel, randomArray, type LayerSpec } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';

/** Every folder this file writes lies in here, removed after the run. */
const TMP = makeTempDir('deltac-codegen-');
afterAll(TMP.cleanup);

interface HostModule {
  createDeltacKernels(device: GPUDevice, weights: ArrayBufferView, options?: { precision?: 'auto' | 'f32' }): Promise<{
    layers: readonly string[];
    runLayer(name: string, input: { data: Float32Array; batch: number; height: number; width: number }): Promise<Float32Array>;
    kernel(name: string): PyramidConvKernel;
    weights(name: string): GPUBuffer;
    destroy(): void;
  }>;
}

/** No adapter (no Vulkan driver): the suites below skip with one loud line, or fail under DELTAC_REQUIRE_WEBGPU=1. */
const gpu = await openWebGPU('test/codegen/wgsl.test.ts (WGSL kernels on WebGPU)', { features: ['shader-f16'] });
const device = gpu?.device as GPUDevice;

afterAll(() => device?.destroy());

/** Emits the kernels of `layers` and imports the generated host module. */
async function hostModule(layers: LayerSpec[], dtype: 'float32' | 'float16' = 'float32') {
  const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-wgsl-'));
  emitKernels(pyramidModel(layers, dtype), dir);
  const mod = (await import(pathToFileURL(path.join(dir, 'deltac-kernels.ts')).href)) as HostModule;
  return mod.createDeltacKernels(device, fs.readFileSync(path.join(dir, 'gate-weights.bin')));
}

const reference = (l: LayerSpec, u: Float32Array, batch: number, height: number, width: number) =>
  pyramidConvReference(u, l.weights.gateWeights, { batch, height, width }, l);

describe.skipIf(!gpu)('generated WGSL validates with Dawn (f32 and f16)', () => {
  const configs: PyramidConvConfig[] = [];
  for (const dtype of ['float32', 'float16'] as const) {
    for (const c of [320, 640, 1280]) configs.push({ channels: c, inner: c / 2, kernel: 9, scales: [1, 0.5], gate: 'simple', dtype });
    configs.push({ channels: 1152, inner: 576, kernel: 13, scales: [1, 0.5], gate: 'sigmoid', dtype });
    configs.push({ channels: 12, inner: 6, kernel: 3, scales: [1, 0.5, 0.25], gate: 'sigmoid', dtype }); // odd Ci/2, three gates
    configs.push({ channels: 32, inner: 16, kernel: 5, scales: [0.5], gate: 'simple', dtype }); // no full-res gate
  }
  it('every module compiles without errors', async () => {
    for (const c of configs) {
      for (const elem of ['f32', 'f16'] as const) {
        const module = device.createShaderModule({ code: wgslSource(c, elem) });
        const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`);
        expect(errors, `${c.inner}/${c.kernel}/${elem}`).toEqual([]);
      }
    }
  });
});

describe.skipIf(!gpu)('generated host module on WebGPU vs the CPU reference', () => {
  it('runs every sd15-mini layer (32×24 latent: 32×24 … 4×3) within 1e-5, and other shapes with the same pipelines', async () => {
    const layers = fixtureLayers('sd15-mini');
    const kernels = await hostModule(layers);
    try {
      expect([...kernels.layers]).toEqual(layers.map((l) => l.path));
      for (const l of layers) {
        const u = randomArray(l.height * l.width * l.inner, 11);
        const g = await kernels.runLayer(l.path, { data: u, batch: 1, height: l.height, width: l.width });
        expect(maxRelError(g, reference(l, u, 1, l.height, l.width)), l.path).toBeLessThan(1e-5);
      }
      // the 16×16 latent (down to 2×2), batch 2, and odd non-divisible sizes
      for (const [name, b, h, w] of [
        ['down_blocks.0.attentions.0.transformer_blocks.0', 2, 16, 16],
        ['mid_block.attentions.0.transformer_blocks.0', 2, 2, 2],
        ['down_blocks.2.attentions.1.transformer_blocks.0', 1, 11, 5],
        ['up_blocks.3.attentions.1.transformer_blocks.0', 3, 17, 9],
      ] as const) {
        const l = layers.find((x) => x.path === name)!;
        const u = randomArray(b * h * w * l.inner, 12);
        const g = await kernels.kernel(name).run(u, kernels.weights(name), { batch: b, height: h, width: w });
        expect(maxRelError(g, reference(l, u, b, h, w)), `${name} ${b}×${h}×${w}`).toBeLessThan(1e-5);
      }
    } finally {
      kernels.destroy();
    }
  });

  it('runs every pixart-mini layer (8×6 tokens, sigmoid gate) within 1e-5, and odd shapes', async () => {
    const layers = fixtureLayers('pixart-mini');
    const kernels = await hostModule(layers);
    try {
      for (const l of layers) {
        const u = randomArray(2 * l.height * l.width * l.inner, 21);
        const g = await kernels.runLayer(l.path, { data: u, batch: 2, height: l.height, width: l.width });
        expect(maxRelError(g, reference(l, u, 2, l.height, l.width)), l.path).toBeLessThan(1e-5);
      }
      const l = layers[3]!;
      for (const [h, w] of [[9, 7], [3, 2], [1, 13]] as const) {
        if (Math.floor(h / 2) < 1 || Math.floor(w / 2) < 1) {
          await expect(kernels.runLayer(l.path, { data: new Float32Array(h * w * l.inner), batch: 1, height: h, width: w })).rejects.toThrow(/empty grid/);
          continue;
        }
        const u = randomArray(h * w * l.inner, 22);
        const g = await kernels.runLayer(l.path, { data: u, batch: 1, height: h, width: w });
        expect(maxRelError(g, reference(l, u, 1, h, w)), `${h}×${w}`).toBeLessThan(1e-5);
      }
    } finally {
      kernels.destroy();
    }
  });

  it('runs float16 layers with f16 shaders (shader-f16) within 1e-2', async () => {
    const layers = [fixtureLayers('pixart-mini')[0]!, fixtureLayers('sd15-mini')[6]!];
    const kernels = await hostModule(layers, 'float16');
    try {
      expect(kernels.kernel(layers[0]!.path).elem).toBe('f16');
      for (const l of layers) {
        // weights as the f16 model holds them
        const w16 = l.weights.gateWeights.map((v) => Math.fround(v));
        const u = randomArray(2 * l.height * l.width * l.inner, 31);
        const g = await kernels.runLayer(l.path, { data: u, batch: 2, height: l.height, width: l.width });
        const err = maxRelError(g, pyramidConvReference(u, w16, { batch: 2, height: l.height, width: l.width }, l));
        expect(err, l.path).toBeLessThan(1e-2);
        expect(err, `${l.path}: f16 results should not be bit-identical to f32`).toBeGreaterThan(0);
      }
    } finally {
      kernels.destroy();
    }
  });
});
