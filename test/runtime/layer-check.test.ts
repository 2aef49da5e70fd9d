/**
 * The per-layer check fails, naming the layer, when a saved conversion is broken the
 * way a faulty rewrite, packing or write would break it: each case converts a shared
 * model, saves it, mutates ONE layer of the saved file and checks that file. Nodes
 * outside the layers are compared with the original, and the check reads only the
 * layers' weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { DataType } from '../../src/ir/dtype.js';
import { DeltacError } from '../../src/ir/errors.js';
import type { Model } from '../../src/ir/model.js';
import type { Node } from '../../src/ir/node.js';
import { Tensor } from '../../src/ir/tensor.js';
import { FileByteSource } from '../../src/onnx/external-data.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { readProvenance } from '../../src/passes/delta-conv/provenance.js';
import { checkLayers } from '../../src/runtime/layer-check.js';
import { cutLayerRegion } from '../../src/runtime/layer-region.js';
import { type GraphSnapshot, snapshotGraph } from '../../src/runtime/outside-nodes.js';
import { expectRejection } from '../helpers/cli.js';
import { makeTempDir, modelPath } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-layer-check-');
afterAll(tmp.cleanup);

interface Converted {
  name: string;
  weights: string;
  /** The original's structure, taken before converting (as `deltac convert` does). */
  before: GraphSnapshot;
  saved: string;
}

function convertAndSave(name: string, options: { externalData?: boolean } = {}): Converted {
  const weights = modelPath(name, 'delta.safetensors');
  const model = loadModel(modelPath(name));
  const before = snapshotGraph(model);
  convert(model, { weights });
  const saved = path.join(tmp.dir, `${name}${options.externalData ? '-ext' : ''}.onnx`);
  saveModel(model, saved, { externalData: options.externalData ?? false });
  return { name, weights, before, saved };
}

let sd15: Converted;
let pixart: Converted;
beforeAll(() => {
  sd15 = convertAndSave('sd15-mini');
  pixart = convertAndSave('pixart-mini');
});

let counter = 0;
/** Loads the saved conversion, lets `mutate` break layer `layer` (its region's nodes given), saves the result. */
function mutated(c: Converted, layer: number, mutate: (model: Model, nodes: Node[], layerName: string) => void): { file: string; layer: string } {
  const model = loadModel(c.saved);
  const provenance = readProvenance(model)!;
  const region = cutLayerRegion(model, provenance[layer]!);
  mutate(model, region.nodes, region.layer.modulePath);
  model.graph.topologicalSort();
  const file = path.join(tmp.dir, `mutated-${counter++}.onnx`);
  saveModel(model, file);
  return { file, layer: region.layer.modulePath };
}

const expectFailure = (p: Promise<unknown>): Promise<DeltacError> => expectRejection(p, 'DELTAC_E_CHECK_FAILED');

const initializerEnding = (nodes: Node[], suffix: string) => nodes.flatMap((n) => n.inputs).find((v) => v?.initializer && v.name.endsWith(suffix))!;

describe('a converted model passes', () => {
  it('sd15-mini: 16 layers at 1×4×4 and 2×3×5, weights equal to the checkpoint, the rest as in the original', async () => {
    const r = await checkLayers(sd15.before, sd15.saved, { weights: sd15.weights });
    expect(r.layers).toHaveLength(16);
    for (const l of r.layers) {
      expect(l.sizes).toEqual(['1×4×4', '2×3×5']);
      expect(l.error).toBeGreaterThan(0); // really compared: float32 sums in another order
      expect(l.error).toBeLessThan(1e-5);
      expect(l.weightError).toBeLessThan(5e-7);
    }
    expect(r.outside).toMatchObject({ nodes: 3362, initializers: 398, unreadable: 0 });
    // one onnxruntime session per region structure, the weights fed as inputs: 16 layers of 2 widths, 3 sessions
    const widths = new Set(readProvenance(loadModel(sd15.saved))!.map((l) => l.channels));
    expect(r.sessions).toBeGreaterThanOrEqual(widths.size);
    expect(r.sessions).toBe(3);
    // the original may be given as its file too
    const again = await checkLayers(modelPath('sd15-mini'), sd15.saved, { weights: sd15.weights });
    expect(again.outside).toEqual(r.outside);
  });

  it('pixart-mini: static 8×6 tokens, so its own size only (batch 2)', async () => {
    const r = await checkLayers(pixart.before, pixart.saved, { weights: pixart.weights });
    expect(r.layers.map((l) => [l.sizes, l.staticHW])).toEqual(Array(4).fill([['2×8×6'], [8, 6]]));
    expect(Math.max(...r.layers.map((l) => l.error!))).toBeLessThan(1e-5);
  });
});

describe('the per-layer check fails, naming the layer', () => {
  it('a Reshape constant of the wrong length in one layer', async () => {
    const m = mutated(sd15, 5, (model, nodes) => {
      const reshape = nodes.find((n) => n.opType === 'Reshape' && n.inputs[1]?.initializer?.dtype === DataType.INT64)!;
      const dims = reshape.inputs[1]!.initializer!.toNumbers();
      expect(dims).toHaveLength(3); // [0, S·Ci/2 + 1, -1]: the gates, flattened
      reshape.setInput(1, model.graph.addInitializer('wrong_length_shape', Tensor.fromInt64([...dims, 1])));
    });
    expect(m.layer).toBe('down_blocks.2.attentions.1.transformer_blocks.0.attn1');
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(/^layer down_blocks\.2\.attentions\.1\.transformer_blocks\.0\.attn1: onnxruntime cannot (load|run) its region/);
    expect(e.details).toMatchObject({ layer: m.layer });
  });

  it('one packed gate weight 0.01 off', async () => {
    let was = 0;
    const m = mutated(sd15, 2, (_model, nodes) => {
      const v = initializerEnding(nodes, '/gate1.conv_spatial.weight'); // [Ci, 1, K, K]
      const w = v.initializer!.toFloat32();
      was = w[7]!;
      w[7]! += 0.01;
      v.initializer = Tensor.fromFloat32(w, [...v.initializer!.dims]);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    // element 7 of [Ci, 1, K, K] is channel 0, row 0, column 7 of gate 1 ([S, K, K, Ci] in the checkpoint)
    expect(e.message).toMatch(
      new RegExp(`^layer ${m.layer.replace(/\./g, '\\.')}: its saved gate 1 conv_spatial\\.weight \\[0, 7, 0\\] is ${String(Math.fround(was + 0.01)).slice(0, 6)}\\d*, the checkpoint's ${String(was).slice(0, 6)}\\d* \\(relative difference .* > 5\\.0e-7 for f32\\)$`),
    );
    expect(e.details).toMatchObject({ layer: 'down_blocks.1.attentions.0.transformer_blocks.0.attn1', stage: 'weights' });
    // Without the checkpoint the reference computes with the saved (wrong) weight too: only the comparison with the checkpoint sees it.
    const blind = await checkLayers(sd15.before, m.file);
    expect(blind.layers[2]).toMatchObject({ weightError: null });
    expect(blind.layers[2]!.error).toBeLessThan(1e-5);
  });

  it('one element of a transposed weight matrix changed (its bytes differ from the checkpoint\'s: compared as numbers, named in the checkpoint\'s layout)', async () => {
    let was = 0;
    let C = 0;
    const m = mutated(sd15, 4, (_model, nodes) => {
      const v = initializerEnding(nodes, '/conv_pool.weight_t'); // [C, C], the transpose of conv_pool.weight
      C = v.initializer!.dims[0]!;
      const w = v.initializer!.toFloat32();
      was = w[1 * C + 2]!; // row 1, column 2 of the transpose: conv_pool.weight [2, 1]
      w[1 * C + 2] = was * 2;
      v.initializer = Tensor.fromFloat32(w, [...v.initializer!.dims]);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(new RegExp(`^layer ${m.layer.replace(/\./g, '\\.')}: its saved conv_pool\\.weight\\[${2 * C + 1}\\] is .*, the checkpoint's .* \\(relative difference 1\\.0e\\+0 > 5\\.0e-7 for f32\\)$`));
    expect(e.details).toMatchObject({ layer: m.layer, stage: 'weights' });
  });

  it('swapped H and W in one layer: run-time sizes (the non-square 3×5 shows it)', async () => {
    const m = mutated(sd15, 9, (model, nodes) => {
      const shape = nodes.find((n) => n.opType === 'Shape' && n.inputs[0]?.name === readProvenance(model)![9]!.region!.hwSource)!;
      const hw = shape.outputs[0]!;
      const readers = [...hw.uses];
      const swapped = model.graph.op('Gather', [hw, model.graph.addInitializer('swap', Tensor.fromInt64([1, 0]))], { name: 'inject/swap_hw', attributes: { axis: { type: 'int', value: 0 } } });
      for (const u of readers) u.node.setInput(u.index, swapped);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(
      /^layer up_blocks\.1\.attentions\.2\.transformer_blocks\.0\.attn1: differs from the reference ΔConvBlock on tokens 2×3×5 \(batch×H×W\): relative error .* > 1\.0e-4 for f32 \(the worst at image \d, row \d, column \d, channel \d+: /,
    );
    expect(e.details).toMatchObject({ layer: m.layer, stage: 'mismatch' });
  });

  it('swapped H and W in one layer: static 8×6 constants of a non-square DiT', async () => {
    const m = mutated(pixart, 1, (model, nodes) => {
      let swapped = 0;
      for (const v of new Set(nodes.flatMap((n) => n.inputs))) {
        const t = v?.initializer;
        if (!t || t.dtype !== DataType.INT64) continue;
        const values = t.toNumbers();
        if (values.length >= 2 && values.at(-2) === 8 && values.at(-1) === 6) {
          v!.initializer = Tensor.fromInt64([...values.slice(0, -2), 6, 8], [...t.dims]);
          swapped++;
        }
      }
      expect(swapped).toBeGreaterThanOrEqual(2); // the NCHW reshape, the upsampled gate's size, the ones' shape
    });
    const e = await expectFailure(checkLayers(pixart.before, m.file, { weights: pixart.weights }));
    expect(e.message).toMatch(/^layer transformer_blocks\.1\.attn1: (differs from the reference ΔConvBlock|onnxruntime cannot (load|run) its region) /);
    expect(e.details).toMatchObject({ layer: 'transformer_blocks.1.attn1' });
  });

  it('a rewrite that produces NaN in one layer', async () => {
    const m = mutated(sd15, 12, (model, nodes) => {
      const g = model.graph;
      const y = nodes.find((n) => n.opType === 'MatMul')!.outputs[0]!;
      const readers = [...y.uses];
      const nan = g.op('Sqrt', [g.op('Neg', [g.op('Exp', [y], { name: 'inject/exp' })], { name: 'inject/neg' })], { name: 'inject/sqrt' });
      const sum = g.op('Add', [y, nan], { name: 'inject/add' });
      for (const u of readers) u.node.setInput(u.index, sum);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(
      /^layer up_blocks\.2\.attentions\.2\.transformer_blocks\.0\.attn1: gives 512 NaN\/Inf of 512 outputs on tokens 1×4×4 \(batch×H×W; the first at image 0, row 0, column 0, channel 0\) where the reference ΔConvBlock's are finite$/,
    );
    expect(e.details).toMatchObject({ layer: m.layer, stage: 'nonfinite' });
  });

  it('a node outside the layers reading from inside one', async () => {
    const m = mutated(sd15, 0, (model, nodes) => {
      const inner = nodes.find((n) => n.opType === 'Conv')!.outputs[0]!;
      model.graph.addOutput(model.graph.op('Identity', [inner], { name: 'inject/leak' }));
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(/^layer down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn1: "inject\/leak" \(Identity\), outside the layer, reads ".*gate0\/Conv_output" from inside it$/);
  });
});

describe('nodes outside the converted layers must be the original model’s', () => {
  const outsideNode = (model: Model, op: string) => {
    const inside = new Set(readProvenance(model)!.flatMap((l) => cutLayerRegion(model, l).nodes));
    return model.graph.nodes.find((n) => n.opType === op && !inside.has(n))!;
  };

  it('an attribute changed', async () => {
    const m = mutated(sd15, 0, (model) => {
      const conv = outsideNode(model, 'Conv');
      conv.attributes.set('pads', { type: 'ints', value: [0, 0, 0, 0] });
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(/^node "\/m\/conv_in\/Conv" \(Conv\), outside the converted layers, has other attributes than in the original model \(.*pads=ints\(\[0,0,0,0\]\).* vs .*pads=ints\(\[1,1,1,1\]\)/);
    expect(e.details).toMatchObject({ stage: 'outside' });
  });

  it('an input rewired', async () => {
    const m = mutated(sd15, 0, (model) => {
      const add = outsideNode(model, 'Add');
      add.setInput(1, add.inputs[0]!);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(/^node ".*" \(Add\), outside the converted layers, reads ".*" as input 1 where the original reads ".*"$/);
  });

  it('a weight of the UNet changed (its last bytes)', async () => {
    const m = mutated(sd15, 0, (model) => {
      const v = outsideNode(model, 'Conv').inputs[1]!;
      const w = v.initializer!.toFloat32();
      w[w.length - 1]! += 1;
      v.initializer = Tensor.fromFloat32(w, [...v.initializer!.dims]);
    });
    const e = await expectFailure(checkLayers(sd15.before, m.file, { weights: sd15.weights }));
    expect(e.message).toMatch(/^initializer ".*conv_in\.weight", read by node "\/m\/conv_in\/Conv" \(Conv\), outside the converted layers, differs from the original's \(f32\[32,4,3,3\], bytes .* vs f32\[32,4,3,3\], bytes .*\)$/);
  });
});

describe('the check reads only the layers’ weights', () => {
  it('with external data: the bytes read are the ΔConvBlocks’ (once: unpacked and serialized for onnxruntime from the same read) and 64 bytes per other tensor', async () => {
    const c = convertAndSave('sd15-mini', { externalData: true });
    const data = `${c.saved}.data`;
    const model = loadModel(c.saved);
    let blockBytes = 0;
    for (const l of readProvenance(model)!) for (const n of cutLayerRegion(model, l).nodes) for (const v of n.inputs) if (v?.initializer?.isExternal) blockBytes += v.initializer.byteLength;
    const others = [...model.graph.initializers.values()].filter((v) => v.initializer!.isExternal).length;
    const read = FileByteSource.prototype.read;
    let bytes = 0;
    FileByteSource.prototype.read = function (this: FileByteSource, offset: number, length: number) {
      if (this.path === data) bytes += length;
      return read.call(this, offset, length);
    };
    try {
      await checkLayers(c.before, model, { weights: c.weights });
    } finally {
      FileByteSource.prototype.read = read;
    }
    expect(blockBytes).toBeGreaterThan(0);
    expect(bytes).toBeGreaterThanOrEqual(blockBytes);
    expect(bytes).toBeLessThanOrEqual(blockBytes + 64 * others);
    expect(bytes).toBeLessThan(fs.statSync(data).size / 10);
  });
});
