/**
 * The whole ΔConvBlock on WebGPU (Dawn; Mesa lavapipe on CI) through the generated host
 * module's `runBlock`: conv_up and conv_out as tiled matmuls, the pyramid module, the
 * pool term — compared with the TypeScript reference of SPEC.md §1 on the layers of
 * sd15-mini (f32) and pixart-mini (f16 storage), batch 2 and odd sizes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { emitKernels } from '../../src/codegen/emit.js';
import { floatsFromHalfBits, halfBitsFromFloats } from '../../src/codegen/host/webgpu-runtime.js';
import { deltaConvBlockReference, type DeltaConvBlockWeights } from '../../src/reference/index.js';
import { openWebGPU } from '../helpers/webgpu.js';
import { fixtureLayers, maxRelError, pyramidModel, randomArray, type LayerSpec } from '../reference/fixtures.js';
import { makeTempDir } from '../helpers/paths.js';

/** Every folder this file writes lies in here, removed after the run. */
const TMP = makeTempDir('deltac-codegen-');
afterAll(TMP.cleanup);

interface Input {
  data: Float32Array;
  batch: number;
  height: number;
  width: number;
}
interface HostModule {
  createDeltacKernels(
    device: GPUDevice,
    weights: ArrayBufferView,
    options?: { precision?: 'auto' | 'f32'; blockWeights?: ArrayBufferView },
  ): Promise<{ runBlock(name: string, input: Input): Promise<Float32Array>; destroy(): void }>;
}

const gpu = await openWebGPU('test/codegen/wgsl-block.test.ts (whole ΔConvBlock on WebGPU)', { features: ['shader-f16'] });
const device = gpu?.device as GPUDevice;

afterAll(() => device?.destroy());

/** Emits the kernels of `layers`, imports the generated host module; `open` creates its kernels on the device. */
async function emitted(layers: LayerSpec[], dtype: 'float32' | 'float16') {
  const dir = fs.mkdtempSync(path.join(TMP.dir, 'deltac-wgsl-block-'));
  emitKernels(pyramidModel(layers, dtype), dir);
  const mod = (await import(pathToFileURL(path.join(dir, 'deltac-kernels.ts')).href)) as HostModule;
  const file = (name: string) => fs.readFileSync(path.join(dir, name));
  return { open: (withBlockWeights = true) => mod.createDeltacKernels(device, file('gate-weights.bin'), { blockWeights: withBlockWeights ? file('block-weights.bin') : undefined }) };
}

const hostModule = async (layers: LayerSpec[], dtype: 'float32' | 'float16') => (await emitted(layers, dtype)).open();

const toHalf = (a: Float32Array) => floatsFromHalfBits(halfBitsFromFloats(a));

function reference(l: LayerSpec, x: Float32Array, batch: number, height: number, width: number, half: boolean): Float32Array {
  const w = half ? (Object.fromEntries(Object.entries(l.weights).map(([k, v]) => [k, toHalf(v as Float32Array)])) as unknown as DeltaConvBlockWeights) : l.weights;
  return deltaConvBlockReference(half ? toHalf(x) : x, w, { batch, height, width }, l);
}

/** One layer of each configuration. */
function onePerConfig(layers: LayerSpec[]): LayerSpec[] {
  const seen = new Set<string>();
  return layers.filter((l) => {
    const key = `${l.channels}/${l.inner}/${l.kernel}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

describe.skipIf(!gpu)('runBlock: the whole ΔConvBlock on WebGPU vs the reference', () => {
  it('sd15-mini (f32): one layer per configuration, batch 2, and odd sizes', { timeout: 180_000 }, async () => {
    const layers = fixtureLayers('sd15-mini');
    const kernels = await hostModule(layers, 'float32');
    try {
      for (const l of onePerConfig(layers)) {
        for (const [b, h, w] of [[2, l.height, l.width], [1, 5, 3], [1, 19, 21]] as const) {
          const x = randomArray(b * h * w * l.channels, h * 13 + w);
          const y = await kernels.runBlock(l.path, { data: x, batch: b, height: h, width: w });
          expect(maxRelError(y, reference(l, x, b, h, w, false)), `${l.path} at ${b}×${h}×${w}`).toBeLessThan(1e-5);
        }
      }
    } finally {
      kernels.destroy();
    }
  });

  it('pixart-mini (f16 storage, sigmoid gate), batch 2', { timeout: 180_000 }, async () => {
    const layers = fixtureLayers('pixart-mini');
    const kernels = await hostModule(layers.slice(0, 1), 'float16');
    try {
      const l = layers[0]!;
      const x = randomArray(2 * l.height * l.width * l.channels, 3);
      const y = await kernels.runBlock(l.path, { data: x, batch: 2, height: l.height, width: l.width });
      // U and G are stored in f16 between the steps
      expect(maxRelError(y, reference(l, x, 2, l.height, l.width, true))).toBeLessThan(2e-3);
    } finally {
      kernels.destroy();
    }
  });

  it('uploads each layer\'s gate weights once: runBlock binds the runLayer buffer', { timeout: 120_000 }, async () => {
    const layers = fixtureLayers('sd15-mini').slice(0, 2);
    // bytes written into each labelled buffer, and the labels of the buffers created
    const written = new Map<string, number>();
    const labels = new WeakMap<GPUBuffer, string>();
    const created: string[] = [];
    const { createBuffer } = device;
    const queue = device.queue;
    const { writeBuffer } = queue;
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = createBuffer.call(device, d);
      labels.set(b, d.label ?? '');
      created.push(d.label ?? '');
      return b;
    };
    queue.writeBuffer = ((b: GPUBuffer, offset: number, data: BufferSource, ...rest: number[]) => {
      const label = labels.get(b) ?? '';
      // the host module writes whole arrays (no dataOffset/size)
      const bytes = (data as ArrayBufferView | ArrayBuffer).byteLength;
      written.set(label, (written.get(label) ?? 0) + bytes);
      return writeBuffer.call(queue, b, offset, data, ...rest);
    }) as GPUQueue['writeBuffer'];
    const kernels = await hostModule(layers, 'float32');
    try {
      for (const l of layers) {
        const x = randomArray(l.height * l.width * l.channels, 5);
        for (let run = 0; run < 2; run++) await kernels.runBlock(l.path, { data: x, batch: 1, height: l.height, width: l.width });
      }
    } finally {
      kernels.destroy();
      device.createBuffer = createBuffer;
      queue.writeBuffer = writeBuffer;
    }
    for (const l of layers) {
      const gate = l.scales.length * l.kernel ** 2 * l.inner;
      const w = l.weights;
      const pad = (n: number) => Math.ceil(n / 64) * 64; // BLOCK_WEIGHT_ALIGN
      const block = [w.upWeight, w.upBias, w.gateWeights, w.outWeight, w.outBias, w.poolWeight, w.poolBias].reduce((n, a) => n + pad(a.length), 0);
      const mine = created.filter((label) => label.startsWith(`${l.path} `));
      // one gate buffer (runLayer's, reused by runBlock) and one block buffer, however many runs
      expect(mine.sort(), l.path).toEqual([`${l.path} block weights`, `${l.path} gate weights`]);
      expect(written.get(`${l.path} gate weights`), l.path).toBe(4 * gate);
      // the block buffer is written all but its gates' slot
      expect(written.get(`${l.path} block weights`), l.path).toBe(4 * (block - pad(gate)));
    }
  });

  it('says what is missing when the block weights were not passed, and refuses a wrong x', { timeout: 60_000 }, async () => {
    const layers = fixtureLayers('pixart-mini').slice(0, 1);
    const l = layers[0]!;
    const module = await emitted(layers, 'float32');
    const bare = await module.open(false);
    const x = new Float32Array(l.height * l.width * l.channels);
    await expect(bare.runBlock(l.path, { data: x, batch: 1, height: l.height, width: l.width })).rejects.toThrow(/block-weights\.bin/);
    bare.destroy();
    const kernels = await module.open();
    await expect(kernels.runBlock(l.path, { data: x, batch: 2, height: l.height, width: l.width })).rejects.toThrow(/expected 2·48·32/);
    await expect(kernels.runBlock('no.such.layer', { data: x, batch: 1, height: l.height, width: l.width })).rejects.toThrow(/unknown layer/);
    kernels.destroy();
  });
});
