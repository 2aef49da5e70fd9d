/**
 * PixArt-Σ's real depth (28 blocks in one token stream) at C 64, with seeded
 * weights and a non-square latent (16×12 → 8×6 tokens): the converted model runs
 * in onnxruntime with every block's H and W taken at run time from the patch
 * embedding, and two export styles convert to the same outputs.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
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

describe('PixArt-Σ depth, narrow, with weights', () => {
  it('ts-sdpa and onnx-attention exports convert all 28 blocks to the same outputs (≤ 1e-6 relative)', async () => {
    const runs = [];
    const ckpt = path.join(tmp.dir, 'delta.safetensors');
    for (const style of ['ts-sdpa', 'onnx-attention'] as const) {
      const built = buildFullSize({ layout: 'pixart-sigma', style, narrow: true, staticShapes: false });
      if (style === 'ts-sdpa') writeSafetensors(ckpt, deltaCheckpointTensors(built.selfBlocks.map((b) => ({ block: b.path, channels: b.channels, kernel: b.kernel })), 7));
      const report = convert(built.model, { weights: ckpt });
      expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(28);
      expect(report.layers.every((l) => l.family === 'dit' && !l.staticHW)).toBe(true);
      runs.push(await runModel(built.model, feeds(built.model)));
    }
    const [a, b] = runs;
    expect(a![0]!.dims).toEqual([1, 8, 16, 12]);
    expect(a![0]!.data.every(Number.isFinite)).toBe(true);
    expect(relativeError(b!, a!)).toBeLessThanOrEqual(1e-6);
  });
});
