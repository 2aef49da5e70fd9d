/** Conversion inputs that must fail with a clear error, exit code 1 and no output file. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-bad-');
afterAll(tmp.cleanup);

const cli = (args: string[]) => runCli(...args);

const sd15 = path.join(MODELS_DIR, 'sd15-mini');
const pixart = path.join(MODELS_DIR, 'pixart-mini');

/** Copies a safetensors file with some keys removed from its header (data left in place). */
function withoutKeys(src: string, dst: string, drop: (key: string) => boolean): void {
  const buf = fs.readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  for (const k of Object.keys(header)) if (drop(k)) delete header[k];
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  // keep the data section's offsets: pad the header to its old length
  const padded = Buffer.concat([json, Buffer.alloc(n - json.length, 0x20)]);
  len.writeBigUInt64LE(BigInt(padded.length));
  fs.writeFileSync(dst, Buffer.concat([len, padded, buf.subarray(8 + n)]));
}

describe('deltac convert refuses bad inputs', () => {
  it('weights for another model (a PixArt checkpoint on an SD1.5 UNet)', async () => {
    const out = path.join(tmp.dir, 'a.onnx');
    const r = await cli(['convert', path.join(sd15, 'model.onnx'), '--weights', path.join(pixart, 'delta.safetensors'), '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_WEIGHTS_UNUSED: none of the model's 16 self-attention layers/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('weights for another model (an SD1.5 checkpoint on PixArt)', async () => {
    const r = await cli(['convert', path.join(pixart, 'model.onnx'), '--weights', path.join(sd15, 'delta.safetensors'), '-o', path.join(tmp.dir, 'b.onnx')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_WEIGHTS_UNUSED/);
  });

  it('a truncated safetensors file', async () => {
    const bad = path.join(tmp.dir, 'truncated.safetensors');
    const full = fs.readFileSync(path.join(sd15, 'delta.safetensors'));
    fs.writeFileSync(bad, full.subarray(0, Math.floor(full.length / 2)));
    const r = await cli(['convert', path.join(sd15, 'model.onnx'), '--weights', bad, '-o', path.join(tmp.dir, 'c.onnx')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_SAFETENSORS: .*truncated/);
  });

  it('a layer missing from the checkpoint, and --allow-partial keeping its attention', async () => {
    const partial = path.join(tmp.dir, 'partial.safetensors');
    withoutKeys(path.join(sd15, 'delta.safetensors'), partial, (k) => k.startsWith('mid_block.'));
    const out = path.join(tmp.dir, 'd.onnx');
    const r = await cli(['convert', path.join(sd15, 'model.onnx'), '--weights', partial, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_WEIGHT_MISSING: layer mid_block\.attentions\.0\.transformer_blocks\.0 has no ΔConvBlock weights/);
    expect(fs.existsSync(out)).toBe(false);
    // (the smoke check has its own tests: test/convert/smoke-check.test.ts)
    const ok = await cli(['convert', path.join(sd15, 'model.onnx'), '--weights', partial, '-o', out, '--allow-partial', '--json', '--no-check']);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.out).report;
    const kept = report.layers.filter((l: { status: string }) => l.status === 'kept');
    expect(kept.map((l: { id: string }) => l.id)).toEqual(['mid_block.attentions.0.transformer_blocks.0']);
    expect(ok.err).toMatch(/keeps its self-attention/);
  });

  it('a tensor with the wrong shape names the layer, the key and both shapes', async () => {
    const bad = path.join(tmp.dir, 'shape.safetensors');
    const buf = fs.readFileSync(path.join(sd15, 'delta.safetensors'));
    const n = Number(buf.readBigUInt64LE(0));
    const header = buf.subarray(8, 8 + n).toString('utf8');
    // conv_pool.weight [32, 32] of the first block declared as [16, 64]: same byte size
    const key = 'down_blocks.0.attentions.0.transformer_blocks.0.conv1.conv_pool.weight';
    const h = JSON.parse(header);
    h[key].shape = [16, 64];
    const json = Buffer.from(JSON.stringify(h).padEnd(n, ' '));
    fs.writeFileSync(bad, Buffer.concat([buf.subarray(0, 8), json, buf.subarray(8 + n)]));
    const r = await cli(['convert', path.join(sd15, 'model.onnx'), '--weights', bad, '-o', path.join(tmp.dir, 'e.onnx')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`DELTAC_E_WEIGHT_SHAPE: layer down_blocks.0.attentions.0.transformer_blocks.0: "${key}" is [16, 64], expected [32, 32]`);
  });

  it('a model with no self-attention (an already converted one)', async () => {
    const once = path.join(tmp.dir, 'once.onnx');
    expect((await cli(['convert', path.join(pixart, 'model.onnx'), '--weights', path.join(pixart, 'delta.safetensors'), '-o', once])).code).toBe(0);
    const r = await cli(['convert', once, '--weights', path.join(pixart, 'delta.safetensors'), '-o', path.join(tmp.dir, 'twice.onnx')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_NO_SELF_ATTENTION: the model has no self-attention to convert \(4 cross-attention/);
  });

  it('bad options', async () => {
    const base = ['convert', path.join(pixart, 'model.onnx'), '--weights', path.join(pixart, 'delta.safetensors'), '-o', path.join(tmp.dir, 'f.onnx')];
    expect((await cli([...base, '--gate', 'tanh'])).err).toMatch(/DELTAC_E_BAD_OPTION: --gate must be one of simple, sigmoid/);
    expect((await cli([...base, '--scales', '1,0.5,0.25'])).err).toMatch(/DELTAC_E_BAD_OPTION: --scales gives 3 scale\(s\) but layer transformer_blocks.0 has 2/);
    expect((await cli([...base, '--scales', '1,abc'])).err).toMatch(/DELTAC_E_BAD_OPTION/);
    expect((await cli([...base, '--emit', 'cuda'])).err).toMatch(/DELTAC_E_BAD_OPTION: --emit must be standard or fused/);
    expect((await cli(['convert', path.join(pixart, 'model.onnx')])).err).toMatch(/missing --weights/);
    expect((await cli([...base, '--no-such-flag'])).code).toBe(1);
  });

  it('the options analyze and report share with convert are checked the same way', async () => {
    const model = path.join(pixart, 'model.onnx');
    expect((await cli(['analyze', model, '--json', '--gate', 'tanh'])).err).toMatch(/DELTAC_E_BAD_OPTION: --gate must be one of simple, sigmoid, got "tanh"/);
    expect((await cli(['analyze', model, '--json', '--samples', '1.5'])).err).toMatch(/DELTAC_E_BAD_OPTION: --samples must be an integer, got "1.5"/);
    expect((await cli(['report', model, '--batch', '0'])).err).toMatch(/DELTAC_E_BAD_OPTION: --batch must be a positive integer, got "0"/);
    expect((await cli(['report', model, '--resolution', '512,x'])).err).toMatch(/DELTAC_E_BAD_OPTION: --resolution must be a comma-separated list of numbers/);
  });

  it('refuses to overwrite the input model', async () => {
    const copy = path.join(tmp.dir, 'input.onnx');
    fs.copyFileSync(path.join(pixart, 'model.onnx'), copy);
    const before = fs.readFileSync(copy);
    const r = await cli(['convert', copy, '--weights', path.join(pixart, 'delta.safetensors'), '-o', copy]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DELTAC_E_OUTPUT_EXISTS/);
    expect(fs.readFileSync(copy).equals(before)).toBe(true);
  });
});
