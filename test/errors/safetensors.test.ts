/**
 * Hostile safetensors checkpoints: each is refused with its stable code by
 * `SafetensorsFile.open` / `Checkpoint` and by `deltac convert` (exit 1, one line,
 * nothing written), before any tensor data is allocated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/ir/errors.js';
import { Checkpoint } from '../../src/weights/checkpoint.js';
import { MAX_HEADER_BYTES, SafetensorsFile } from '../../src/weights/safetensors.js';
import { makeTempDir } from '../helpers/paths.js';
import { PIXART, expectCode, expectConvertFails, makeFifo, measure, writeRawSafetensors } from './hostile.js';

const tmp = makeTempDir('deltac-hostile-st-');
afterAll(tmp.cleanup);
let counter = 0;

/** One F32 tensor "a" of shape [2, 2] over 16 data bytes, with `entry` fields overriding. */
function header(entry: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16], ...entry }, ...extra };
}
const DATA16 = new Uint8Array(16);

interface Case {
  name: string;
  code: ErrorCode;
  /** Writes the file and returns its path. */
  build: (file: string) => string;
  message: RegExp;
}

const raw = (h: unknown, data: Uint8Array = DATA16, headerLength?: bigint) => (file: string) => {
  writeRawSafetensors(file, h, data, headerLength);
  return file;
};

const CASES: Case[] = [
  // -- the 8-byte header length -------------------------------------------------
  { name: 'a header length of 2^63', code: 'DELTAC_E_SAFETENSORS', build: raw(header(), DATA16, 2n ** 63n), message: /header claims 9223372036854775808 bytes \(limit 104857600\)/ },
  { name: 'a header length of 2^64-1', code: 'DELTAC_E_SAFETENSORS', build: raw(header(), DATA16, 2n ** 64n - 1n), message: /header claims 18446744073709551615 bytes/ },
  { name: 'a header length just over the 100 MiB limit', code: 'DELTAC_E_SAFETENSORS', build: raw(header(), DATA16, BigInt(MAX_HEADER_BYTES) + 1n), message: /limit 104857600/ },
  { name: 'a header length past the end of the file', code: 'DELTAC_E_SAFETENSORS', build: raw(header(), DATA16, 10_000n), message: /header claims 10000 bytes but the file has \d+ after the length \(truncated\?\)/ },
  { name: 'a file shorter than the header length field', code: 'DELTAC_E_SAFETENSORS', build: (f) => (fs.writeFileSync(f, Buffer.from([1, 2, 3])), f), message: /3 bytes long, shorter than the 8-byte header length/ },
  // -- the JSON header --------------------------------------------------------------
  { name: 'a header that is not JSON', code: 'DELTAC_E_SAFETENSORS', build: raw('{"a": {"dtype": "F32", '), message: /header is not JSON/ },
  { name: 'a header that is not UTF-8 JSON', code: 'DELTAC_E_SAFETENSORS', build: raw(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('latin1')), message: /header is not JSON/ },
  { name: 'a header that is a JSON array', code: 'DELTAC_E_SAFETENSORS', build: raw('[1, 2, 3]'), message: /header is not a JSON object/ },
  { name: 'a header of 100,000 nested arrays', code: 'DELTAC_E_SAFETENSORS', build: raw(`{"a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`), message: /entry "a" is not an object/ },
  { name: 'an entry that is not an object', code: 'DELTAC_E_SAFETENSORS', build: raw({ a: 'F32' }), message: /entry "a" is not an object/ },
  { name: 'a non-object __metadata__', code: 'DELTAC_E_SAFETENSORS', build: raw(header({}, { __metadata__: ['x'] })), message: /__metadata__ is not an object/ },
  { name: '__metadata__ with non-string values', code: 'DELTAC_E_SAFETENSORS', build: raw(header({}, { __metadata__: { format: { nested: 1 } } })), message: /__metadata__ has values that are not strings/ },
  // -- dtypes, shapes, offsets ----------------------------------------------------------
  { name: 'an unknown dtype', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ dtype: 'Q4_K' })), message: /tensor "a" has unknown dtype "Q4_K"/ },
  { name: 'a missing dtype', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ dtype: undefined })), message: /tensor "a" has unknown dtype undefined/ },
  { name: 'a negative dim', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ shape: [-2, -2] })), message: /invalid shape \[-2,-2\]/ },
  { name: 'a fractional dim', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ shape: [0.5, 8] })), message: /invalid shape \[0.5,8\]/ },
  { name: 'a dim beyond 2^53', code: 'DELTAC_E_SAFETENSORS', build: raw('{"a": {"dtype": "F32", "shape": [18446744073709551616], "data_offsets": [0, 16]}}'), message: /invalid shape/ },
  { name: 'data_offsets in reverse', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ data_offsets: [16, 0] })), message: /invalid data_offsets \[16,0\]/ },
  { name: 'negative data_offsets', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ data_offsets: [-16, 0] })), message: /invalid data_offsets/ },
  { name: 'three data_offsets', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ data_offsets: [0, 8, 16] })), message: /invalid data_offsets \[0,8,16\]/ },
  { name: 'data_offsets that are strings', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ data_offsets: ['0', '16'] })), message: /invalid data_offsets/ },
  { name: 'data_offsets past the end of the data', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ shape: [2 ** 40], data_offsets: [0, 2 ** 42] })), message: /ends at byte 4398046511104 of a 16-byte data section \(truncated\?\)/ },
  {
    name: 'overlapping data_offsets',
    code: 'DELTAC_E_SAFETENSORS',
    build: raw({ ...header(), b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }),
    message: /the data of "b" overlaps the data of "a"/,
  },
  { name: 'a shape that disagrees with its offsets', code: 'DELTAC_E_SAFETENSORS', build: raw(header({ shape: [3, 3] })), message: /\(F32\[3,3\]\) needs 36 bytes but its offsets span 16/ },
  // -- the path itself ----------------------------------------------------------------------
  { name: 'a missing file', code: 'DELTAC_E_FILE_NOT_FOUND', build: (f) => f, message: /does not exist/ },
  { name: 'a folder', code: 'DELTAC_E_FILE_READ', build: (f) => (fs.mkdirSync(f), f), message: /is not a regular file/ },
  { name: 'a named pipe (opening it would block)', code: 'DELTAC_E_FILE_READ', build: (f) => (makeFifo(f), f), message: /is not a regular file/ },
];

describe('hostile safetensors files are refused with a stable code', () => {
  for (const c of CASES) {
    it(`${c.name} → ${c.code}`, async () => {
      const dir = path.join(tmp.dir, `case${++counter}`);
      fs.mkdirSync(dir);
      const file = c.build(path.join(dir, 'weights.safetensors'));
      const m = measure(() => expectCode(() => SafetensorsFile.open(file), c.code));
      if (m.error) throw m.error;
      expect((m.result as Error).message).toMatch(c.message);
      expect(m.ms).toBeLessThan(2000);
      expect(m.rssGrowth).toBeLessThan(256 * 2 ** 20);
      await expectConvertFails(PIXART, file, path.join(dir, 'out'), c.code);
    });
  }

  it('a well-formed file is accepted (the cases above differ from it in one thing)', () => {
    const file = path.join(tmp.dir, 'good.safetensors');
    writeRawSafetensors(file, header({}, { __metadata__: { format: 'pt' } }), new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer));
    const st = SafetensorsFile.open(file);
    expect(st.keys()).toEqual(['a']);
    expect([...st.tensor('a').toFloat32()]).toEqual([1, 2, 3, 4]);
  });

  it('a ΔConvBlock with zero channels → DELTAC_E_WEIGHT_SHAPE', () => {
    const file = path.join(tmp.dir, 'zero.safetensors');
    const p = 'transformer_blocks.0.conv1';
    const t = (shape: number[]) => ({ dtype: 'F32', shape, data_offsets: [0, 0] });
    writeRawSafetensors(file, {
      [`${p}.conv_up.weight`]: t([0, 0]),
      [`${p}.conv_up.bias`]: t([0]),
      [`${p}.gates.0.conv_spatial.weight`]: t([3, 3, 0]),
      [`${p}.conv_out.weight`]: t([0, 0]),
      [`${p}.conv_out.bias`]: t([0]),
      [`${p}.conv_pool.weight`]: t([0, 0]),
      [`${p}.conv_pool.bias`]: t([0]),
    });
    const ckpt = Checkpoint.open(file);
    const e = expectCode(() => ckpt.geometry(ckpt.blocks.get('transformer_blocks.0')!, 'transformer_blocks.0'), 'DELTAC_E_WEIGHT_SHAPE');
    expect(e.message).toContain('with non-zero Ci and C');
  });

  it('a file that shrinks after it was opened → DELTAC_E_SAFETENSORS when the tensor is read', () => {
    const file = path.join(tmp.dir, 'shrinks.safetensors');
    writeRawSafetensors(file, header(), DATA16);
    const st = SafetensorsFile.open(file);
    fs.truncateSync(file, fs.statSync(file).size - 8);
    expect(expectCode(() => st.tensor('a'), 'DELTAC_E_SAFETENSORS').message).toMatch(/ended while reading "a" \(truncated\?\)/);
  });
});
