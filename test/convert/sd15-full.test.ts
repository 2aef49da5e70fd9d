/**
 * The full SD1.5 UNet graph (SPEC.md §5: 3.44 GB of external weights, not shipped)
 * converts with a checkpoint of the real SD1.5 shapes generated here. The
 * conversion never reads the UNet's own weights, so the external files need not
 * exist; saving with reuseWeights references them without reading them either.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import { verifyModel } from '../../src/ir/verify.js';
import { loadModel, loadModelWithReport } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';
import { deltaCheckpointTensors, writeSafetensors } from '../helpers/safetensors-writer.js';
import { SD15_BLOCKS } from '../../bench/models/sd15-blocks.js';

const tmp = makeTempDir('deltac-sd15full-');
afterAll(tmp.cleanup);

describe('sd15-full', () => {
  const ckpt = path.join(tmp.dir, 'delta.safetensors');
  // the checkpoint carries a wrapper prefix, as some published files do
  writeSafetensors(ckpt, deltaCheckpointTensors(SD15_BLOCKS.map((b) => ({ ...b, block: `unet.${b.block}`, kernel: 9 })), 7));
  const modelFile = path.join(MODELS_DIR, 'sd15-full', 'model.graph.onnx');

  it('finds 16 self-attention blocks, converts them and keeps the 16 cross-attention blocks', () => {
    const { model, diagnostics } = loadModelWithReport(modelFile, { missingExternalData: 'warn' });
    const original = new Set(model.graph.initializers.keys());
    expect(diagnostics.filter((d) => d.code === 'DELTAC_W_EXTERNAL_MISSING')).toHaveLength(384);
    const report = convert(model, { weights: ckpt, resolutions: [512, 768] });
    const converted = report.layers.filter((l) => l.status === 'converted');
    expect(converted).toHaveLength(16);
    expect(report.crossAttention).toBe(16);
    expect(converted.map((l) => l.channels)).toEqual(SD15_BLOCKS.map((b) => b.channels));
    expect(converted.map((l) => l.checkpointBlock)).toEqual(SD15_BLOCKS.map((b) => `unet.${b.block}`));
    expect(converted.every((l) => l.kernel === 9 && l.inner === l.channels! / 2 && l.heads === 8)).toBe(true);
    // SD1.5 at 512 px: 64×64 tokens at the top level, 8×8 in the middle block
    expect(converted[0]!.flops![0]).toMatchObject({ height: 64, width: 64 });
    expect(converted[6]!.flops![0]).toMatchObject({ height: 8, width: 8 });
    expect(converted[15]!.flops![1]).toMatchObject({ height: 96, width: 96 });
    // to_q, to_k, to_v, to_out weight (+ to_out bias) of every self-attention block are gone
    const removed = report.removedInitializers.map((r) => r.name);
    expect(removed.filter((n) => n.includes('attn1.to_out.0.bias'))).toHaveLength(16);
    expect(removed.some((n) => n.includes('attn2'))).toBe(false);
    expect(verifyModel(model).filter((d) => d.severity === 'error')).toEqual([]);
    // The ΔConvBlock's GEMM weights stay in the checkpoint until the save writes them
    // (deferred: conv_up, conv_out and conv_pool, transposed when read): none is in memory.
    const delta = [...model.graph.initializers.values()].filter((v) => !original.has(v.name));
    const big = delta.filter((v) => /conv_(up|out|pool)\.weight/.test(v.name));
    expect(big.length).toBe(16 * 3);
    expect(big.filter((v) => v.initializer!.storage.kind !== 'deferred').map((v) => v.name)).toEqual([]);
    const inline = delta.filter((v) => v.initializer!.storage.kind === 'inline').reduce((a, v) => a + v.initializer!.byteLength, 0);
    expect(inline).toBeLessThan(8 * 2 ** 20); // biases and gates (K² · Ci)
    // …and what they compute is the checkpoint's tensor, transposed (checked against a plain transpose)
    const block = 'down_blocks.1.attentions.0.transformer_blocks.0';
    const pool = SafetensorsFile.open(ckpt).tensor(`unet.${block}.conv1.conv_pool.weight`);
    const [rows, cols] = pool.dims as [number, number];
    const want = pool.toFloat32();
    const got = model.graph.initializers.get(`${block}.attn1/PyramidConvBlock/conv_pool.weight_t`)!.initializer!;
    expect(got.storage.kind).toBe('deferred');
    expect(got.dims).toEqual([cols, rows]);
    const values = got.toFloat32();
    for (const [i, j] of [[0, 0], [1, 2], [rows - 1, 3], [17, cols - 1]] as const) expect(values[j * rows + i], `[${i}, ${j}]`).toBe(want[i * cols + j]);
  });

  it('saves next to the original with --reuse-weights without reading the UNet weights', () => {
    const dir = path.join(tmp.dir, 'model');
    fs.mkdirSync(dir);
    fs.copyFileSync(modelFile, path.join(dir, 'model.graph.onnx'));
    const model = loadModel(path.join(dir, 'model.graph.onnx'), { missingExternalData: 'warn' });
    const report = convert(model, { weights: ckpt });
    const stillExternal = [...model.graph.initializers.values()].filter((v) => v.initializer!.storage.kind === 'external').length;
    // the removed attention weights are among them (their files are simply no longer referenced)
    expect(report.removedInitializers.length).toBeGreaterThanOrEqual(64);
    expect(stillExternal).toBeLessThanOrEqual(384 - 64);
    const saved = saveModel(model, path.join(dir, 'model.delta.onnx'), { reuseWeights: true });
    expect(saved.reusedTensors).toBe(stillExternal);
    expect(saved.externalDataPath).toBe(path.join(dir, 'model.delta.onnx.data'));
    const back = loadModelWithReport(path.join(dir, 'model.delta.onnx'), { missingExternalData: 'warn' });
    const external = [...back.model.graph.initializers.values()].filter((v) => v.initializer!.storage.kind === 'external');
    // the new ΔConvBlock weights live in the new data file, the UNet's own in its original files
    expect(external.filter((v) => v.name.includes('.delta.')).every((v) => (v.initializer!.storage as { location: string }).location === 'model.delta.onnx.data')).toBe(true);
    expect(external.some((v) => (v.initializer!.storage as { location: string }).location === 'm.conv_in.weight')).toBe(true);
    expect(back.model.graph.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(16);
    // what the deferred weights wrote is what they compute (the checkpoint's, transposed where the lowering needs it)
    for (const v of [...model.graph.initializers.values()].filter((x) => x.initializer!.storage.kind === 'deferred').slice(0, 12)) {
      const saved = back.model.graph.initializers.get(v.name)!.initializer!;
      expect(Buffer.compare(Buffer.from(saved.bytes()), Buffer.from(v.initializer!.bytes())), v.name).toBe(0);
    }
  });
});
