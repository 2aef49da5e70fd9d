/**
 * `deltac analyze` end to end on the shared fixtures (PNGs, index.html, JSON), and
 * the bad inputs a user can give it: each a DELTAC_E_… error with nothing written.
 */
import fs from 'node:fs';
import path from 'node:path';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { Model } from '../../src/ir/model.js';
import { saveModel } from '../../src/onnx/save.js';
import { runCli } from '../helpers/cli.js';
import { listDir, makeTempDir, modelPath, MODELS_DIR } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-analyze-cli-');
afterAll(() => tmp.cleanup());

interface Json {
  layers: {
    name: string;
    height: number;
    width: number;
    check: { output: number };
    checkpoint: { kernel: number; binding: string; gate: string } | null;
    blockErf: number[] | null;
    map: { data: number[] };
    fidelity: { rel: number; rms: number; fit: string; samples: { input: string; item: number; rel: number; rms: number }[] } | null;
  }[];
  levels: { height: number; width: number; recommendedK: number; checkpointK: number[] }[];
  notes: string[];
}

describe('deltac analyze on the shared fixtures', () => {
  it('sd15-mini with its inputs and checkpoint: 16 layers, pictures, index.html, analysis.json', async () => {
    const dir = path.join(MODELS_DIR, 'sd15-mini');
    const out = path.join(tmp.dir, 'sd15');
    const r = await runCli('analyze', modelPath('sd15-mini'), '--inputs', dir, '--weights', path.join(dir, 'delta.safetensors'), '-o', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/recommended K/);
    expect(listDir(out)).toEqual(['analysis.json', 'index.html', 'layers', 'overview.png']);
    expect(listDir(path.join(out, 'layers'))).toHaveLength(16);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'analysis.json'), 'utf8')) as Json;
    expect(json.layers).toHaveLength(16);
    // in0 is 32×24 latent: levels 32×24, 16×12, 8×6, 4×3 with the checkpoint's per-level K 9/9/7/5
    expect(json.levels.map((l) => [l.height, l.width, l.checkpointK])).toEqual([[32, 24, [9]], [16, 12, [9]], [8, 6, [7]], [4, 3, [5]]]);
    for (const l of json.layers) {
      expect(l.check.output).toBeLessThan(1e-5);
      expect(l.blockErf).toHaveLength(l.height * l.width);
      expect(l.map.data).toHaveLength((2 * l.height - 1) * (2 * l.width - 1));
      expect(l.checkpoint).toMatchObject({ binding: 'name', gate: 'simple' });
      // the fixture's checkpoint is random: no block is closer to its attention than zeros
      const f = l.fidelity!;
      expect(f.samples.map((s) => `${s.input}[${s.item}]`)).toEqual(['in0[0]', 'in0[1]']);
      expect(f.rms).toBe(Math.max(...f.samples.map((s) => s.rms)));
      expect(f.rel).toBe(Math.max(...f.samples.map((s) => s.rel)));
      expect(f.rms).toBeGreaterThanOrEqual(1);
      expect(f.fit).toBe('poor');
    }
    expect(json.notes).toContainEqual(expect.stringMatching(/^the checkpoint fits none of the 16 layer\(s\)/));
    expect(r.out).toMatch(/err rms +err max +fit/);
    expect(r.out).toMatch(/note: the checkpoint fits none of the 16 layer\(s\)/);
    const first = json.layers[0]!;
    const png = pngjs.PNG.sync.read(fs.readFileSync(path.join(out, 'layers', `00-${first.name}.png`)));
    // three panels side by side, 8 px apart: the 63×47 map (zoom 3) and two 32×24 ERFs (zoom 6)
    expect(png.height).toBe(8 + Math.max(63 * 3, 32 * 6) + 8);
    expect(png.width).toBe(8 + 47 * 3 + 8 + 24 * 6 + 8 + 24 * 6 + 8);
    const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('src="overview.png"');
    expect(html).toContain(`src="layers/00-${first.name}.png"`);
    expect(html).toContain('How faithful each ΔConvBlock is');
    expect(html).toContain('<b class="poor">poor</b>');
    // a second run replaces the report
    const again = await runCli('analyze', modelPath('sd15-mini'), '--samples', '1', '--resolution', '128', '-o', out, '--json');
    expect(again.code).toBe(0);
    expect((JSON.parse(again.out) as Json).layers[0]!.height).toBe(16);
    // no checkpoint, no comparison
    expect((JSON.parse(again.out) as Json).layers[0]!.fidelity).toBeNull();
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).not.toContain('How faithful');
    // width × height: 192x128 px is a 24-wide, 16-high latent
    const wide = await runCli('analyze', modelPath('sd15-mini'), '--samples', '1', '--resolution', '192x128', '--layers', 'down_blocks.0', '--json');
    expect(wide.code).toBe(0);
    expect((JSON.parse(wide.out) as Json).layers.map((l) => [l.height, l.width])).toEqual([[16, 24], [16, 24]]);
    expect(listDir(tmp.dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('pixart-mini at its fixed 128×96 px with its checkpoint', async () => {
    const dir = path.join(MODELS_DIR, 'pixart-mini');
    const out = path.join(tmp.dir, 'pixart');
    const r = await runCli('analyze', modelPath('pixart-mini'), '--weights', path.join(dir, 'delta.safetensors'), '-o', out);
    expect(r.code).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'analysis.json'), 'utf8')) as Json;
    expect(json.layers.map((l) => `${l.name} ${l.height}×${l.width} K${l.checkpoint?.kernel}`)).toEqual(
      [0, 1, 2, 3].map((i) => `transformer_blocks.${i}.attn1 8×6 K5`),
    );
    expect(listDir(path.join(out, 'layers'))).toHaveLength(4);
    // random inputs: two sets of batch 1; the DiT's default gate
    for (const l of json.layers) {
      expect(l.checkpoint!.gate).toBe('sigmoid');
      expect(l.fidelity!.samples.map((s) => `${s.input}[${s.item}]`)).toEqual(['random 0[0]', 'random 1[0]']);
      expect(Number.isFinite(l.fidelity!.rms)).toBe(true);
    }
    // --map binds as convert's does: blocks 0 and 1 swapped change those two layers' errors only
    const swap = path.join(tmp.dir, 'swap.json');
    fs.writeFileSync(swap, JSON.stringify({ 'transformer_blocks.0': 'transformer_blocks.1', 'transformer_blocks.1': 'transformer_blocks.0' }));
    const mapped = await runCli('analyze', modelPath('pixart-mini'), '--weights', path.join(dir, 'delta.safetensors'), '--map', swap, '--json');
    expect(mapped.code).toBe(0);
    const m = JSON.parse(mapped.out) as Json;
    expect(m.layers.map((l) => l.checkpoint!.binding)).toEqual(['map', 'map', 'name', 'name']);
    expect(m.layers.map((l, i) => l.fidelity!.rms === json.layers[i]!.fidelity!.rms)).toEqual([false, false, true, true]);
  });
});

describe('deltac analyze: bad input', () => {
  const bad = async (expected: RegExp, ...args: string[]) => {
    const out = path.join(tmp.dir, 'never');
    const r = await runCli('analyze', ...args, ...(args.includes('-o') ? [] : ['-o', out]));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(expected);
    expect(fs.existsSync(out)).toBe(false);
    expect(listDir(tmp.dir).filter((f) => f.startsWith('.'))).toEqual([]);
    return r.err;
  };

  it('a model without self-attention', async () => {
    const m = new Model();
    m.opsetImports.set('', 17);
    const x = m.graph.addInput('sample', { kind: 'tensor', dtype: DataType.FLOAT, shape: [1, 4, 8, 8] });
    m.graph.addOutput(m.graph.op('Relu', [x], { output: 'out' }));
    const file = path.join(tmp.dir, 'relu.onnx');
    saveModel(m, file);
    await bad(/DELTAC_E_NO_SELF_ATTENTION: the model has no self-attention layers to analyse/, file);
  });

  it('a resolution the model cannot take', async () => {
    await bad(/DELTAC_E_BAD_OPTION: --resolution 512: the model takes only 96x128 px \(width × height/, modelPath('pixart-mini'), '--resolution', '512');
    await bad(/DELTAC_E_BAD_OPTION: --resolution 200: the model cannot take this size: its attention grids .* do not halve exactly/, modelPath('sd15-mini'), '--resolution', '200');
    await bad(/DELTAC_E_BAD_OPTION: --resolution must be a multiple of 8/, modelPath('sd15-mini'), '--resolution', '100');
    await bad(/DELTAC_E_BAD_OPTION: --resolution 128x96: the model cannot take this size: .*multiples of 64 px/, modelPath('sd15-mini'), '--resolution', '128x96');
    await bad(/DELTAC_E_BAD_OPTION: --resolution must be N, WxH or W,H/, modelPath('sd15-mini'), '--resolution', '128 by 96');
  });

  it('an output folder that is a file, or a folder holding something else', async () => {
    const file = path.join(tmp.dir, 'taken');
    fs.writeFileSync(file, 'mine');
    await bad(/DELTAC_E_WRITE: output folder ".*taken" is a file/, modelPath('pixart-mini'), '-o', file);
    expect(fs.readFileSync(file, 'utf8')).toBe('mine');
    const folder = path.join(tmp.dir, 'photos');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'cat.jpg'), 'meow');
    await bad(/DELTAC_E_WRITE: output folder ".*photos" exists and does not hold an earlier analysis/, modelPath('pixart-mini'), '-o', folder);
    expect(listDir(folder)).toEqual(['cat.jpg']);
  });

  it('a --map file that is missing or names a block twice, --scales that do not match the gates', async () => {
    const ckpt = path.join(MODELS_DIR, 'pixart-mini', 'delta.safetensors');
    await bad(/DELTAC_E_WEIGHT_MAP: cannot read layer map ".*nope\.json"/, modelPath('pixart-mini'), '--weights', ckpt, '--map', path.join(tmp.dir, 'nope.json'));
    const twice = path.join(tmp.dir, 'twice.json');
    fs.writeFileSync(twice, JSON.stringify({ 'transformer_blocks.0': 'transformer_blocks.1', 'transformer_blocks.2': 'transformer_blocks.1' }));
    await bad(/DELTAC_E_WEIGHT_MAP: checkpoint block "transformer_blocks\.1" would be used by two layers/, modelPath('pixart-mini'), '--weights', ckpt, '--map', twice);
    await bad(/DELTAC_E_BAD_OPTION: --scales gives 3 scale\(s\) but layer transformer_blocks\.0\.attn1 has 2 gate\(s\)/, modelPath('pixart-mini'), '--weights', ckpt, '--scales', '1,0.5,0.25');
  });

  it('options that contradict each other', async () => {
    await bad(/DELTAC_E_BAD_OPTION: --inputs takes the sizes from the .npy files/, modelPath('sd15-mini'), '--inputs', path.join(MODELS_DIR, 'sd15-mini'), '--resolution', '256');
    await bad(/DELTAC_E_BAD_OPTION: --layers "nothing_like_this" matches none of the 4 self-attention layers/, modelPath('pixart-mini'), '--layers', 'nothing_like_this');
  });
});
