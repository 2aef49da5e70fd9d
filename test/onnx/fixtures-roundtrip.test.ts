/**
 * Round trip of the shared fixture models: load → save reproduces the file byte
 * for byte, keeps every node and initializer, prints the same textual IR, and
 * onnxruntime computes bit-identical outputs from the saved model (also when the
 * weights are moved to an external-data file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/ir/model.js';
import { parseModel } from '../../src/ir/text/build.js';
import { printModel } from '../../src/ir/text/printer.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { ModelProtoType } from '../../src/onnx/schema.js';
import { readNpy } from '../../src/runtime/npy.js';
import { type Feeds, OrtModel, type Outputs, compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-fixtures-');
afterAll(tmp.cleanup);

/** Node and initializer counts straight from the protobuf, independent of the IR. */
function protoCounts(file: string): { nodes: number; initializers: number; constants: number } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const p = ModelProtoType.decode(fs.readFileSync(file)) as any;
  return {
    nodes: p.graph.node.length,
    initializers: p.graph.initializer.length,
    constants: p.graph.node.filter((n: { opType: string }) => n.opType === 'Constant').length,
  };
}

function irCounts(m: Model): { nodes: number; initializers: number; constants: number } {
  return {
    nodes: m.graph.nodes.length,
    initializers: m.graph.initializers.size,
    constants: m.graph.nodes.filter((n) => n.opType === 'Constant').length,
  };
}

async function runAll(file: string, inputs: Map<string, Feeds>): Promise<Map<string, Outputs>> {
  const session = await OrtModel.load(file);
  const out = new Map<string, Outputs>();
  try {
    for (const [k, feeds] of inputs) out.set(k, await session.run(feeds));
  } finally {
    await session.release();
  }
  return out;
}

function expectBitIdentical(a: Map<string, Outputs>, b: Map<string, Outputs>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, outs] of a) {
    const other = b.get(k)!;
    expect(Object.keys(other)).toEqual(Object.keys(outs));
    for (const [name, o] of Object.entries(outs)) {
      expect(other[name]!.dims).toEqual(o.dims);
      // compare the bits: NaN-safe and exact
      const x = new Uint32Array(o.data.buffer, o.data.byteOffset, o.data.length);
      const y = new Uint32Array(other[name]!.data.buffer, other[name]!.data.byteOffset, other[name]!.data.length);
      expect(y.length).toBe(x.length);
      expect(Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength))).toBe(0);
    }
  }
}

const FIXTURES: { name: string; inputs: string[]; nodes: number; initializers: number }[] = [
  { name: 'sd15-mini', inputs: ['sample', 'timestep', 'encoder_hidden_states'], nodes: 4498, initializers: 478 },
  { name: 'pixart-mini', inputs: ['hidden_states', 'encoder_hidden_states', 'timestep'], nodes: 1090, initializers: 99 },
];

for (const fx of FIXTURES) {
  describe(fx.name, () => {
    const original = modelPath(fx.name);
    const dir = path.join(tmp.dir, fx.name);
    fs.mkdirSync(dir, { recursive: true });
    const saved = path.join(dir, 'model.onnx');
    const savedExternal = path.join(dir, 'external.onnx');
    const inputs = readInputFolder(path.dirname(original));
    let model: Model;

    it('loads with the node and initializer counts of the file', () => {
      model = loadModel(original);
      const counts = protoCounts(original);
      expect(irCounts(model)).toEqual(counts);
      expect(counts.nodes).toBe(fx.nodes);
      expect(counts.initializers).toBe(fx.initializers);
      expect(model.graph.inputs.map((v) => v.name)).toEqual(fx.inputs);
      expect(model.opset()).toBe(17);
    });

    it('saves a byte-identical file', () => {
      const r = saveModel(model, saved);
      expect(r.externalDataPath).toBeUndefined();
      expect(r.modelBytes).toBe(fs.statSync(original).size);
      expect(Buffer.compare(fs.readFileSync(saved), fs.readFileSync(original))).toBe(0);
    });

    it('keeps counts and textual IR through load → save → load, and the text parses back to itself', () => {
      const again = loadModel(saved);
      expect(irCounts(again)).toEqual(irCounts(model));
      const text = printModel(model);
      expect(printModel(again)).toBe(text);
      expect(printModel(parseModel(text))).toBe(text);
    });

    it('saves with external data that loads back with the same tensors', () => {
      const r = saveModel(model, savedExternal, { externalData: true });
      expect(r.externalDataPath).toBe(path.join(dir, 'external.onnx.data'));
      expect(r.externalTensors).toBeGreaterThan(0);
      expect(r.modelBytes).toBeLessThan(fs.statSync(original).size);
      const back = loadModel(savedExternal);
      expect(irCounts(back)).toEqual(irCounts(model));
      const strip = (t: string) => t.replace(/ = tensor<([^>]*)> (elided|external)\([^)]*\)/g, ' = tensor<$1> data');
      expect(strip(printModel(back))).toBe(strip(printModel(model)));
      let checked = 0;
      for (const [name, v] of model.graph.initializers) {
        const b = back.graph.initializers.get(name)!.initializer!;
        if (b.storage.kind !== 'external') continue;
        expect(Buffer.compare(Buffer.from(b.bytes()), Buffer.from(v.initializer!.bytes()))).toBe(0);
        checked++;
      }
      expect(checked).toBe(r.externalTensors - countExternalConstants(back));
    });

    it('runs in onnxruntime with bit-identical outputs before and after saving (inline and external)', async () => {
      expect(inputs.size).toBeGreaterThan(0);
      const before = await runAll(original, inputs);
      const after = await runAll(saved, inputs);
      const afterExternal = await runAll(savedExternal, inputs);
      expectBitIdentical(before, after);
      expectBitIdentical(before, afterExternal);
      // and the fixtures' reference outputs are what onnxruntime computes (the inputs were fed right)
      for (const [k, outs] of before) {
        const ref = readNpy(path.join(path.dirname(original), `out${k.slice(2)}.attn.npy`));
        const out = Object.values(outs)[0]!;
        expect(out.dims).toEqual(ref.shape);
        expect(compareArrays(out.data, ref.data as Float32Array).rel).toBeLessThan(1e-5);
      }
    });
  });
}

function countExternalConstants(m: Model): number {
  let n = 0;
  for (const node of m.graph.nodes) {
    const t = node.getTensor('value');
    if (node.opType === 'Constant' && t?.storage.kind === 'external') n++;
  }
  return n;
}
