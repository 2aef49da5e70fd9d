/**
 * External data on load: lazy reads from many files, and the refusals — paths
 * that leave the model folder (absolute, `..`, symlinks), missing files, ranges
 * past the end of a file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeltacError } from '../../src/ir/errors.js';
import { resolveExternalLocation } from '../../src/onnx/external-data.js';
import { loadModel, loadModelWithReport } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { OrtModel } from '../../src/runtime/onnxruntime.js';
import { FLOAT, externalTensor, float32Bytes, valueInfo, writeModel } from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';
import { codeOf } from '../helpers/cli.js';

const tmp = makeTempDir('deltac-external-');
afterAll(tmp.cleanup);
let counter = 0;

/** A fresh folder holding model.onnx: y = x + w1 + w2, with w1/w2 described by `entries`. */
function caseDir(
  entries: [Record<string, string>, Record<string, string>],
  files: Record<string, Buffer> = {},
): { dir: string; model: string } {
  const dir = path.join(tmp.dir, `case-${++counter}`);
  fs.mkdirSync(dir);
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  const model = path.join(dir, 'model.onnx');
  writeModel(model, {
    initializers: [externalTensor('w1', FLOAT, [4], entries[0]), externalTensor('w2', FLOAT, [4], entries[1])],
    nodes: [
      { opType: 'Add', input: ['x', 'w1'], output: ['a'] },
      { opType: 'Add', input: ['a', 'w2'], output: ['y'] },
    ],
    inputs: [valueInfo('x', FLOAT, [4])],
    outputs: [valueInfo('y', FLOAT, [4])],
  });
  return { dir, model };
}


const W1 = float32Bytes([1, 2, 3, 4]);
const W2 = float32Bytes([10, 20, 30, 40]);

describe('loading external data', () => {
  it('reads tensors from several files, in subfolders, at offsets, lazily', async () => {
    const packed = Buffer.concat([Buffer.alloc(64, 0xee), W2]);
    const { dir, model } = caseDir(
      [
        { location: 'weights/w1.bin', offset: '0', length: '16' },
        { location: 'packed.bin', offset: '64', length: '16', checksum: 'abc' },
      ],
      { 'weights/w1.bin': W1, 'packed.bin': packed },
    );
    const report = loadModelWithReport(model);
    expect(report.externalFiles.sort()).toEqual([path.join(dir, 'packed.bin'), path.join(dir, 'weights/w1.bin')].sort());
    const w2 = report.model.graph.initializers.get('w2')!.initializer!;
    expect(w2.storage).toMatchObject({ kind: 'external', location: 'packed.bin', offset: 64, length: 16, extraEntries: [['checksum', 'abc']] });
    expect(Array.from(w2.toFloat32())).toEqual([10, 20, 30, 40]);
    // lazily: the bytes are read when asked for, not at load time
    fs.writeFileSync(path.join(dir, 'packed.bin'), Buffer.concat([Buffer.alloc(64), float32Bytes([5, 6, 7, 8])]));
    expect(Array.from(w2.toFloat32())).toEqual([5, 6, 7, 8]);

    const session = await OrtModel.load(model);
    const y = (await session.run({ x: { dtype: 'float32', shape: [4], data: new Float32Array([100, 100, 100, 100]) } })).y!;
    await session.release();
    expect(Array.from(y.data)).toEqual([106, 108, 110, 112]);
  });

  it('takes the length from the file when the entry has none', () => {
    const { model } = caseDir([{ location: 'a.bin' }, { location: 'b.bin', offset: '0' }], { 'a.bin': W1, 'b.bin': W2 });
    const m = loadModel(model);
    expect(m.graph.initializers.get('w1')!.initializer!.storage).toMatchObject({ offset: 0, length: 16 });
  });

  it('refuses an absolute location', () => {
    const abs = path.join(tmp.dir, 'outside.bin');
    fs.writeFileSync(abs, W1);
    const { model } = caseDir([{ location: abs, length: '16' }, { location: 'b.bin' }], { 'b.bin': W2 });
    expect(codeOf(() => loadModel(model))).toMatch(/^DELTAC_E_EXTERNAL_PATH: .*"w1".*is an absolute path/);
  });

  it('refuses locations with ".." even when they lead back inside', () => {
    for (const location of ['../outside.bin', 'weights/../../outside.bin', 'weights/../a.bin', '..\\outside.bin']) {
      const { model } = caseDir([{ location }, { location: 'a.bin' }], { 'a.bin': W1, 'weights/x': W1 });
      expect(codeOf(() => loadModel(model)), location).toMatch(/^DELTAC_E_EXTERNAL_PATH: .*contains "\.\."/);
    }
  });

  it('refuses Windows drive paths and empty locations', () => {
    expect(codeOf(() => resolveExternalLocation(tmp.dir, 'C:\\weights.bin', 't'))).toMatch(/^DELTAC_E_EXTERNAL_PATH/);
    expect(codeOf(() => resolveExternalLocation(tmp.dir, 'c:weights.bin', 't'))).toMatch(/^DELTAC_E_EXTERNAL_PATH/);
    expect(codeOf(() => resolveExternalLocation(tmp.dir, '', 't'))).toMatch(/^DELTAC_E_EXTERNAL_PATH/);
    expect(codeOf(() => resolveExternalLocation(tmp.dir, '.', 't'))).toMatch(/^DELTAC_E_EXTERNAL_PATH/);
  });

  it('refuses a symlink that escapes the model folder, and accepts one that stays inside', () => {
    const secret = path.join(tmp.dir, 'secret.bin');
    fs.writeFileSync(secret, W1);
    const { dir, model } = caseDir([{ location: 'link.bin' }, { location: 'b.bin' }], { 'b.bin': W2 });
    fs.symlinkSync(secret, path.join(dir, 'link.bin'));
    expect(codeOf(() => loadModel(model))).toMatch(/^DELTAC_E_EXTERNAL_PATH: .*symlink.*outside the model folder/);

    const escapingDir = caseDir([{ location: 'sub/w1.bin' }, { location: 'b.bin' }], { 'b.bin': W2 });
    fs.mkdirSync(path.join(tmp.dir, 'elsewhere'), { recursive: true });
    fs.writeFileSync(path.join(tmp.dir, 'elsewhere/w1.bin'), W1);
    fs.symlinkSync(path.join(tmp.dir, 'elsewhere'), path.join(escapingDir.dir, 'sub'));
    expect(codeOf(() => loadModel(escapingDir.model))).toMatch(/^DELTAC_E_EXTERNAL_PATH/);

    const inside = caseDir([{ location: 'alias.bin' }, { location: 'b.bin' }], { 'real.bin': W1, 'b.bin': W2 });
    fs.symlinkSync('real.bin', path.join(inside.dir, 'alias.bin'));
    expect(Array.from(loadModel(inside.model).graph.initializers.get('w1')!.initializer!.toFloat32())).toEqual([1, 2, 3, 4]);
  });

  it('accepts a model folder that is itself reached through a symlink', () => {
    const { dir } = caseDir([{ location: 'a.bin' }, { location: 'b.bin' }], { 'a.bin': W1, 'b.bin': W2 });
    const alias = path.join(tmp.dir, `alias-${counter}`);
    fs.symlinkSync(dir, alias);
    expect(loadModel(path.join(alias, 'model.onnx')).graph.initializers.size).toBe(2);
  });

  it('reports a missing file (DELTAC_E_EXTERNAL_MISSING), or warns once per file when asked', () => {
    const { model } = caseDir([{ location: 'gone.bin', length: '16' }, { location: 'gone.bin', offset: '16', length: '16' }]);
    expect(codeOf(() => loadModel(model))).toMatch(/^DELTAC_E_EXTERNAL_MISSING: .*"gone\.bin"/);
    const report = loadModelWithReport(model, { missingExternalData: 'warn' });
    expect(report.diagnostics.map((d) => [d.severity, d.code, d.message])).toEqual([
      ['warning', 'DELTAC_W_EXTERNAL_MISSING', 'external data file "gone.bin" is missing'],
    ]);
    const w1 = report.model.graph.initializers.get('w1')!.initializer!;
    expect(w1.byteLength).toBe(16);
    expect(codeOf(() => w1.bytes())).toMatch(/^DELTAC_E_EXTERNAL_MISSING/);
  });

  it('refuses a range past the end of its file (DELTAC_E_EXTERNAL_RANGE)', () => {
    const { model } = caseDir([{ location: 'a.bin', offset: '8', length: '16' }, { location: 'b.bin' }], { 'a.bin': W1, 'b.bin': W2 });
    expect(codeOf(() => loadModel(model))).toMatch(/^DELTAC_E_EXTERNAL_RANGE: .*\[8, 24\).*only 16 bytes/);
  });

  it('notices a file truncated after loading', () => {
    const { dir, model } = caseDir([{ location: 'a.bin' }, { location: 'b.bin' }], { 'a.bin': W1, 'b.bin': W2 });
    const m = loadModel(model);
    fs.truncateSync(path.join(dir, 'b.bin'), 8);
    const w2 = m.graph.initializers.get('w2')!.initializer!;
    expect(codeOf(() => w2.bytes())).toMatch(/^DELTAC_E_EXTERNAL_RANGE/);
  });

  it('refuses entries that disagree with the tensor or are malformed (DELTAC_E_TENSOR_DATA)', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ location: 'a.bin', length: '12' }, /declares 12 bytes.*need 16/],
      [{ location: 'a.bin', offset: '-4', length: '16' }, /invalid offset "-4"/],
      [{ location: 'a.bin', offset: '0x10', length: '16' }, /invalid offset/],
      [{ offset: '0', length: '16' }, /no "location" entry/],
    ];
    for (const [entry, message] of cases) {
      const { model } = caseDir([entry, { location: 'a.bin' }], { 'a.bin': W1 });
      const got = codeOf(() => loadModel(model));
      expect(got, JSON.stringify(entry)).toMatch(/^DELTAC_E_TENSOR_DATA/);
      expect(got).toMatch(message);
    }
  });
});

describe('saving a model that has external data', () => {
  it("'auto' writes one external file; reuseWeights keeps the input's locations and extra entries", async () => {
    const packed = Buffer.concat([Buffer.alloc(64), W2]);
    const { dir, model } = caseDir(
      [{ location: 'w/w1.bin' }, { location: 'packed.bin', offset: '64', length: '16', checksum: 'abc' }],
      { 'w/w1.bin': W1, 'packed.bin': packed },
    );
    const m = loadModel(model);
    const out = path.join(dir, 'copy.onnx');
    const r = saveModel(m, out, { sizeThreshold: 0 });
    expect(r.externalDataPath).toBe(path.join(dir, 'copy.onnx.data'));
    expect(r.externalTensors).toBe(2);
    expect(fs.statSync(r.externalDataPath!).size).toBe(64 + 16); // 16 bytes, then 64-byte alignment, then 16
    const back = loadModel(out);
    expect(Array.from(back.graph.initializers.get('w2')!.initializer!.toFloat32())).toEqual([10, 20, 30, 40]);

    const reuse = path.join(dir, 'reuse.onnx');
    const rr = saveModel(m, reuse, { reuseWeights: true });
    expect(rr.reusedTensors).toBe(2);
    expect(rr.externalDataPath).toBeUndefined();
    const again = loadModel(reuse);
    expect(again.graph.initializers.get('w2')!.initializer!.storage).toMatchObject({
      location: 'packed.bin',
      offset: 64,
      extraEntries: [['checksum', 'abc']],
    });

    for (const f of [model, out, reuse]) {
      const session = await OrtModel.load(f);
      const y = (await session.run({ x: { dtype: 'float32', shape: [4], data: new Float32Array(4) } })).y!;
      await session.release();
      expect(Array.from(y.data), f).toEqual([11, 22, 33, 44]);
    }
  });

  it('refuses reuseWeights when the output is in another folder', () => {
    const { model } = caseDir([{ location: 'a.bin' }, { location: 'b.bin' }], { 'a.bin': W1, 'b.bin': W2 });
    const elsewhere = path.join(tmp.dir, `elsewhere-${counter}`);
    fs.mkdirSync(elsewhere);
    expect(codeOf(() => saveModel(loadModel(model), path.join(elsewhere, 'm.onnx'), { reuseWeights: true }))).toMatch(
      /^DELTAC_E_BAD_OPTION/,
    );
  });
});
