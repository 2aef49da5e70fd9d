/**
 * NaN and ±Inf in the weights: refused with DELTAC_E_WEIGHTS_NONFINITE, naming the
 * tensor, the count and the first index, exit code 1 and no output file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';
import { runCli, codeOf } from '../helpers/cli.js';
import { MODELS_DIR, listDir, makeTempDir } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';
import { buildExport, deltaCheckpoint } from '../fixtures/exports/index.js';

const tmp = makeTempDir('deltac-nonfinite-');
afterAll(tmp.cleanup);

const sd15 = path.join(MODELS_DIR, 'sd15-mini');

/** A copy of the sd15-mini checkpoint with element `index` of tensor `key` (F32) set to `value`. */
function corrupt(name: string, key: string, index: number, value: number): string {
  const file = path.join(sd15, 'delta.safetensors');
  const entry = SafetensorsFile.open(file).entries.get(key)!;
  expect(entry.dtypeName).toBe('F32');
  const bytes = fs.readFileSync(file);
  bytes.writeFloatLE(value, entry.begin + 4 * index);
  const out = path.join(tmp.dir, name);
  fs.writeFileSync(out, bytes);
  return out;
}

describe('non-finite weights', () => {
  it('one NaN in a conv_up weight: exit 1, the tensor, the count and the first index, no output', async () => {
    const key = 'down_blocks.0.attentions.0.transformer_blocks.0.conv1.conv_up.weight';
    const weights = corrupt('nan.safetensors', key, 37, NaN);
    const dir = path.join(tmp.dir, 'nan-out');
    fs.mkdirSync(dir);
    const r = await runCli('convert', path.join(sd15, 'model.onnx'), '--weights', weights, '-o', path.join(dir, 'unet.onnx'));
    expect(r.code).toBe(1);
    // conv_up.weight is [Ci, C] = [16, 32]: flat index 37 is row 1, column 5
    expect(r.err).toContain(`DELTAC_E_WEIGHTS_NONFINITE: tensor "${key}" of checkpoint "${weights}" (f32[16, 32]) holds 1 NaN among 512 values, the first at index 37 ([1, 5])`);
    expect(r.out).toBe('');
    expect(listDir(dir)).toEqual([]);
  });

  it('an Inf in a conv_out bias: exit 1 with the code and no output', async () => {
    const key = 'up_blocks.3.attentions.2.transformer_blocks.0.conv1.conv_out.bias';
    const weights = corrupt('inf.safetensors', key, 30, -Infinity);
    const out = path.join(tmp.dir, 'inf.onnx');
    const r = await runCli('convert', path.join(sd15, 'model.onnx'), '--weights', weights, '-o', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^deltac convert: DELTAC_E_WEIGHTS_NONFINITE: tensor "${key.replace(/\./g, '\\.')}" .* \\(f32\\[32\\]\\) holds 1 -Inf among 32 values, the first at index 30 \\(\\[30\\]\\)`));
    expect(fs.existsSync(out)).toBe(false);
  });

  it('tensors are scanned as their block is read: a clean block reads, the corrupt one is refused', () => {
    const ckpt = Checkpoint.open(corrupt('unbound.safetensors', 'mid_block.attentions.0.transformer_blocks.0.conv1.conv_pool.bias', 0, NaN));
    const block = ckpt.blocks.get('down_blocks.0.attentions.0.transformer_blocks.0')!;
    expect(() => ckpt.read(block)).not.toThrow();
    expect(codeOf(() => ckpt.read(ckpt.blocks.get('mid_block.attentions.0.transformer_blocks.0')!))).toMatch(/^DELTAC_E_WEIGHTS_NONFINITE: .*conv_pool\.bias.* holds 1 NaN among 64 values, the first at index 0/);
  });

  it('finite f32 weights that overflow f16 when cast into an f16 model are refused too', () => {
    const built = buildExport({ layout: 'dit', style: 'ts-sdpa', dtype: 'f16' });
    const tensors = deltaCheckpoint(built);
    const key = Object.keys(tensors).find((k) => k.endsWith('conv1.conv_pool.weight'))!;
    tensors[key]!.data[3] = 1e5; // finite in f32, beyond f16's 65504
    const file = path.join(tmp.dir, 'overflow.safetensors');
    writeSafetensors(file, tensors);
    const block = key.replace(/\.conv1\.conv_pool\.weight$/, '');
    expect(codeOf(() => convert(built.model, { weights: file }))).toMatch(
      new RegExp(`^DELTAC_E_WEIGHTS_NONFINITE: tensor "${block.replace(/\./g, '\\.')}\\.attn1\\.delta\\.conv_pool\\.weight" of the converted model \\(f16\\[\\d+, \\d+\\]\\) holds 1 \\+Inf .* the first at index 3 .*f16: ±65504`),
    );
  });
});
