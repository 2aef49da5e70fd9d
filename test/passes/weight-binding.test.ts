/**
 * Binding ΔConvFusion checkpoints to layers and casting their weights, on the
 * synthetic exports: key prefixes, models without names (structural fallback in
 * canonical diffusers order), explicit layer maps, missing layers with and
 * without --allow-partial, and F32/F16/BF16 checkpoints into fp32 and fp16 models.
 *
 * "Same conversion" is checked on the converted models' initializers: equal
 * bytes under equal names mean the same weights went to the same layers.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConversionReport, type ConvertOptions, convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { type LayerRef, bindLayers } from '../../src/weights/binding.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { isLdmPath, layoutFromDiffusers, layoutFromLdm, ldmToDiffusers } from '../../src/weights/ldm-names.js';
import { countCores } from '../fixtures/exports/harness.js';
import { type BuiltExport, type CheckpointOptions, type ExportOptions, buildExport, deltaCheckpoint, makeFeeds } from '../fixtures/exports/index.js';
import { type RunOutput, relativeError, runModel, stripNames } from '../fixtures/exports/runtime.js';
import { makeTempDir } from '../helpers/paths.js';
import { type SafetensorsDtype, type TensorSpec, deltaCheckpointTensors, writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-binding-');
afterAll(tmp.cleanup);
let files = 0;

function writeCheckpoint(tensors: Record<string, TensorSpec>): string {
  const file = path.join(tmp.dir, `ckpt-${files++}.safetensors`);
  writeSafetensors(file, tensors);
  return file;
}

function checkpointFor(o: ExportOptions, c: CheckpointOptions = {}): string {
  return writeCheckpoint(deltaCheckpoint(buildExport(o), c));
}

function converted(o: ExportOptions, weights: string, extra: Partial<ConvertOptions> = {}, strip = false): { built: BuiltExport; report: ConversionReport } {
  const built = buildExport(o);
  if (strip) stripNames(built.model);
  return { built, report: convert(built.model, { weights: Checkpoint.open(weights), ...extra }) };
}

/** name → sha256 of every initializer. */
function initializers(model: Model): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of model.graph.initializers) out.set(name, `${v.initializer!.dtype}:${createHash('sha256').update(v.initializer!.bytes()).digest('hex')}`);
  return out;
}

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DeltacError) return e.code;
    throw e;
  }
  return 'no error';
}

/** The checkpoint's values rounded to `dtype` (still stored as F32 unless the spec says otherwise). */
function roundedTo(tensors: Record<string, TensorSpec>, dtype: DataType): Record<string, TensorSpec> {
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { ...t, data: Tensor.fromFloat32(t.data, t.shape, dtype).toFloat32() }]));
}

const withDtype = (tensors: Record<string, TensorSpec>, dtype: SafetensorsDtype) => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { ...t, dtype }]));

const SD15: ExportOptions = { layout: 'sd15', style: 'ts-sdpa' };
const DIT: ExportOptions = { layout: 'dit', style: 'ts-sdpa' };
const SD15_EXPORT = SD15;

describe('checkpoint key prefixes', () => {
  const plain = checkpointFor(SD15);
  const reference = initializers(converted(SD15, plain).built.model);

  it.each(['unet.', 'model.diffusion_model.', 'denoiser.', 'pipe.unet.'])('binds a checkpoint whose keys start with "%s" by name, to the same layers', (prefix) => {
    const { built, report } = converted(SD15, checkpointFor(SD15, { prefix }));
    expect(report.layers.map((l) => [l.binding, l.checkpointBlock])).toEqual(built.selfBlocks.map((b) => ['name', `${prefix}${b.path}`]));
    expect(initializers(built.model)).toEqual(reference);
  });
});

describe('models without names: structural fallback', () => {
  let named: RunOutput[];
  const weights = checkpointFor(SD15);
  beforeAll(async () => {
    const { built } = converted(SD15, weights);
    named = await runModel(built.model, makeFeeds(built));
  });

  it('finds the same modules with no paths when node names, metadata and value names are gone', () => {
    const built = buildExport(SD15);
    stripNames(built.model);
    expect(built.model.graph.nodes.every((n) => n.name === '' && n.metadataProps.length === 0)).toBe(true);
    const found = findAttention(built.model);
    expect(found.matches.filter((m) => m.kind === 'self').map((m) => [m.blockPath, m.modulePath, m.channels])).toEqual(built.selfBlocks.map((b) => [null, null, b.channels]));
    expect(found.matches.filter((m) => m.kind === 'cross')).toHaveLength(built.crossCount);
  });

  it.each(['ts-sdpa', 'ms-attention'] as const)('binds the %s export in canonical diffusers order (down, mid, up) and computes what the named conversion computes', async (style) => {
    const { built, report } = converted({ layout: 'sd15', style }, weights, {}, true);
    expect(report.layers.map((l) => [l.id, l.binding, l.checkpointBlock])).toEqual(built.selfBlocks.map((b, i) => [`layer${i}`, 'structure', b.path]));
    expect(relativeError(await runModel(built.model, makeFeeds(built)), named)).toBeLessThanOrEqual(1e-5);
  });

  it('does not guess when the checkpoint has a different number of blocks', () => {
    const partial = checkpointFor(SD15, { omit: ['mid_block.attentions.0.transformer_blocks.0'] });
    expect(errorCode(() => converted(SD15, partial, {}, true))).toBe('DELTAC_E_WEIGHTS_UNUSED');
  });
});

describe('explicit layer maps (--map)', () => {
  const weights = checkpointFor(DIT);
  const swap = { 'transformer_blocks.0': 'transformer_blocks.1', 'transformer_blocks.1': 'transformer_blocks.0' };
  /** The conversion with a checkpoint whose two blocks trade places. */
  const swappedReference = (() => {
    const tensors = deltaCheckpoint(buildExport(DIT));
    const renamed = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k.replace(/^transformer_blocks\.(\d)/, (_, i) => `transformer_blocks.${1 - Number(i)}`), t]));
    return initializers(converted(DIT, writeCheckpoint(renamed)).built.model);
  })();

  it('reassigns blocks: each layer gets the block the map names', () => {
    const { built, report } = converted(DIT, weights, { map: swap });
    expect(report.layers.map((l) => [l.id, l.binding, l.checkpointBlock])).toEqual([
      ['transformer_blocks.0', 'map', 'transformer_blocks.1'],
      ['transformer_blocks.1', 'map', 'transformer_blocks.0'],
    ]);
    const got = initializers(built.model);
    expect(got).toEqual(swappedReference);
    expect(got).not.toEqual(initializers(converted(DIT, weights).built.model));
  });

  it('reads the map from a JSON file', () => {
    const file = path.join(tmp.dir, 'map.json');
    fs.writeFileSync(file, JSON.stringify(swap));
    expect(initializers(converted(DIT, weights, { map: file }).built.model)).toEqual(swappedReference);
  });

  it('addresses layers of a model without names by index', () => {
    const { built, report } = converted(DIT, weights, { map: { layer0: 'transformer_blocks.1', layer1: 'transformer_blocks.0' } }, true);
    expect(report.layers.map((l) => [l.binding, l.checkpointBlock])).toEqual([
      ['map', 'transformer_blocks.1'],
      ['map', 'transformer_blocks.0'],
    ]);
    // the same weights as the named swap (initializer names differ: the layers have no paths)
    expect([...initializers(built.model).values()].sort()).toEqual([...swappedReference.values()].sort());
  });

  it('rejects a map that names a layer the model does not have, or a block the checkpoint does not have', () => {
    expect(errorCode(() => converted(DIT, weights, { map: { 'transformer_blocks.7': 'transformer_blocks.0' } }))).toBe('DELTAC_E_WEIGHT_MAP');
    expect(errorCode(() => converted(DIT, weights, { map: { 'transformer_blocks.0': 'transformer_blocks.9' } }))).toBe('DELTAC_E_WEIGHT_MAP');
    // one block for two layers
    expect(errorCode(() => converted(DIT, weights, { map: { 'transformer_blocks.0': 'transformer_blocks.1', 'transformer_blocks.1': 'transformer_blocks.1' } }))).toBe('DELTAC_E_WEIGHT_MAP');
    // a map entry that takes another layer's block leaves that layer without weights
    expect(errorCode(() => converted(DIT, weights, { map: { 'transformer_blocks.0': 'transformer_blocks.1' } }))).toBe('DELTAC_E_WEIGHT_MISSING');
  });
});

describe('a checkpoint missing one layer', () => {
  const mid = 'mid_block.attentions.0.transformer_blocks.0';
  const partial = checkpointFor(SD15, { omit: [mid] });

  it('fails with DELTAC_E_WEIGHT_MISSING naming the layer', () => {
    let message = '';
    try {
      converted(SD15, partial);
    } catch (e) {
      expect((e as DeltacError).code).toBe('DELTAC_E_WEIGHT_MISSING');
      message = (e as Error).message;
    }
    expect(message).toContain(mid);
    expect(message).toContain('--allow-partial');
  });

  it('an LDM-named layer: the message gives the diffusers key the checkpoint needs (after its wrapper), not the LDM module path', () => {
    const first = buildExport({ ...SD15, names: 'ldm' }).selfBlocks[0]!;
    expect([first.path, first.checkpointPath]).toEqual(['input_blocks.1.1.transformer_blocks.0', 'down_blocks.0.attentions.0.transformer_blocks.0']);
    for (const prefix of ['', 'unet.']) {
      const weights = checkpointFor(SD15, { omit: [first.checkpointPath!], prefix });
      let error: DeltacError | undefined;
      try {
        converted({ ...SD15, names: 'ldm' }, weights);
      } catch (e) {
        error = e as DeltacError;
      }
      expect(error?.code).toBe('DELTAC_E_WEIGHT_MISSING');
      expect(error?.message).toContain(`layer ${first.path} has no ΔConvBlock weights`);
      expect(error?.message).toContain(`(expected keys "${prefix}down_blocks.0.attentions.0.transformer_blocks.0.conv1.…"; 1 layer(s) missing)`);
      expect(error?.details).toEqual({ layers: [first.path] });
    }
  });

  it('the binding result names the block each missing layer needs', () => {
    // layers_per_block 1 from the model's names (2 input, 4 output slots)
    const paths = ['input_blocks.1.1', 'input_blocks.3.1', 'middle_block.1', 'output_blocks.0.1', 'output_blocks.1.1', 'output_blocks.2.1', 'output_blocks.3.1'].map((p) => `${p}.transformer_blocks.0`);
    const layers: LayerRef[] = paths.map((p, index) => ({ id: p, blockPath: p, modulePath: `${p}.attn1`, index }));
    const ckpt = Checkpoint.open(writeCheckpoint(deltaCheckpointTensors([{ block: 'model.diffusion_model.mid_block.attentions.0.transformer_blocks.0', channels: 4, kernel: 3 }])));
    const result = bindLayers(layers, ckpt);
    expect([...result.bound.keys()]).toEqual(['middle_block.1.transformer_blocks.0']);
    expect(result.missing.map((l) => [l.id, l.expectedBlock])).toEqual(
      ['down_blocks.0.attentions.0', 'down_blocks.1.attentions.0', 'up_blocks.0.attentions.0', 'up_blocks.0.attentions.1', 'up_blocks.1.attentions.0', 'up_blocks.1.attentions.1'].map((d, i) => [
        paths[i < 2 ? i : i + 1],
        `model.diffusion_model.${d}.transformer_blocks.0`,
      ]),
    );
  });

  it('with allowPartial keeps that layer\'s attention, reports it, and converts the rest the same way in every export style', async () => {
    const outputs: RunOutput[][] = [];
    for (const style of ['ts-sdpa', 'ms-attention'] as const) {
      const { built, report } = converted({ layout: 'sd15', style }, partial, { allowPartial: true });
      const kept = report.layers.filter((l) => l.status === 'kept');
      expect(kept.map((l) => [l.blockPath, l.reason])).toEqual([[mid, expect.stringMatching(/no weights/)]]);
      expect(report.layers.filter((l) => l.status === 'converted')).toHaveLength(built.selfBlocks.length - 1);
      expect(report.diagnostics.filter((d) => d.code === 'DELTAC_W_PARTIAL').map((d) => d.where)).toContain(mid);
      expect(countCores(built.model)).toBe(built.crossCount + 1);
      expect(findAttention(built.model).matches.filter((m) => m.kind === 'self').map((m) => m.blockPath)).toEqual([mid]);
      outputs.push(await runModel(built.model, makeFeeds(built)));
    }
    // the kept attention (in ms-attention with its to_out bias still in the SkipLayerNormalization) computes the same
    expect(relativeError(outputs[1]!, outputs[0]!)).toBeLessThanOrEqual(1e-5);
  });
});

describe('checkpoint dtypes are cast to the model\'s dtype', () => {
  const base = deltaCheckpoint(buildExport(DIT));
  const added = (model: Model, before: Set<string>) => [...model.graph.initializers.values()].filter((v) => !before.has(v.name));
  const convertedWith = (o: ExportOptions, tensors: Record<string, TensorSpec>) => {
    const built = buildExport(o);
    const before = new Set(built.model.graph.initializers.keys());
    convert(built.model, { weights: Checkpoint.open(writeCheckpoint(tensors)) });
    return { built, fresh: added(built.model, before) };
  };

  it.each([
    ['F16', DataType.FLOAT16],
    ['BF16', DataType.BFLOAT16],
  ] as const)('an %s checkpoint into an fp32 model gives exactly the F32 conversion of the same values', (dtype, dt) => {
    const values = roundedTo(base, dt);
    const a = convertedWith(DIT, withDtype(values, dtype));
    const b = convertedWith(DIT, values);
    expect(initializers(a.built.model)).toEqual(initializers(b.built.model));
    const floats = a.fresh.filter((v) => [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16].includes(v.initializer!.dtype));
    expect(floats.length).toBeGreaterThan(0);
    expect(floats.every((v) => v.initializer!.dtype === DataType.FLOAT)).toBe(true);
  });

  it('an F32 checkpoint into an fp16 model gives fp16 weights, exactly the F16 checkpoint\'s', () => {
    const f16: ExportOptions = { ...DIT, dtype: 'f16' };
    const a = convertedWith(f16, base);
    const b = convertedWith(f16, withDtype(base, 'F16'));
    expect(initializers(a.built.model)).toEqual(initializers(b.built.model));
    const floats = a.fresh.filter((v) => [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16].includes(v.initializer!.dtype));
    expect(floats.length).toBeGreaterThan(0);
    expect(floats.every((v) => v.initializer!.dtype === DataType.FLOAT16)).toBe(true);
  });

  it('BF16 and F16 checkpoints compute close to the F32 checkpoint in onnxruntime (fp32 and fp16 models)', async () => {
    for (const o of [DIT, { ...DIT, dtype: 'f16' } as ExportOptions]) {
      const ref = convertedWith(o, base).built;
      const feeds = makeFeeds(ref);
      const expected = await runModel(ref.model, feeds);
      for (const dtype of ['F16', 'BF16'] as const) {
        const got = await runModel(convertedWith(o, withDtype(base, dtype)).built.model, feeds);
        const err = relativeError(got, expected);
        expect(err).toBeLessThanOrEqual(dtype === 'BF16' ? 2e-2 : 3e-3);
        // F32 → F16 is the fp16 model's own rounding; everywhere else the cast changes the values
        if (!(o.dtype === 'f16' && dtype === 'F16')) expect(err).toBeGreaterThan(0);
      }
    }
  });
});

describe('CompVis / LDM module names bind to the diffusers checkpoint without --map', () => {
  // The attention modules of the real layouts as LDM and diffusers name them (diffusers'
  // convert_original_stable_diffusion_to_diffusers tables), with transformer blocks per module.
  const SD15: [string, string, number][] = [
    ['input_blocks.1.1', 'down_blocks.0.attentions.0', 1],
    ['input_blocks.2.1', 'down_blocks.0.attentions.1', 1],
    ['input_blocks.4.1', 'down_blocks.1.attentions.0', 1],
    ['input_blocks.5.1', 'down_blocks.1.attentions.1', 1],
    ['input_blocks.7.1', 'down_blocks.2.attentions.0', 1],
    ['input_blocks.8.1', 'down_blocks.2.attentions.1', 1],
    ['middle_block.1', 'mid_block.attentions.0', 1],
    ['output_blocks.3.1', 'up_blocks.1.attentions.0', 1],
    ['output_blocks.4.1', 'up_blocks.1.attentions.1', 1],
    ['output_blocks.5.1', 'up_blocks.1.attentions.2', 1],
    ['output_blocks.6.1', 'up_blocks.2.attentions.0', 1],
    ['output_blocks.7.1', 'up_blocks.2.attentions.1', 1],
    ['output_blocks.8.1', 'up_blocks.2.attentions.2', 1],
    ['output_blocks.9.1', 'up_blocks.3.attentions.0', 1],
    ['output_blocks.10.1', 'up_blocks.3.attentions.1', 1],
    ['output_blocks.11.1', 'up_blocks.3.attentions.2', 1],
  ];
  // SDXL base: no attention at the first level, transformer_layers_per_block [1, 2, 10], 70 layers
  const SDXL: [string, string, number][] = [
    ['input_blocks.4.1', 'down_blocks.1.attentions.0', 2],
    ['input_blocks.5.1', 'down_blocks.1.attentions.1', 2],
    ['input_blocks.7.1', 'down_blocks.2.attentions.0', 10],
    ['input_blocks.8.1', 'down_blocks.2.attentions.1', 10],
    ['middle_block.1', 'mid_block.attentions.0', 10],
    ['output_blocks.0.1', 'up_blocks.0.attentions.0', 10],
    ['output_blocks.1.1', 'up_blocks.0.attentions.1', 10],
    ['output_blocks.2.1', 'up_blocks.0.attentions.2', 10],
    ['output_blocks.3.1', 'up_blocks.1.attentions.0', 2],
    ['output_blocks.4.1', 'up_blocks.1.attentions.1', 2],
    ['output_blocks.5.1', 'up_blocks.1.attentions.2', 2],
  ];
  // SDXL refiner: attention at the two middle levels of four, 4 transformer blocks per module
  const REFINER: [string, string, number][] = [
    ['input_blocks.4.1', 'down_blocks.1.attentions.0', 4],
    ['input_blocks.5.1', 'down_blocks.1.attentions.1', 4],
    ['input_blocks.7.1', 'down_blocks.2.attentions.0', 4],
    ['input_blocks.8.1', 'down_blocks.2.attentions.1', 4],
    ['middle_block.1', 'mid_block.attentions.0', 4],
    ...[3, 4, 5, 6, 7, 8].map((k): [string, string, number] => [`output_blocks.${k}.1`, `up_blocks.${Math.floor(k / 3)}.attentions.${k % 3}`, 4]),
  ];
  const expand = (table: [string, string, number][]) =>
    table.flatMap(([ldm, diffusers, n]) => Array.from({ length: n }, (_, t) => ({ ldm: `${ldm}.transformer_blocks.${t}`, diffusers: `${diffusers}.transformer_blocks.${t}` })));
  const layerRefs = (paths: string[]): LayerRef[] => paths.map((p, index) => ({ id: p, blockPath: p, modulePath: `${p}.attn1`, index }));
  const checkpointOf = (paths: string[], prefix = '') =>
    Checkpoint.open(writeCheckpoint(deltaCheckpointTensors(paths.map((p) => ({ block: `${prefix}${p}`, channels: 4, kernel: 3 })))));

  it.each([
    ['SD1.5', SD15, 2],
    // SD2.1 has SD1.5's block layout (linear proj_in, other widths): the same names
    ['SD2.1', SD15, 2],
    ['SDXL base', SDXL, 2],
    ['SDXL refiner', REFINER, 2],
  ] as const)('%s: layers_per_block from the model\'s names, then every layer gets its diffusers block', (_, table, n) => {
    const blocks = expand(table);
    expect(layoutFromLdm(blocks.map((b) => `model.diffusion_model.${b.ldm}`))).toEqual({ layersPerBlock: n });
    expect(layoutFromDiffusers(blocks.map((b) => b.diffusers))).toEqual({ layersPerBlock: n });
    for (const b of blocks) expect(ldmToDiffusers(b.ldm, { layersPerBlock: n })).toBe(b.diffusers);
    const result = bindLayers(layerRefs(blocks.map((b) => b.ldm)), checkpointOf(blocks.map((b) => b.diffusers), 'unet.'));
    expect(result.missing).toEqual([]);
    expect(result.unusedBlocks).toEqual([]);
    expect(blocks.map((b) => [result.bound.get(b.ldm)?.method, result.bound.get(b.ldm)?.block.path])).toEqual(blocks.map((b) => ['name', b.diffusers]));
  });

  it('SDXL base has 70 self-attention layers', () => expect(expand(SDXL)).toHaveLength(70));

  it('a ControlNet (input and middle blocks only) takes layers_per_block from the checkpoint', () => {
    const blocks = expand(SD15).filter((b) => !b.ldm.startsWith('output_blocks'));
    const ldm = blocks.map((b) => `control_model.${b.ldm}`);
    expect(layoutFromLdm(ldm)).toBeNull();
    const result = bindLayers(layerRefs(ldm), checkpointOf(blocks.map((b) => b.diffusers)));
    expect(blocks.map((b) => result.bound.get(`control_model.${b.ldm}`)?.block.path)).toEqual(blocks.map((b) => b.diffusers));
  });

  it('never maps a downsampler or upsampler slot, and leaves non-LDM paths alone', () => {
    const n = { layersPerBlock: 2 };
    expect(ldmToDiffusers('input_blocks.3.1.transformer_blocks.0', n)).toBeNull(); // input_blocks.3 is a Downsample
    expect(ldmToDiffusers('input_blocks.0.1.transformer_blocks.0', n)).toBeNull();
    expect(ldmToDiffusers('output_blocks.2.1.conv', n)).toBeNull(); // SD1.5's first Upsample, not an attention
    expect(ldmToDiffusers('down_blocks.0.attentions.0.transformer_blocks.0', n)).toBeNull();
    expect(isLdmPath('transformer_blocks.3')).toBe(false);
    // layouts the names cannot come from
    // 2 input and 4 output slots say n = 1, but then input_blocks.2 would be level 0's downsampler
    expect(layoutFromLdm(['input_blocks.1.1.transformer_blocks.0', 'input_blocks.2.1.transformer_blocks.0', ...[0, 1, 2, 3].map((k) => `output_blocks.${k}.1.transformer_blocks.0`)])).toBeNull();
    expect(layoutFromLdm(['input_blocks.1.1.transformer_blocks.0', 'output_blocks.0.1.transformer_blocks.0'])).toBeNull();
    expect(layoutFromDiffusers(['transformer_blocks.0', 'mid_block.attentions.0.transformer_blocks.0'])).toBeNull();
  });

  it('a checkpoint of another layout binds nothing by accident: the layers stay missing', () => {
    // SD1.5 names against an SDXL checkpoint: input_blocks.1.1 → down_blocks.0.attentions.0, which SDXL has not
    const sd15 = expand(SD15).map((b) => b.ldm);
    const result = bindLayers(layerRefs(sd15), checkpointOf(expand(SDXL).slice(0, 4).map((b) => b.diffusers)));
    expect(result.missing.map((l) => l.id)).toContain('input_blocks.1.1.transformer_blocks.0');
    expect([...result.bound.keys()].sort()).toEqual(['input_blocks.4.1.transformer_blocks.0', 'input_blocks.5.1.transformer_blocks.0'].sort());
  });

  it('an LDM-named export converts to exactly what the diffusers-named export converts to, and computes the same', async () => {
    const weights = checkpointFor(SD15_EXPORT);
    const ldm = converted({ ...SD15_EXPORT, names: 'ldm' }, weights);
    const plain = converted(SD15_EXPORT, weights);
    expect(ldm.report.layers.map((l) => [l.id, l.checkpointBlock])).toEqual(ldm.built.selfBlocks.map((b) => [b.path, b.checkpointPath]));
    expect(ldm.report.layers[0]!.id).toBe('input_blocks.1.1.transformer_blocks.0');
    const feeds = makeFeeds(plain.built);
    expect(relativeError(await runModel(ldm.built.model, feeds), await runModel(plain.built.model, feeds))).toBe(0);
  });
});
