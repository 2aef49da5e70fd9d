/** .npy reading/writing and the fixture-input helpers the round-trip tests rely on. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeltacError } from '../../src/ir/errors.js';
import { parseNpy, readNpy, writeNpy } from '../../src/runtime/npy.js';
import { compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-npy-');
afterAll(tmp.cleanup);

/** A v1 .npy file with the given descriptor, shape text and data. */
function npy(descr: string, shape: string, data: Uint8Array, fortran = 'False'): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

describe('npy', () => {
  it('writes float32 arrays that read back exactly, with a 64-byte aligned header', () => {
    const file = path.join(tmp.dir, 'a.npy');
    const data = new Float32Array([1.5, -0, NaN, 3e38, 1e-45, 7]);
    writeNpy(file, data, [2, 3]);
    const bytes = fs.readFileSync(file);
    expect((10 + bytes.readUInt16LE(8)) % 64).toBe(0);
    const a = readNpy(file);
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([2, 3]);
    expect(new Uint32Array((a.data as Float32Array).buffer)).toEqual(new Uint32Array(data.buffer));
    writeNpy(file, new Float32Array([4]), [1]);
    expect(readNpy(file).shape).toEqual([1]);
  });

  it('reads int64, float16 (widened), bool and scalar arrays', () => {
    const i = parseNpy(npy('<i8', '(2,)', new Uint8Array(new BigInt64Array([-1n, 9007199254740993n]).buffer)));
    expect(i.dtype).toBe('int64');
    expect(Array.from(i.data as BigInt64Array)).toEqual([-1n, 9007199254740993n]);
    const h = parseNpy(npy('<f2', '(3,)', new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001]).buffer)));
    expect(h.dtype).toBe('float32');
    expect(Array.from(h.data as Float32Array)).toEqual([1, -2, 2 ** -24]);
    const b = parseNpy(npy('|b1', '(2,)', new Uint8Array([1, 0])));
    expect(b.dtype).toBe('bool');
    const s = parseNpy(npy('<f4', '()', new Uint8Array(new Float32Array([5]).buffer)));
    expect(s.shape).toEqual([]);
    expect(Array.from(s.data as Float32Array)).toEqual([5]);
  });

  it('refuses malformed files with DELTAC_E_NPY', () => {
    const bad = (buf: Buffer) => {
      try {
        parseNpy(buf, 'x.npy');
      } catch (e) {
        return (e as DeltacError).code + ': ' + (e as Error).message;
      }
      return 'no error';
    };
    expect(bad(Buffer.from('not numpy at all'))).toMatch(/^DELTAC_E_NPY: .*bad magic/);
    expect(bad(npy('>f4', '(1,)', new Uint8Array(4)))).toMatch(/unsupported dtype >f4/);
    expect(bad(npy('<f4', '(1,)', new Uint8Array(4), 'True'))).toMatch(/Fortran/);
    expect(bad(npy('<f4', '(4,)', new Uint8Array(8)))).toMatch(/holds 8 data bytes, shape needs 16/);
    expect(() => readNpy(path.join(tmp.dir, 'missing.npy'))).toThrow(expect.objectContaining({ code: 'DELTAC_E_FILE_NOT_FOUND' }));
  });
});

describe('fixture inputs', () => {
  it('groups in<k>.<input>.npy files by k and skips outputs', () => {
    const sets = readInputFolder(path.join(MODELS_DIR, 'sd15-mini'));
    expect([...sets.keys()]).toEqual(['in0', 'in1']);
    expect(Object.keys(sets.get('in0')!).sort()).toEqual(['encoder_hidden_states', 'sample', 'timestep']);
    expect(sets.get('in0')!.sample!.shape).toEqual([2, 4, 32, 24]);
    expect(sets.get('in1')!.sample!.shape).toEqual([2, 4, 16, 16]);
  });

  it('reads plain <input>.npy files as one set', () => {
    const dir = path.join(tmp.dir, 'plain');
    fs.mkdirSync(dir);
    writeNpy(path.join(dir, 'x.npy'), new Float32Array([1]), [1]);
    expect([...readInputFolder(dir)]).toEqual([['in', { x: { dtype: 'float32', shape: [1], data: new Float32Array([1]) } }]]);
    expect(() => readInputFolder(path.join(tmp.dir, 'nope'))).toThrow(expect.objectContaining({ code: 'DELTAC_E_FILE_NOT_FOUND' }));
  });

  it('compareArrays reports max |Δ| relative to max |ref|, ‖Δ‖₂ relative to ‖ref‖₂, and NaN as infinite error', () => {
    const r = compareArrays(new Float32Array([1, 2.5, -4]), new Float32Array([1, 2, -4]));
    expect(r).toEqual({ maxAbs: 0.5, maxRef: 4, rel: 0.125, rms: expect.closeTo(0.5 / Math.sqrt(21), 12), meanAbs: 0.5 / 3 });
    expect(compareArrays(new Float32Array([NaN]), new Float32Array([1])).maxAbs).toBe(Infinity);
    expect(compareArrays(new Float32Array([NaN]), new Float32Array([1])).rms).toBe(Infinity);
    expect(() => compareArrays(new Float32Array(2), new Float32Array(3))).toThrow(expect.objectContaining({ code: 'DELTAC_E_VERIFY_MISMATCH' }));
  });
});
