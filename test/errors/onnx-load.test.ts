/**
 * Hostile ONNX files: each must be refused with its stable error code, through the
 * API (`loadModel`) and through the CLI (`deltac convert`: exit 1, one line on
 * stderr, no stack trace, nothing written) — never a crash, hang or huge allocation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/ir/errors.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { loadModel } from '../../src/onnx/load.js';
import { TensorProtoType } from '../../src/onnx/schema.js';
import { FLOAT, INT64, type ProtoObject, externalTensor, float32Bytes, modelProto, valueInfo, writeModel } from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';
import { PIXART, PIXART_WEIGHTS, cli, expectCode, expectConvertFails, expectUserError, makeFifo, measure } from './hostile.js';

const tmp = makeTempDir('deltac-hostile-onnx-');
afterAll(tmp.cleanup);
// Files outside every model folder, for symlinks to escape to.
const outsideDir = path.join(tmp.dir, 'outside');
const outsideFile = path.join(outsideDir, 'secret.bin');
fs.mkdirSync(outsideDir);
fs.writeFileSync(outsideFile, Buffer.alloc(16, 1));
const freshDir = tmp.fresh;

const x = valueInfo('x', FLOAT, [1, 4]);
const y = valueInfo('y', FLOAT, [1, 4]);
const identity = (input: string, output: string, name = '') => ({ opType: 'Identity', input: [input], output: [output], name });

/** x → Identity → y, plus whatever the case adds. */
function tiny(extra: { nodes?: ProtoObject[]; initializers?: ProtoObject[]; inputs?: ProtoObject[]; outputs?: ProtoObject[]; irVersion?: number } = {}): ProtoObject {
  return modelProto({
    inputs: extra.inputs ?? [x],
    outputs: extra.outputs ?? [y],
    nodes: extra.nodes ?? [identity('x', 'y')],
    initializers: extra.initializers,
    irVersion: extra.irVersion,
  });
}

/** A model with one initializer `w` (read by an Add so that it is used). */
function withInitializer(w: ProtoObject): ProtoObject {
  return tiny({ initializers: [{ name: 'w', ...w }], nodes: [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }] });
}

/** Writes the case's model into `dir` and returns its path. */
type Build = (dir: string) => string;

function model(proto: ProtoObject): Build {
  return (dir) => {
    const file = path.join(dir, 'model.onnx');
    writeModel(file, proto);
    return file;
  };
}

function bytes(b: Uint8Array | string): Build {
  return (dir) => {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, b);
    return file;
  };
}

/** An external-data model (w: f32[1,4] at `entries`) plus files the case sets up first. */
function external(entries: Record<string, string>, setup: (dir: string) => void = () => {}, dims = [1, 4], dataType = FLOAT): Build {
  return (dir) => {
    setup(dir);
    return model(withInitializer(externalTensor('w', dataType, dims, entries)))(dir);
  };
}

// ---- raw protobuf, for nesting deeper than protobufjs will encode ----------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const field = (tag: number, payload: number[] | Buffer) => [...varint(tag), ...varint(payload.length), ...payload];
const str = (tag: number, s: string) => field(tag, [...Buffer.from(s)]);

/** A model whose graph holds an If whose then_branch holds an If … `depth` levels deep. */
function nestedIfs(depth: number): Buffer {
  let graph = str((2 << 3) | 2, 'leaf');
  for (let i = 0; i < depth; i++) {
    const attr = [...str((1 << 3) | 2, 'then_branch'), ...varint(20 << 3), 5, ...field((6 << 3) | 2, graph)];
    const node = [...str((1 << 3) | 2, 'c'), ...str((2 << 3) | 2, `o${i}`), ...str((4 << 3) | 2, 'If'), ...field((5 << 3) | 2, attr)];
    graph = [...field((1 << 3) | 2, node), ...str((2 << 3) | 2, `g${i}`)];
  }
  const opset = field((8 << 3) | 2, [2 << 3, 17]);
  return Buffer.from([1 << 3, 8, ...field((7 << 3) | 2, graph), ...opset]);
}

interface Case {
  name: string;
  code: ErrorCode;
  build: Build;
  /** Part of the message that says what is wrong. */
  message: RegExp;
  /** The code `deltac convert` gives, when it differs (a folder is read as a pipeline folder). */
  cliCode?: ErrorCode;
}

const pixartBytes = fs.readFileSync(PIXART);

const CASES: Case[] = [
  // -- not ONNX, or not valid ONNX --------------------------------------------
  { name: 'a truncated model', code: 'DELTAC_E_NOT_ONNX', build: bytes(pixartBytes.subarray(0, 200_001)), message: /protobuf decoding failed.*truncated/ },
  { name: 'a text file', code: 'DELTAC_E_NOT_ONNX', build: bytes('{"graph": "not a model"}\n'), message: /not a(n| valid) ONNX model/ },
  { name: 'an empty file (a ModelProto without graph)', code: 'DELTAC_E_NOT_ONNX', build: bytes(''), message: /has no graph/ },
  {
    name: 'a TensorProto saved as a model',
    code: 'DELTAC_E_NOT_ONNX',
    build: bytes(TensorProtoType.encode(TensorProtoType.fromObject({ dims: [3, 4], dataType: 1, name: 'x', rawData: Buffer.alloc(48) })).finish()),
    message: /not a valid ONNX model/,
  },
  { name: 'a safetensors file given as the model', code: 'DELTAC_E_NOT_ONNX', build: bytes(fs.readFileSync(PIXART_WEIGHTS)), message: /not a(n| valid) ONNX model/ },
  { name: 'a known field with the wrong wire type (graph as a varint)', code: 'DELTAC_E_NOT_ONNX', build: bytes(Buffer.from([0x08, 0x08, 0x38, 0x05])), message: /protobuf decoding failed/ },
  { name: '100,000 nested protobuf groups', code: 'DELTAC_E_NOT_ONNX', build: bytes(Buffer.concat([Buffer.from([0x08, 0x08]), Buffer.alloc(100_000, 0x0b)])), message: /not a(n| valid) ONNX model/ },
  { name: 'a node without op_type', code: 'DELTAC_E_NOT_ONNX', build: model(tiny({ nodes: [{ opType: '', input: ['x'], output: ['y'], name: 'n0' }] })), message: /node "n0" .*has no op_type/ },
  {
    name: 'a TENSOR attribute that holds no tensor',
    code: 'DELTAC_E_NOT_ONNX',
    build: model(tiny({ nodes: [identity('x', 'y'), { opType: 'Constant', output: ['c'], name: 'k', attribute: [{ name: 'value', type: 4 }] }] })),
    message: /attribute "value" of Constant node "k" has type TENSOR but holds no tensor/,
  },
  {
    name: 'an If whose branches hold no graphs',
    code: 'DELTAC_E_NOT_ONNX',
    build: model(
      tiny({
        inputs: [x, valueInfo('c', 9, [])],
        nodes: [{ opType: 'If', input: ['c'], output: ['y'], name: 'if', attribute: [{ name: 'then_branch', type: 5 }, { name: 'else_branch', type: 5 }] }],
      }),
    ),
    message: /attribute "then_branch" of If node "if" has type GRAPH but holds no graph/,
  },
  { name: 'subgraphs nested 50 deep', code: 'DELTAC_E_NOT_ONNX', build: bytes(nestedIfs(50)), message: /nesting depth/ },
  // -- IR version ---------------------------------------------------------------
  { name: 'IR version 2', code: 'DELTAC_E_IR_VERSION', build: model(tiny({ irVersion: 2 })), message: /declares IR version 2; deltac reads IR versions 3–14/ },
  { name: 'IR version 1', code: 'DELTAC_E_IR_VERSION', build: model(tiny({ irVersion: 1 })), message: /IR version 1;/ },
  { name: 'no IR version', code: 'DELTAC_E_IR_VERSION', build: model({ ...tiny(), irVersion: 0 }), message: /IR version 0/ },
  // -- tensors whose declared size disagrees with their data ---------------------
  { name: 'raw_data shorter than the shape', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [1, 4], rawData: float32Bytes([1, 2, 3]) })), message: /should hold 16 bytes but has 12/ },
  { name: 'raw_data longer than the shape', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [1, 4], rawData: float32Bytes([1, 2, 3, 4, 5]) })), message: /should hold 16 bytes but has 20/ },
  { name: 'float_data with the wrong count', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [1, 4], floatData: [1, 2] })), message: /has 2 values in its typed field for 4 elements/ },
  { name: 'dims [2^40] and no data', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [2 ** 40] })), message: /should hold 4398046511104 bytes but has 0/ },
  { name: 'dims [2^40] and one float_data value', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [2 ** 40], floatData: [1] })), message: /1 values in its typed field for 1099511627776 elements/ },
  { name: 'a dim beyond 2^53', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: ['9007199254740993'], rawData: float32Bytes([1]) })), message: /invalid dims/ },
  { name: 'a negative dim', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [-4], rawData: float32Bytes([1]) })), message: /invalid dims \[-4\]/ },
  { name: 'dims whose product overflows', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: FLOAT, dims: [2 ** 30, 2 ** 30, 2 ** 30], rawData: float32Bytes([1]) })), message: /element count overflows/ },
  { name: 'an unknown data type', code: 'DELTAC_E_TENSOR_DATA', build: model(withInitializer({ dataType: 99, dims: [1, 4], rawData: float32Bytes([1, 2, 3, 4]) })), message: /unknown data type 99/ },
  { name: 'a string tensor with external data', code: 'DELTAC_E_TENSOR_DATA', build: external({ location: 'w.bin' }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), 'abcd'), [4], 8), message: /string tensor "w" cannot be stored as external data/ },
  // -- external data ---------------------------------------------------------------
  { name: 'an absolute external-data path', code: 'DELTAC_E_EXTERNAL_PATH', build: external({ location: '/etc/passwd' }), message: /"\/etc\/passwd", which is an absolute path/ },
  { name: 'an external-data path with ".."', code: 'DELTAC_E_EXTERNAL_PATH', build: external({ location: '../outside.bin' }), message: /contains "\.\."/ },
  { name: 'a Windows drive path', code: 'DELTAC_E_EXTERNAL_PATH', build: external({ location: 'C:\\weights.bin' }), message: /absolute path/ },
  {
    name: 'a symlink escaping the model folder',
    code: 'DELTAC_E_EXTERNAL_PATH',
    build: external({ location: 'w.bin' }, (d) => fs.symlinkSync(outsideFile, path.join(d, 'w.bin'))),
    message: /is a symlink that resolves to ".*\/outside\/secret\.bin", outside the model folder/,
  },
  {
    name: 'a symlinked subfolder escaping the model folder',
    code: 'DELTAC_E_EXTERNAL_PATH',
    build: external({ location: 'sub/secret.bin' }, (d) => fs.symlinkSync(outsideDir, path.join(d, 'sub'))),
    message: /resolves to ".*\/outside\/secret\.bin", outside the model folder/,
  },
  {
    name: 'an external-data offset past the end of the file',
    code: 'DELTAC_E_EXTERNAL_RANGE',
    build: external({ location: 'w.bin', offset: '4096', length: '16' }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64))),
    message: /reads bytes \[4096, 4112\) of "w.bin", which has only 64 bytes/,
  },
  {
    name: 'an external-data length past the end of the file',
    code: 'DELTAC_E_EXTERNAL_RANGE',
    build: external({ location: 'w.bin', offset: '56', length: '16' }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64))),
    message: /\[56, 72\)/,
  },
  {
    name: 'a huge external-data length (2^42 bytes, dims [2^40])',
    code: 'DELTAC_E_EXTERNAL_RANGE',
    build: external({ location: 'w.bin', length: String(2 ** 42) }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64)), [2 ** 40]),
    message: /\[0, 4398046511104\)/,
  },
  { name: 'an external-data length that disagrees with the shape', code: 'DELTAC_E_TENSOR_DATA', build: external({ location: 'w.bin', length: '8' }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64))), message: /declares 8 bytes .* need 16/ },
  { name: 'an external-data offset that is not a number', code: 'DELTAC_E_TENSOR_DATA', build: external({ location: 'w.bin', offset: '-1' }, (d) => fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(64))), message: /invalid offset "-1"/ },
  { name: 'a missing external-data file', code: 'DELTAC_E_EXTERNAL_MISSING', build: external({ location: 'missing.bin' }), message: /"missing.bin" does not exist/ },
  { name: 'external data that is a folder', code: 'DELTAC_E_FILE_READ', build: external({ location: 'sub' }, (d) => fs.mkdirSync(path.join(d, 'sub'))), message: /"sub" .* is not a regular file/ },
  { name: 'external data that is a named pipe (would block)', code: 'DELTAC_E_FILE_READ', build: external({ location: 'pipe' }, (d) => makeFifo(path.join(d, 'pipe'))), message: /"pipe" .* is not a regular file/ },
  // -- graphs ---------------------------------------------------------------------
  {
    name: 'a cycle',
    code: 'DELTAC_E_GRAPH_CYCLE',
    build: model(tiny({ nodes: [{ opType: 'Add', input: ['x', 'b'], output: ['a'], name: 'first' }, identity('a', 'b', 'second'), identity('a', 'y')] })),
    message: /has a cycle/,
  },
  { name: 'two nodes defining one value', code: 'DELTAC_E_DUPLICATE_NAME', build: model(tiny({ nodes: [identity('x', 'y'), identity('x', 'y')] })), message: /"y" is defined twice/ },
  { name: 'a node output named like a graph input', code: 'DELTAC_E_DUPLICATE_NAME', build: model(tiny({ nodes: [identity('x', 'x'), identity('x', 'y')] })), message: /"x" is defined twice/ },
  { name: 'a graph input listed twice', code: 'DELTAC_E_DUPLICATE_NAME', build: model(tiny({ inputs: [x, x] })), message: /"x" is defined twice/ },
  {
    name: 'an initializer defined twice',
    code: 'DELTAC_E_DUPLICATE_NAME',
    build: model(tiny({ initializers: [0, 1].map(() => ({ name: 'w', dataType: FLOAT, dims: [1], rawData: float32Bytes([1]) })) })),
    message: /initializer "w" is defined twice/,
  },
  { name: 'a node reading an undefined value', code: 'DELTAC_E_UNDEFINED_VALUE', build: model(tiny({ nodes: [{ opType: 'Add', input: ['x', 'ghost'], output: ['y'], name: 'add' }] })), message: /Add node "add" reads "ghost", which no node, input or initializer defines/ },
  { name: 'a graph output naming nothing', code: 'DELTAC_E_UNDEFINED_VALUE', build: model(tiny({ outputs: [y, valueInfo('ghost', FLOAT, [1])] })), message: /graph output "ghost" is not defined/ },
  {
    name: 'a branch reading an undefined value',
    code: 'DELTAC_E_UNDEFINED_VALUE',
    build: model(
      tiny({
        inputs: [x, valueInfo('c', 9, [])],
        nodes: [
          {
            opType: 'If',
            input: ['c'],
            output: ['y'],
            attribute: ['then_branch', 'else_branch'].map((b) => ({
              name: b,
              type: 5,
              g: { name: b, node: [identity(b === 'then_branch' ? 'ghost' : 'x', `${b}_out`)], output: [{ name: `${b}_out` }] },
            })),
          },
        ],
      }),
    ),
    message: /reads "ghost"/,
  },
  // -- the model path itself --------------------------------------------------------
  { name: 'a missing model file', code: 'DELTAC_E_FILE_NOT_FOUND', build: (d) => path.join(d, 'nothing.onnx'), message: /does not exist/ },
  { name: 'a folder given as the model', code: 'DELTAC_E_FILE_READ', build: (d) => d, message: /is not a regular file/, cliCode: 'DELTAC_E_PIPELINE_FOLDER' },
];

describe('hostile ONNX files are refused with a stable code', () => {
  for (const c of CASES) {
    it(`${c.name} → ${c.code}`, async () => {
      const dir = freshDir();
      const file = c.build(dir);
      const m = measure(() => expectCode(() => loadModel(file), c.code));
      if (m.error) throw m.error;
      expect((m.result as Error).message).toMatch(c.message);
      // Refused up front: no huge allocation, no waiting on a pipe.
      expect(m.ms).toBeLessThan(2000);
      expect(m.rssGrowth).toBeLessThan(256 * 2 ** 20);
      await expectConvertFails(file, PIXART_WEIGHTS, path.join(dir, 'out'), c.cliCode ?? c.code);
    });
  }

  it('--debug adds the stack trace to the one-line error', async () => {
    const dir = freshDir();
    const file = model(tiny({ nodes: [{ opType: 'Add', input: ['x', 'ghost'], output: ['y'] }] }))(dir);
    const r = await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', path.join(dir, 'out.onnx'), '--debug');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^deltac convert: DELTAC_E_UNDEFINED_VALUE: .*"ghost"/);
    expect(r.err).toMatch(/\n\s+at .*load\.ts/);
  });

  it('names from the file cannot forge output lines or terminal escapes', async () => {
    const dir = freshDir();
    const evil = 'ghost\nDELTAC OK: converted\u001b[2J\u202e';
    const file = model(tiny({ nodes: [{ opType: 'Add', input: ['x', evil], output: ['y'] }] }))(dir);
    const r = await cli('convert', file, '--weights', PIXART_WEIGHTS, '-o', path.join(dir, 'out.onnx'));
    expectUserError(r, 'convert', 'DELTAC_E_UNDEFINED_VALUE');
    expect(r.err).toContain('reads "ghost\\nDELTAC OK: converted\\u001b[2J\\u202e"');
  });
});

describe('hostile graphs that load in bounded time and memory', () => {
  /** Loads (the verifier runs shape inference) and reports time, memory and the outcome. */
  function load(proto: ProtoObject) {
    const file = model(proto)(freshDir());
    return measure(() => loadModel(file));
  }

  it('a chain of Concats doubling a symbolic dim 60 times (the expression would have 2^60 terms)', () => {
    const nodes = Array.from({ length: 60 }, (_, i) => ({ opType: 'Concat', input: [i ? `c${i - 1}` : 'x', i ? `c${i - 1}` : 'x'], output: [`c${i}`], attribute: [{ name: 'axis', type: 2, i: 0 }] }));
    const r = load(modelProto({ inputs: [valueInfo('x', FLOAT, ['n'])], outputs: [{ name: 'c59' }], nodes }));
    expect(r.ms).toBeLessThan(2000);
    expect(r.error).toBeUndefined();
    const m = r.result as ReturnType<typeof loadModel>;
    const types = runInference(m).types;
    // Early dims stay symbolic; once the expression outgrows the bound the dim is unknown.
    expect(types.get(m.graph.lookup('c0')!)).toEqual({ kind: 'tensor', dtype: FLOAT, shape: ['n+n'] });
    expect(types.get(m.graph.lookup('c59')!)).toEqual({ kind: 'tensor', dtype: FLOAT, shape: [null] });
  });

  it('a chain of Concats doubling known shape contents 60 times', () => {
    const nodes: ProtoObject[] = [{ opType: 'Shape', input: ['x'], output: ['s'] }];
    for (let i = 0; i < 60; i++) nodes.push({ opType: 'Concat', input: [i ? `c${i - 1}` : 's', i ? `c${i - 1}` : 's'], output: [`c${i}`], attribute: [{ name: 'axis', type: 2, i: 0 }] });
    const r = load(modelProto({ inputs: [valueInfo('x', FLOAT, ['n', 3])], outputs: [{ name: 'c59' }], nodes }));
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThan(2000);
    expect(r.rssGrowth).toBeLessThan(256 * 2 ** 20);
  });

  it('a Reshape whose shape input is declared with 10^9 elements (a rank of 10^9)', () => {
    const r = load(
      modelProto({
        inputs: [valueInfo('x', FLOAT, [1]), valueInfo('s', INT64, [1e9])],
        outputs: [{ name: 'y' }],
        nodes: [{ opType: 'Reshape', input: ['x', 's'], output: ['y'] }],
      }),
    );
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThan(2000);
    expect(r.rssGrowth).toBeLessThan(256 * 2 ** 20);
  });

  it('a Slice of shape contents declared 2^40 long', () => {
    const r = load(
      modelProto({
        inputs: [valueInfo('x', FLOAT, [1, 2])],
        outputs: [{ name: 'y' }],
        valueInfo: [valueInfo('s', INT64, [2 ** 40])],
        initializers: [
          { name: 'st', dataType: INT64, dims: [1], int64Data: [0] },
          { name: 'en', dataType: INT64, dims: [1], int64Data: [2 ** 40] },
        ],
        nodes: [
          { opType: 'Shape', input: ['x'], output: ['s'] },
          { opType: 'Slice', input: ['s', 'st', 'en'], output: ['y'] },
        ],
      }),
    );
    // The declared [2^40] contradicts Shape's [2]: a type conflict (a warning: the model loads), found quickly.
    expect(r.ms).toBeLessThan(2000);
    expect(r.rssGrowth).toBeLessThan(256 * 2 ** 20);
    expect(r.error).toBeUndefined();
  });

  it('one value read by 200,000 input slots (the use-list check stays linear)', () => {
    const r = load(
      modelProto({
        inputs: [valueInfo('x', FLOAT, [1])],
        outputs: [{ name: 'y' }],
        nodes: [{ opType: 'Sum', input: Array(200_000).fill('x'), output: ['y'] }],
      }),
    );
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThan(5000);
  });

  it('a dim_param of 100,000 nested parentheses, evaluated with bindings', () => {
    const r = load(modelProto({ inputs: [valueInfo('x', FLOAT, [`${'('.repeat(100_000)}height${')'.repeat(100_000)}`])], outputs: [{ name: 'y' }], nodes: [identity('x', 'y')] }));
    expect(r.error).toBeUndefined();
    const m = r.result as ReturnType<typeof loadModel>;
    const inferred = measure(() => runInference(m, { bindings: { height: 64 } }));
    expect(inferred.error).toBeUndefined();
    expect(inferred.ms).toBeLessThan(2000);
  });
});
