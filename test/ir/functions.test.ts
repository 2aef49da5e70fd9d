/**
 * Model-local functions (FunctionProto) in the IR: loaded into LocalFunction (a body
 * graph, attributes with their defaults, opsets, value_info), saved back unchanged,
 * printed as textual IR and parsed back, verified, and inferred through at each call.
 *
 * test/fixtures/functions/functions.onnx was written by onnx's own parser and checker
 * (make-functions-model.py, onnx 1.23): overloads, a function calling another, attribute
 * references with and without defaults, an If inside a body, value_info, doc and metadata.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFunction } from '../../src/ir/function.js';
import { MAX_CALL_DEPTH, MAX_FUNCTION_NODES } from '../../src/ir/shape-inference/function-inference.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printFunction, printModel } from '../../src/ir/text/printer.js';
import { formatType } from '../../src/ir/types.js';
import { verifyModel } from '../../src/ir/verify.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, serializeModel } from '../../src/onnx/save.js';
import { ModelProtoType } from '../../src/onnx/schema.js';
import { firstDifference, protoObject } from '../conformance/proto-compare.js';
import { FLOAT, INT64, type ProtoObject, encodeModel, modelProto, valueInfo } from '../helpers/onnx-proto.js';
import { makeTempDir } from '../helpers/paths.js';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/functions/functions.onnx');
const tmp = makeTempDir('deltac-functions-');
afterAll(tmp.cleanup);

const typeOf = (m: ReturnType<typeof loadModel>, env: ReturnType<typeof runInference>, name: string) => {
  const v = [...m.graph.allNodes()].flatMap((n) => n.outputs).find((o) => o.name === name) ?? m.graph.outputs.find((o) => o.name === name);
  return formatType(env.types.get(v!) ?? null);
};

/** Each FunctionProto of a serialized model, re-encoded on its own (bytes of the message). */
function functionBytes(bytes: Uint8Array): Buffer[] {
  const FunctionProto = ModelProtoType.lookupType('onnx.FunctionProto');
  const m = ModelProtoType.decode(bytes) as unknown as { functions: unknown[] };
  return m.functions.map((f) => Buffer.from(FunctionProto.encode(f as never).finish()));
}

/**
 * A model as deltac itself writes them (no explicit empty strings), with every field a
 * FunctionProto has: overload, attribute names and defaults (int, floats, tensor),
 * references, value_info with doc and metadata, doc, metadata, an If with a captured value.
 */
function richModel(): ProtoObject {
  return modelProto({
    irVersion: 10,
    opset: 18,
    extra: {
      opsetImport: [{ version: 18 }, { domain: 'pkg', version: 1 }],
      functions: [
        {
          name: 'Affine',
          domain: 'pkg',
          overload: 'v1',
          input: ['a', 'flag'],
          output: ['y', 'shape'],
          attribute: ['axis'],
          attributeProto: [
            { name: 'alpha', type: 1, f: 0.5 },
            { name: 'pads', type: 7, ints: [1, 2] },
            { name: 'bias', type: 4, t: { dims: [1], dataType: FLOAT, rawData: Buffer.from(new Float32Array([0.25]).buffer) } },
          ],
          node: [
            { opType: 'Constant', output: ['k'], attribute: [{ name: 'value_float', refAttrName: 'alpha', type: 1 }] },
            { opType: 'Mul', input: ['a', 'k'], output: ['t'], name: 'scale', metadataProps: [{ key: 'm', value: '1' }] },
            { opType: 'Flatten', input: ['t'], output: ['f'], attribute: [{ name: 'axis', refAttrName: 'axis', type: 2 }] },
            {
              opType: 'If',
              input: ['flag'],
              output: ['y'],
              attribute: [
                { name: 'then_branch', type: 5, g: { name: 'then', node: [{ opType: 'Identity', input: ['f'], output: ['r1'] }], output: [{ name: 'r1' }] } },
                { name: 'else_branch', type: 5, g: { name: 'else', node: [{ opType: 'Neg', input: ['f'], output: ['r2'] }], output: [{ name: 'r2' }] } },
              ],
            },
            { opType: 'Shape', input: ['y'], output: ['shape'] },
          ],
          docString: 'y = flatten(a · alpha, axis)',
          opsetImport: [{ version: 18 }],
          valueInfo: [{ ...valueInfo('t', FLOAT, ['N', 3, 4]), docString: 't doc', metadataProps: [{ key: 'vi', value: '2' }] }],
          metadataProps: [{ key: 'origin', value: 'test' }],
        },
      ],
    },
    inputs: [valueInfo('x', FLOAT, ['N', 3, 4]), valueInfo('c', 9, [])],
    outputs: [valueInfo('out', FLOAT, ['N', 12]), { name: 'reshaped' }],
    nodes: [
      { opType: 'Affine', domain: 'pkg', overload: 'v1', input: ['x', 'c'], output: ['out', 's'], name: 'call', attribute: [{ name: 'axis', type: 2, i: 1 }] },
      { opType: 'Affine', domain: 'pkg', overload: 'v1', input: ['x', 'c'], output: ['out2', 's2'], name: 'call2', attribute: [{ name: 'axis', type: 2, i: 2 }] },
      { opType: 'Reshape', input: ['x', 's'], output: ['reshaped'], name: 'reshape' },
    ],
  });
}

describe('local functions: load and save', () => {
  it('loads the onnx-written fixture into LocalFunctions', () => {
    const m = loadModel(FIXTURE);
    expect(m.functions.map((f) => f.label)).toEqual(['pkg.fn.ScaleAdd', 'pkg.fn.Twice', 'pkg.fn.Twice:v2', 'pkg.fn.Pick']);
    const [scaleAdd, , twiceV2, pick] = m.functions as [LocalFunction, LocalFunction, LocalFunction, LocalFunction];
    expect(scaleAdd.inputs.map((v) => v.name)).toEqual(['a', 'b']);
    expect(scaleAdd.outputs.map((v) => v.name)).toEqual(['c']);
    expect(scaleAdd.attributes).toEqual([{ name: 'beta' }, { name: 'alpha', default: { type: 'float', value: 2 } }]);
    expect(scaleAdd.body.nodes[0]!.attr('value_float')).toEqual({ type: 'ref', ref: 'alpha', of: 'float' });
    expect([...scaleAdd.opsetImports]).toEqual([['', 18]]);
    expect(twiceV2.docString).toBe('doubles through the plain Twice');
    expect(twiceV2.metadataProps).toEqual([['origin', 'make-functions-model.py']]);
    expect(twiceV2.valueInfo.map((v) => `${v.name}: ${formatType(v.type)}`)).toEqual(['t: f32[B,4]']);
    expect(m.graph.nodes.map((n) => m.calledFunction(n)?.label)).toEqual(['pkg.fn.ScaleAdd', 'pkg.fn.Twice:v2', 'pkg.fn.Twice', 'pkg.fn.Pick']);
    // the If's branches live in the body and read its values
    const ifNode = pick.body.nodes.find((n) => n.opType === 'If')!;
    expect(ifNode.subgraphs()[0]!.nodes[0]!.attr('axis')).toEqual({ type: 'ref', ref: 'axis', of: 'int' });
    expect(verifyModel(m).filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('saves the onnx-written functions back as the same messages (its explicit empty domains aside, the same bytes)', () => {
    const bytes = fs.readFileSync(FIXTURE);
    const saved = serializeModel(loadModel(FIXTURE));
    expect(firstDifference(protoObject(bytes), protoObject(saved))).toBeUndefined();
    // onnx's parser writes `domain: ""` on every node, which deltac (like protobuf's own
    // field-by-field equality) counts as absent; once saved, a second round trip is byte-exact
    const file = path.join(tmp.dir, 'fixture.resaved.onnx');
    fs.writeFileSync(file, saved);
    expect(Buffer.from(serializeModel(loadModel(file))).equals(Buffer.from(saved))).toBe(true);
  });

  it('keeps every field of a function byte for byte: overload, attributes and defaults, references, value_info, doc, metadata, nested graphs', () => {
    const file = path.join(tmp.dir, 'rich.onnx');
    const bytes = encodeModel(richModel());
    fs.writeFileSync(file, bytes);
    const m = loadModel(file);
    const f = m.functions[0]!;
    expect(f.label).toBe('pkg.Affine:v1');
    expect(f.attributes.map((a) => `${a.name}${a.default ? `=${a.default.type}` : ''}`)).toEqual(['axis', 'alpha=float', 'pads=ints', 'bias=tensor']);
    expect(f.valueInfo.map((v) => [v.name, v.docString, v.metadataProps])).toEqual([['t', 't doc', [['vi', '2']]]]);
    const out = path.join(tmp.dir, 'rich.saved.onnx');
    saveModel(m, out);
    expect(fs.readFileSync(out).equals(Buffer.from(bytes))).toBe(true);
    expect(functionBytes(fs.readFileSync(out))).toEqual(functionBytes(bytes));
  });

  it('a function body is its own scope: its names may repeat the main graph\'s', () => {
    const proto = richModel();
    proto.graph.node[0].output = ['t', 's']; // the body defines a "t" too
    proto.graph.node[2].input = ['x', 's'];
    proto.graph.output[0].name = 't';
    const m = loadModel(writeProto('scope.onnx', proto));
    expect(m.graph.nodes[0]!.outputs[0]!.name).toBe('t');
    expect(m.functions[0]!.body.lookup('t')).toBeDefined();
    expect(verifyModel(m).filter((d) => d.severity === 'error')).toEqual([]);
  });
});

function writeProto(name: string, proto: ProtoObject): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, encodeModel(proto));
  return file;
}

describe('local functions: verify', () => {
  it('refuses a body that reads an undefined value, naming the function', () => {
    const proto = richModel();
    proto.functions[0].node[1].input = ['a', 'nowhere'];
    expect(() => loadModel(writeProto('undefined.onnx', proto))).toThrow(/DELTAC_E_UNDEFINED_VALUE|reads "nowhere"/);
  });

  it('refuses a function output nothing defines', () => {
    const proto = richModel();
    proto.functions[0].output = ['y', 'missing'];
    expect(() => loadModel(writeProto('output.onnx', proto))).toThrow(/function pkg\.Affine:v1: output "missing" is not defined/);
  });

  it('reports a function defined twice and functions that call themselves', () => {
    const twice = richModel();
    twice.functions.push({ ...twice.functions[0] });
    expect(() => loadModel(writeProto('twice.onnx', twice))).toThrow(/DELTAC_E_DUPLICATE_NAME|function pkg\.Affine:v1 is defined twice/);

    const cycle = modelProto({
      opset: 18,
      extra: {
        opsetImport: [{ version: 18 }, { domain: 'pkg', version: 1 }],
        functions: [
          { name: 'A', domain: 'pkg', input: ['x'], output: ['y'], node: [{ opType: 'B', domain: 'pkg', input: ['x'], output: ['y'] }], opsetImport: [{ domain: 'pkg', version: 1 }] },
          { name: 'B', domain: 'pkg', input: ['x'], output: ['y'], node: [{ opType: 'A', domain: 'pkg', input: ['x'], output: ['y'] }], opsetImport: [{ domain: 'pkg', version: 1 }] },
        ],
      },
      inputs: [valueInfo('x', FLOAT, [2])],
      outputs: [valueInfo('y', FLOAT, [2])],
      nodes: [{ opType: 'A', domain: 'pkg', input: ['x'], output: ['y'] }],
    });
    expect(() => loadModel(writeProto('cycle.onnx', cycle))).toThrow(/local functions call themselves: pkg\.A → pkg\.B → pkg\.A/);
  });
});

describe('local functions: textual IR', () => {
  it('prints functions after the graph and parses them back to the same text and the same functions', () => {
    for (const file of [FIXTURE, writeProto('rich-text.onnx', richModel())]) {
      const m = loadModel(file);
      const text = printModel(m);
      const back = parseModel(text);
      expect(printModel(back)).toBe(text);
      expect(back.functions.map((f) => printFunction(f))).toEqual(m.functions.map((f) => printFunction(f)));
      // and to the same protobuf functions (names, attributes, defaults, references, value_info
      // types; the text keeps no value_info docs and no tensor encoding, the fixture's bool
      // Constant is int32_data in the file and raw bytes once parsed)
      if (file === FIXTURE) continue;
      const a = protoObject(serializeModel(m)) as { functions: unknown[] };
      const b = protoObject(serializeModel(back)) as { functions: { valueInfo?: { docString?: string; metadataProps?: unknown }[] }[] };
      for (const f of b.functions) for (const vi of f.valueInfo ?? []) Object.assign(vi, { docString: undefined, metadataProps: undefined });
      for (const f of a.functions as typeof b.functions) for (const vi of f.valueInfo ?? []) Object.assign(vi, { docString: undefined, metadataProps: undefined });
      expect(firstDifference(JSON.parse(JSON.stringify(a.functions)), JSON.parse(JSON.stringify(b.functions)))).toBeUndefined();
    }
  });

  it('spells a function with its header, references as ref("name": type), and overloads on calls', () => {
    const text = printModel(loadModel(FIXTURE));
    expect(text).toContain('%y = pkg.fn.Twice(%h) : f32[B,4] overload("v2")');
    expect(text).toContain('function {domain = "pkg.fn", opset_import = {"" = 18}, attributes = {beta, alpha = 2.0}}\ngraph @ScaleAdd(%a, %b) -> (%c) {');
    expect(text).toContain('%k = Constant() {value_float = ref("alpha": float)}');
    expect(text).toContain('%t = pkg.fn.Twice(%a) : f32[B,4]'); // value_info gives %t its type
  });

  it('refuses initializers in a function body and unknown reference types', () => {
    const head = 'model {ir_version = 10, opset_import = {"" = 18}}\ngraph @g(%x: f32[2]) -> (%x: f32[2]) {\n}\n';
    expect(() => parseModel(`${head}function {domain = "p", opset_import = {"" = 18}}\ngraph @F(%a) -> (%b) {\n  @w: f32[1] = tensor<f32[1]> [1.0]\n  %b = Mul(%a, @w)\n}\n`)).toThrow(
      /<text>:6: a function body has no initializers/,
    );
    expect(() => parseModel(`${head}function {domain = "p", opset_import = {"" = 18}}\ngraph @F(%a) -> (%b) {\n  %b = Flatten(%a) {axis = ref("axis": number)}\n}\n`)).toThrow(
      /unknown attribute type "number"/,
    );
  });
});

describe('local functions: shape inference through calls', () => {
  it('infers each call through the body with its input types and attribute values', () => {
    const m = loadModel(writeProto('infer.onnx', richModel()));
    const env = runInference(m);
    // Flatten's axis is a reference: 1 in the first call, 2 in the second
    expect(typeOf(m, env, 'out')).toBe('f32[N,12]');
    expect(typeOf(m, env, 'out2')).toBe('f32[3*N,4]');
    // Shape's contents come out of the call: the Reshape after it knows its shape
    expect(typeOf(m, env, 's')).toBe('i64[2]');
    expect(typeOf(m, env, 'reshaped')).toBe('f32[N,12]');
    // the body's nodes have their references back (inference bound them only while it ran)
    const f = m.functions[0]!;
    expect(f.body.nodes[2]!.attr('axis')).toEqual({ type: 'ref', ref: 'axis', of: 'int' });
    expect([...f.body.nodes[2]!.attributes.keys()]).toEqual(['axis']);
  });

  it('infers the onnx-written fixture, a function calling a function and a reference inside an If', () => {
    const m = loadModel(FIXTURE);
    const env = runInference(m);
    for (const name of ['h', 'y', 'z', 's']) expect(typeOf(m, env, name), name).toBe('f32[B,4]');
  });

  /** f0 = Identity; f_k calls f_{k-1} twice (2^depth calls if nothing were shared). */
  function chain(depth: number, fanOut: number): ProtoObject {
    const functions: ProtoObject[] = [{ name: 'F0', domain: 'pkg', input: ['x'], output: ['y'], node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], opsetImport: [{ version: 18 }] }];
    for (let k = 1; k <= depth; k++) {
      const node = Array.from({ length: fanOut }, (_, i) => ({ opType: `F${k - 1}`, domain: 'pkg', input: [i ? `t${i - 1}` : 'x'], output: [i === fanOut - 1 ? 'y' : `t${i}`] }));
      functions.push({ name: `F${k}`, domain: 'pkg', input: ['x'], output: ['y'], node, opsetImport: [{ version: 18 }, { domain: 'pkg', version: 1 }] });
    }
    return modelProto({
      opset: 18,
      extra: { opsetImport: [{ version: 18 }, { domain: 'pkg', version: 1 }], functions },
      inputs: [valueInfo('x', FLOAT, ['B', 7])],
      outputs: [{ name: 'y' }],
      nodes: [{ opType: `F${depth}`, domain: 'pkg', input: ['x'], output: ['y'] }],
    });
  }

  it('bounds the work: nested calls share one inference per signature, and nesting deeper than the limit stays unknown', () => {
    // 4^10 leaf calls if every call were inferred on its own: far past the node budget, so
    // the result is known only because calls with the same signature share one inference
    const wide = loadModel(writeProto('wide.onnx', chain(10, 4)));
    const t0 = performance.now();
    const env = runInference(wide);
    expect(typeOf(wide, env, 'y')).toBe('f32[B,7]');
    expect(performance.now() - t0).toBeLessThan(2000);
    const deep = loadModel(writeProto('deep.onnx', chain(MAX_CALL_DEPTH + 2, 1)));
    expect(typeOf(deep, runInference(deep), 'y')).toBe('?');
    const shallow = loadModel(writeProto('shallow.onnx', chain(MAX_CALL_DEPTH - 2, 1)));
    expect(typeOf(shallow, runInference(shallow), 'y')).toBe('f32[B,7]');
  });

  it('stops inferring bodies past the node budget (hostile files: many distinct calls of a big body)', () => {
    const bodyNodes = 2000;
    const calls = Math.ceil(MAX_FUNCTION_NODES / bodyNodes) + 20;
    const node = Array.from({ length: bodyNodes }, (_, i) => ({ opType: 'Relu', input: [i ? `t${i - 1}` : 'x'], output: [i === bodyNodes - 1 ? 'y' : `t${i}`] }));
    // every call reads a tensor of a different shape (a Reshape to [k, 7]), so no inference is shared
    const nodes: ProtoObject[] = [];
    const initializers: ProtoObject[] = [];
    for (let k = 1; k <= calls; k++) {
      initializers.push({ name: `shape${k}`, dataType: INT64, dims: [2], int64Data: [k, 7] });
      nodes.push({ opType: 'Reshape', input: ['x', `shape${k}`], output: [`r${k}`] });
      nodes.push({ opType: 'Big', domain: 'pkg', input: [`r${k}`], output: [`y${k}`] });
    }
    const proto = modelProto({
      opset: 18,
      extra: { opsetImport: [{ version: 18 }, { domain: 'pkg', version: 1 }], functions: [{ name: 'Big', domain: 'pkg', input: ['x'], output: ['y'], node, opsetImport: [{ version: 18 }] }] },
      inputs: [valueInfo('x', FLOAT, ['N'])],
      outputs: [{ name: `y${calls}` }],
      initializers,
      nodes,
    });
    const m = loadModel(writeProto('budget.onnx', proto));
    const t0 = performance.now();
    const env = runInference(m);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(typeOf(m, env, 'y1')).toBe('f32[1,7]');
    expect(typeOf(m, env, `y${calls}`)).toBe('?');
  });
});
