/**
 * SDXL base's real structure (70 layers, ten transformer blocks per attention
 * module at the two deepest levels) at a tenth of its width, with seeded
 * weights: two export styles convert to the same outputs in onnxruntime, so the
 * depth-free H/W sources bind every deep block to the right H and W.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Feed } from '../fixtures/exports/index.js';
import { prng } from '../fixtures/exports/params.js';
import { relativeError, runModel } from '../fixtures/exports/runtime.js';
import { buildFullSize } from '../fixtures/full-size/index.js';
import { makeTempDir } from '../helpers/paths.js';
import { deltaCheckpointTensors, writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-full-size-narrow-');
afterAll(tmp.cleanup);

const SIZES: Record<string, number> = { batch: 1, height: 16, width: 12, sequence: 5 };

function feeds(model: ReturnType<typeof buildFullSize>['model']): Record<string, Feed> {
  const out: Record<string, Feed> = {};
  const rand = prng(11);
  for (const v of model.graph.inputs) {
    if (v.type?.kind !== 'tensor' || !v.type.shape) throw new Error(`input ${v.name} has no shape`);
    const dims = v.type.shape.map((d) => (typeof d === 'number' ? d : SIZES[d ?? '']!));
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (v.name === 'timestep') data.fill(981);
    else if (v.name === 'time_ids') data.set([96, 80, 0, 0, 96, 80]);
    else for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
    out[v.name] = { dims, data, dtype: v.type.dtype };
  }
  return out;
}

describe('SDXL base structure, narrow, with weights', () => {
  it('ts-sdpa and ts-torch1 exports convert all 70 layers to the same outputs (≤ 1e-6 relative)', async () => {
    const runs = [];
    const ckpt = path.join(tmp.dir, 'delta.safetensors');
    for (const style of ['ts-sdpa', 'ts-torch1'] as const) {
      const built = buildFullSize({ layout: 'sdxl-base', style, narrow: true });
      if (style === 'ts-sdpa') writeSafetensors(ckpt, deltaCheckpointTensors(built.selfBlocks.map((b) => ({ block: b.path, channels: b.channels, kernel: b.kernel })), 7));
      const x = feeds(built.model);
      const original = await runModel(built.model, x);
      const report = convert(built.model, { weights: ckpt });
      expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(70);
      expect(new Set(report.layers.map((l) => l.channels))).toEqual(new Set([64, 128]));
      runs.push({ original, converted: await runModel(built.model, x), dtype: built.model.graph.inputs[0]!.type });
    }
    const [a, b] = runs;
    expect(relativeError(b!.original, a!.original)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(b!.converted, a!.converted)).toBeLessThanOrEqual(1e-6);
    // the conversion changed the function (every layer now a ΔConvBlock), and it stays finite
    expect(relativeError(a!.converted, a!.original)).toBeGreaterThan(1e-3);
    expect(a!.converted[0]!.data.every(Number.isFinite)).toBe(true);
    expect(a!.dtype).toMatchObject({ dtype: DataType.FLOAT });
  });
});
