/**
 * The staged onnxruntime run (weights cut into pieces, values handed over between
 * sessions) captures exactly what one session captures: sd15-mini cut into stages
 * of 1 MiB of weights against one stage.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze/index.js';
import { modelPath, MODELS_DIR } from '../helpers/paths.js';

describe('staged capture', () => {
  it('sd15-mini in many stages = in one', async () => {
    const inputs = path.join(MODELS_DIR, 'sd15-mini');
    const stages: number[] = [];
    const one = await analyzeModel(modelPath('sd15-mini'), { inputs, queries: 16, stageBytes: 2 ** 40 });
    const many = await analyzeModel(modelPath('sd15-mini'), {
      inputs,
      queries: 16,
      stageBytes: 2 ** 20,
      onProgress: (_d, _t, what) => {
        const m = /stage \d+\/(\d+)/.exec(what);
        if (m) stages.push(Number(m[1]));
      },
    });
    expect(stages[0]).toBeGreaterThan(5);
    expect(many.layers).toHaveLength(16);
    many.layers.forEach((l, i) => {
      const a = one.layers[i]!;
      expect(l.name).toBe(a.name);
      expect(Array.from(l.map!.data)).toEqual(Array.from(a.map!.data));
      expect(Array.from(l.attentionErf!)).toEqual(Array.from(a.attentionErf!));
    });
  });
});
