/**
 * Other files deltac reads: .npy arrays (`deltac verify`), textual IR, and ONNX
 * attributes that protobuf leaves at their defaults.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModel } from '../../src/ir/text/build.js';
import { loadModel } from '../../src/onnx/load.js';
import { parseNpy } from '../../src/runtime/npy.js';
import { FLOAT, modelProto, valueInfo, writeModel } from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';
import { expectCode, measure } from './hostile.js';

const tmp = makeTempDir('deltac-hostile-other-');
afterAll(tmp.cleanup);

/** A version-1 .npy buffer with `header` (padded) and `data`. */
function npy(header: string, data: Uint8Array = new Uint8Array(16), version = 1): Buffer {
  const text = header.padEnd(118, ' ') + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = version;
  head.writeUInt16LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1'), data]);
}
const header = (shape: string) => `{'descr': '<f2', 'fortran_order': False, 'shape': (${shape}), }`;

describe('hostile .npy files → DELTAC_E_NPY', () => {
  it('a well-formed one parses (the cases below change one thing)', () => {
    const a = parseNpy(npy(header('2, 4')));
    expect(a.shape).toEqual([2, 4]);
    expect(a.data).toHaveLength(8);
  });

  for (const [name, shape, message] of [
    ['a negative dim', '-1000000000000,', /invalid shape/],
    ['a dim that is not a number', 'abc,', /invalid shape/],
    ['a fractional dim', '2.5, 2', /invalid shape/],
    ['dims whose product is beyond 2^53', '4294967296, 4294967296, 4294967296', /too large/],
    ['dims larger than the data', '100000, 100000', /holds 16 data bytes, shape needs/],
  ] as const) {
    it(name, () => {
      const m = measure(() => expectCode(() => parseNpy(npy(header(shape))), 'DELTAC_E_NPY'));
      if (m.error) throw m.error;
      expect((m.result as Error).message).toMatch(message);
      expect(m.rssGrowth).toBeLessThan(256 * 2 ** 20);
    });
  }

  it('an unknown format version', () => {
    expect(expectCode(() => parseNpy(npy(header('2, 4'), new Uint8Array(16), 9)), 'DELTAC_E_NPY').message).toMatch(/format version 9/);
  });
});

describe('hostile textual IR → DELTAC_E_TEXT_SYNTAX', () => {
  for (const literal of ['1.5', 'inf', 'nan', '1e400']) {
    it(`an i64 tensor literal element "${literal}"`, () => {
      const text = `graph @g() -> (@k) {\n  @k: i64[2] = tensor<i64[2]> [1, ${literal}]\n}`;
      expect(expectCode(() => parseModel(text), 'DELTAC_E_TEXT_SYNTAX').message).toMatch(new RegExp(`element 1 of a i64 tensor literal is "${literal}", not an integer`));
    });
  }

  it('deeply nested parentheses are a syntax error, not a stack overflow', () => {
    expectCode(() => parseModel(`graph @g() -> () {\n  %a = Foo${'('.repeat(50_000)}\n}`), 'DELTAC_E_TEXT_SYNTAX');
  });
});

describe('ONNX fields left at their protobuf defaults', () => {
  it('a STRING attribute with an empty value loads (its bytes field decodes as an empty array)', () => {
    const file = path.join(tmp.dir, 'empty-string-attr.onnx');
    writeModel(
      file,
      modelProto({
        inputs: [valueInfo('x', FLOAT, [1, 4])],
        outputs: [valueInfo('y', FLOAT, [1, 4])],
        nodes: [{ opType: 'Identity', input: ['x'], output: ['y'], attribute: [{ name: 'note', type: 3 }] }],
      }),
    );
    expect(fs.statSync(file).size).toBeGreaterThan(0);
    const m = loadModel(file);
    expect(m.graph.nodes[0]!.attributes.get('note')).toEqual({ type: 'string', value: '' });
  });

  it('INT and FLOAT attributes without a value load as 0 (proto3 writers omit zeros on the wire)', () => {
    const file = path.join(tmp.dir, 'zero-attrs.onnx');
    writeModel(
      file,
      modelProto({
        inputs: [valueInfo('x', FLOAT, [1, 4])],
        outputs: [valueInfo('y', FLOAT, [1, 4])],
        nodes: [{ opType: 'Softmax', input: ['x'], output: ['y'], attribute: [{ name: 'axis', type: 2 }, { name: 'eps', type: 1 }] }],
      }),
    );
    const attrs = loadModel(file).graph.nodes[0]!.attributes;
    expect(attrs.get('axis')).toEqual({ type: 'int', value: 0 });
    expect(attrs.get('eps')).toEqual({ type: 'float', value: 0 });
  });
});
