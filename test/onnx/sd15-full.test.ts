/**
 * sd15-full: the full-size SD1.5 UNet graph with its 384 external-data files
 * (3.44 GB, synthesized with seeded random data and cached). Load it, save it
 * with one external-data file, and check the layout (4 KiB alignment of big
 * tensors), determinism (saving the reloaded model again gives identical bytes)
 * and the bytes of a sample of tensors. onnxruntime is not run here: the full
 * UNet is too slow for the test suite.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { printModel } from '../../src/ir/text/printer.js';
import { loadModel, loadModelWithReport } from '../../src/onnx/load.js';
import { type SaveResult, saveModel } from '../../src/onnx/save.js';
import { decodeFile } from '../helpers/onnx-proto.js';
import { CACHE_DIR, makeTempDir } from '../helpers/paths.js';
import { ensureSd15FullWeights, sd15FullExternalFiles } from '../helpers/synthesize-sd15-full.js';

const MiB = 2 ** 20;

/**
 * Compares two large files: sizes, then 64 windows of 256 KiB at seeded random
 * offsets plus the first and last window (a full compare would read 7 GB).
 * Returns the offset of the first differing window, or -1.
 */
function firstDifference(a: string, b: string): number {
  const size = fs.statSync(a).size;
  if (size !== fs.statSync(b).size) return 0;
  const window = 256 * 1024;
  const offsets = [0, Math.max(0, size - window)];
  let x = 0x2545f491;
  for (let i = 0; i < 64; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    offsets.push(Math.floor(((x >>> 0) / 2 ** 32) * Math.max(1, size - window)));
  }
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const ba = Buffer.alloc(window);
  const bb = Buffer.alloc(window);
  try {
    for (const pos of offsets) {
      const n = fs.readSync(fa, ba, 0, window, pos);
      fs.readSync(fb, bb, 0, n, pos);
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return pos;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  return -1;
}

/** Text with external locations and digests normalized: storage may change, the graph must not. */
function storageFree(text: string): string {
  return text.replace(/ = tensor<([^>]*)> (elided|external)\([^)]*\)/g, ' = tensor<$1> data');
}

function allTensors(m: Model): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, v] of m.graph.initializers) out.set(name, v.initializer!);
  for (const n of m.graph.nodes) {
    const t = n.getTensor('value');
    if (n.opType === 'Constant' && t) out.set(`${n.outputs[0]!.name} (Constant)`, t);
  }
  return out;
}

describe('sd15-full with synthesized external data', () => {
  // next to the cached weights rather than in /tmp (which may be a small tmpfs): 7 GB are written here
  const tmp = makeTempDir('.test-sd15-full-', CACHE_DIR);
  const dirA = path.join(tmp.dir, 'a');
  const dirB = path.join(tmp.dir, 'b');
  let source: string;
  let model: Model;
  let saved: SaveResult;
  let reloaded: Model;

  beforeAll(async () => {
    source = await ensureSd15FullWeights();
    fs.mkdirSync(dirA);
    fs.mkdirSync(dirB);
  }, 180_000);
  afterAll(tmp.cleanup);

  it('has its 384 external files, each of the size the graph declares', () => {
    const files = sd15FullExternalFiles();
    expect(files.length).toBe(384);
    for (const f of files) expect(fs.statSync(path.join(source, f.location)).size).toBe(f.bytes);
  });

  it('loads with every weight external and readable', () => {
    const report = loadModelWithReport(path.join(source, 'model.graph.onnx'));
    model = report.model;
    expect(report.diagnostics).toEqual([]);
    expect(report.externalFiles.length).toBe(384);
    const external = [...model.graph.initializers.values()].filter((v) => v.initializer!.isExternal);
    expect(external.length).toBe(384);
    const total = external.reduce((a, v) => a + v.initializer!.byteLength, 0);
    expect(total).toBe(3437163520);
    expect(model.graph.inputs.map((v) => v.name)).toEqual(['sample', 'timestep', 'encoder_hidden_states']);
  });

  it('saves to one external-data file with big tensors 4 KiB-aligned', () => {
    saved = saveModel(model, path.join(dirA, 'model.onnx'), { externalData: true });
    expect(saved.externalDataPath).toBe(path.join(dirA, 'model.onnx.data'));
    expect(fs.statSync(saved.externalDataPath!).size).toBe(saved.externalDataBytes);
    expect(saved.modelBytes).toBe(fs.statSync(path.join(dirA, 'model.onnx')).size);
    expect(saved.modelBytes).toBeLessThan(4 * MiB);
    expect(fs.readdirSync(dirA).sort()).toEqual(['model.onnx', 'model.onnx.data']);

    const proto = decodeFile(path.join(dirA, 'model.onnx'));
    const ranges: { offset: number; length: number; name: string }[] = [];
    const visit = (t: { name?: string; externalData?: { key: string; value: string }[] }) => {
      if (!t.externalData) return;
      const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
      expect(kv.location).toBe('model.onnx.data');
      ranges.push({ offset: Number(kv.offset), length: Number(kv.length), name: t.name ?? '' });
    };
    proto.graph.initializer.forEach(visit);
    for (const n of proto.graph.node) for (const a of n.attribute ?? []) if (a.t) visit(a.t);
    expect(ranges.length).toBe(saved.externalTensors);
    let big = 0;
    let end = 0;
    for (const r of ranges) {
      if (r.length >= MiB) {
        expect(r.offset % 4096, r.name).toBe(0);
        big++;
      } else {
        expect(r.offset % 64, r.name).toBe(0);
      }
      expect(r.offset).toBeGreaterThanOrEqual(end); // in order, no overlap
      end = r.offset + r.length;
    }
    expect(big).toBe(227);
    expect(end).toBe(saved.externalDataBytes);
  });

  it('loads the saved model back with the same graph and the same tensor bytes', () => {
    reloaded = loadModel(path.join(dirA, 'model.onnx'));
    expect(reloaded.graph.nodes.length).toBe(model.graph.nodes.length);
    expect(reloaded.graph.initializers.size).toBe(model.graph.initializers.size);
    expect(storageFree(printModel(reloaded))).toBe(storageFree(printModel(model)));
    const before = allTensors(model);
    const after = allTensors(reloaded);
    expect([...after.keys()]).toEqual([...before.keys()]);
    // a sample: every 25th tensor plus the largest and the smallest external ones
    const names = [...before.keys()];
    const sample = new Set(names.filter((_, i) => i % 25 === 0));
    const external = names.filter((n) => before.get(n)!.isExternal).sort((x, y) => before.get(x)!.byteLength - before.get(y)!.byteLength);
    sample.add(external[0]!);
    sample.add(external[external.length - 1]!);
    for (const name of sample) {
      const a = before.get(name)!.bytes();
      const b = after.get(name)!.bytes();
      expect(b.length, name).toBe(a.length);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), name).toBe(0);
    }
    // the synthesized weights are finite numbers, not noise bits
    const values = after.get(external[Math.floor(external.length / 2)]!)!.toFloat32();
    expect(values.length).toBeGreaterThan(1000);
    expect(values.every((v) => Number.isFinite(v) && Math.abs(v) <= 1.1)).toBe(true);
  });

  it('is deterministic: saving the reloaded model gives identical files and text', () => {
    const again = saveModel(reloaded, path.join(dirB, 'model.onnx'), { externalData: true });
    expect(again.externalDataBytes).toBe(saved.externalDataBytes);
    expect(Buffer.compare(fs.readFileSync(path.join(dirA, 'model.onnx')), fs.readFileSync(path.join(dirB, 'model.onnx')))).toBe(0);
    expect(firstDifference(path.join(dirA, 'model.onnx.data'), path.join(dirB, 'model.onnx.data'))).toBe(-1);
    const third = loadModel(path.join(dirB, 'model.onnx'));
    expect(printModel(third)).toBe(printModel(reloaded));
  });
});
