/**
 * onnx-proto interop (src/onnx/onnx-proto-interop.ts) and the evidence for not building
 * deltac's loader on onnx-proto 8.0.1: an IR 8 TorchScript export round-trips through its
 * ModelProto unchanged, while a dynamo export (IR 10) loses every node's metadata_props —
 * the module paths — so weight binding falls back from names to block order.
 */
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import type { Model } from '../../src/ir/model.js';
import { printModel } from '../../src/ir/text/printer.js';
import { loadModel } from '../../src/onnx/load.js';
import { fromOnnxProto, toOnnxProto } from '../../src/onnx/onnx-proto-interop.js';
import { buildExport, deltaCheckpoint } from '../fixtures/exports/index.js';
import { makeTempDir, REPO_ROOT } from '../helpers/paths.js';
import { writeSafetensors } from '../helpers/safetensors-writer.js';

const { ModelProto } = onnxProto.onnx;
const metadataCount = (m: Model) => m.graph.nodes.reduce((n, node) => n + node.metadataProps.length, 0);

describe('onnx-proto interop', () => {
  it('round-trips the pixart-mini TorchScript export (IR 8) without loss', () => {
    const file = path.join(REPO_ROOT, 'examples', 'pixart-mini', 'model.onnx');
    const direct = loadModel(file);
    const theirs = ModelProto.decode(fs.readFileSync(file));
    expect(theirs.graph?.node?.length).toBe(direct.graph.nodes.length);
    const model = fromOnnxProto(theirs, ModelProto, { baseDir: path.dirname(file) });
    expect(printModel(model)).toBe(printModel(direct));
    const { proto, lost } = toOnnxProto(model, ModelProto);
    expect(lost).toEqual([]);
    expect(printModel(fromOnnxProto(proto, ModelProto))).toBe(printModel(direct));
  });

  it('reports what onnx-proto drops from a dynamo export (IR 10): node metadata_props, hence the module paths', () => {
    const built = buildExport({ layout: 'sd15', style: 'dynamo-sdpa' });
    const before = metadataCount(built.model);
    expect(before).toBeGreaterThan(100);
    const { proto, lost } = toOnnxProto(built.model, ModelProto);
    expect(lost).toEqual(['graph.node[].metadataProps']);
    const back = fromOnnxProto(proto, ModelProto);
    expect(metadataCount(back)).toBe(0);
    expect(back.graph.nodes.length).toBe(built.model.graph.nodes.length);

    const { dir, cleanup } = makeTempDir('deltac-onnx-proto-');
    try {
      const weights = path.join(dir, 'delta.safetensors');
      writeSafetensors(weights, deltaCheckpoint(built));
      const direct = convert(built.model, { weights });
      const lossy = convert(back, { weights });
      expect(direct.layers.map((l) => [l.modulePath, l.binding])).toEqual(built.selfBlocks.map((b) => [`${b.path}.attn1`, 'name']));
      // without metadata_props the layers have no names: bound by canonical block order instead
      expect(lossy.layers.map((l) => [l.modulePath, l.binding])).toEqual(built.selfBlocks.map(() => [null, 'structure']));
    } finally {
      cleanup();
    }
  });
});
