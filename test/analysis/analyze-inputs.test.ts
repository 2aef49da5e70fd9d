/**
 * What `deltac analyze` runs on: ERFs averaged over every captured sample, and
 * non-square random inputs (`--resolution WxH`), validated against what the model
 * can take (sd15-mini from the shared fixtures).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze/index.js';
import { parseResolution } from '../../src/cli/commands/analyze.js';
import { readNpy, writeNpy } from '../../src/runtime/npy.js';
import { makeTempDir, modelPath, MODELS_DIR } from '../helpers/paths.js';
import { maxRelError } from '../reference/fixtures.js';

const tmp = makeTempDir('deltac-analyze-inputs-');
afterAll(() => tmp.cleanup());

/** Batch item `b` of the shared in0 set, as a folder of its own. */
function oneItem(b: number): string {
  const dir = path.join(tmp.dir, `item${b}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['sample', 'encoder_hidden_states', 'timestep']) {
    const a = readNpy(path.join(MODELS_DIR, 'sd15-mini', `in0.${name}.npy`));
    const per = a.data.length / a.shape[0]!;
    writeNpy(path.join(dir, `in0.${name}.npy`), Float32Array.from(a.data as Float32Array).subarray(b * per, (b + 1) * per), [1, ...a.shape.slice(1)]);
  }
  return dir;
}

describe('deltac analyze inputs', () => {
  it('ERFs are the mean over every captured sample (both batch items of in0)', async () => {
    const both = path.join(tmp.dir, 'both');
    fs.mkdirSync(both);
    for (const f of fs.readdirSync(path.join(MODELS_DIR, 'sd15-mini')).filter((f) => f.startsWith('in0.'))) fs.copyFileSync(path.join(MODELS_DIR, 'sd15-mini', f), path.join(both, f));
    const layers = 'down_blocks.1';
    const all = await analyzeModel(modelPath('sd15-mini'), { inputs: both, layers });
    const [a, b] = [await analyzeModel(modelPath('sd15-mini'), { inputs: oneItem(0), layers }), await analyzeModel(modelPath('sd15-mini'), { inputs: oneItem(1), layers })];
    expect(all.layers.length).toBeGreaterThan(0);
    all.layers.forEach((l, i) => {
      expect(l.erfSamples).toBe(2);
      const ea = a.layers[i]!.attentionErf!;
      const eb = b.layers[i]!.attentionErf!;
      // the two items really differ, so the first one alone would not pass
      expect(maxRelError(ea, eb)).toBeGreaterThan(1e-2);
      const mean = ea.map((v, k) => (v + eb[k]!) / 2);
      expect(maxRelError(l.attentionErf!, mean)).toBeLessThan(1e-4);
    });
  });

  it('non-square random inputs: --resolution 192x128 gives 24-wide, 16-high grids', async () => {
    const r = await analyzeModel(modelPath('sd15-mini'), { samples: 2, queries: 8, resolution: parseResolution('192x128') });
    expect(r.latent).toEqual([16, 24]);
    expect(r.inputs).toMatch(/at 192×128 px \(width × height/);
    expect(r.levels.map((l) => [l.height, l.width])).toEqual([[16, 24], [8, 12], [4, 6], [2, 3]]);
    for (const l of r.layers) {
      expect(l.erfSamples).toBe(2);
      expect(l.attentionErf).toHaveLength(l.height * l.width);
      expect(l.map!.data).toHaveLength((2 * l.height - 1) * (2 * l.width - 1));
      expect(l.erfToken).toBe((l.height >> 1) * l.width + (l.width >> 1));
    }
  });

  it('--resolution forms and sizes the model cannot take', async () => {
    expect(parseResolution('512')).toBe(512);
    expect(parseResolution('768x512')).toEqual({ width: 768, height: 512 });
    expect(parseResolution('768,512')).toEqual({ width: 768, height: 512 });
    expect(parseResolution('768×512')).toEqual({ width: 768, height: 512 });
    expect(parseResolution(undefined)).toBeUndefined();
    expect(() => parseResolution('wide')).toThrow(/--resolution must be N, WxH or W,H/);
    expect(() => parseResolution('512x')).toThrow(expect.objectContaining({ code: 'DELTAC_E_BAD_OPTION' }));
    await expect(analyzeModel(modelPath('sd15-mini'), { samples: 1, resolution: { width: 128, height: 100 } })).rejects.toThrow(
      /--resolution must be a multiple of 8 pixels in width and height .*got 128x100/,
    );
    // latent 16×12: 12 → 6 → 3 → 2 in the down path, 2 → 4 in the up path
    await expect(analyzeModel(modelPath('sd15-mini'), { samples: 1, resolution: { width: 128, height: 96 } })).rejects.toThrow(
      /--resolution 128x96: the model cannot take this size: .*do not halve exactly .*multiples of 64 px/,
    );
    await expect(analyzeModel(modelPath('sd15-mini'), { samples: 1, resolution: 96 })).rejects.toThrow(expect.objectContaining({ code: 'DELTAC_E_BAD_OPTION' }));
  });
});
