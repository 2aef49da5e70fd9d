/**
 * `deltac convert` on quantized models as a user runs it: the table says how each
 * layer was read and that its block is float, a static model is recalibrated and
 * smoke-checked in onnxruntime; a module whose quantization scales are graph inputs
 * is kept with a warning naming the layer, not misread.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/convert.js';
import type { Model } from '../../src/ir/model.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { readNpy } from '../../src/runtime/npy.js';
import { OrtModel, compareArrays, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { recalibrateQuantization } from '../../src/runtime/recalibrate.js';
import { checkLayers } from '../../src/runtime/layer-check.js';
import { snapshotGraph } from '../../src/runtime/outside-nodes.js';
import { readRecalibration } from '../../src/passes/quantization/widen-ranges.js';
import { Tensor } from '../../src/ir/tensor.js';
import { pixartQuantized } from '../fixtures/quantize/shared-models.js';
import { runCli } from '../helpers/cli.js';
import { MODELS_DIR, makeTempDir } from '../helpers/paths.js';

const tmp = makeTempDir('deltac-quantized-cli-');
afterAll(tmp.cleanup);
const weights = path.join(MODELS_DIR, 'pixart-mini', 'delta.safetensors');

describe('deltac convert on quantized pixart-mini', () => {
  it('QOperator: the table shows the dequantized uint8 input and the float block; recalibration and the check run', async () => {
    const out = path.join(tmp.dir, 'qop.delta.onnx');
    const r = await runCli('convert', pixartQuantized('qop'), '--weights', weights, '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('quantized: in→block→out');
    expect(r.out.match(/transformer_blocks\.\d\.attn1 .* QOperator u8→f32→f32 /g)).toHaveLength(4);
    expect(r.out).toMatch(/self-attention {3}4 converted; cross-attention kept: 4/);
    expect(r.out).toMatch(/recalibrate {6}\d+ of \d+ activation ranges after the ΔConvBlocks widened .* on 4 seeded input sets \(hidden_states 1×4×16×12/);
    expect(r.out).toMatch(/check {12}passed/);
  });

  it.each(['dyn', 'qdq', 'qdq16', 'qop'] as const)('%s: the per-layer check runs every float block between its quantized edges, and knows the recalibration from damage', async (form) => {
    const out = path.join(tmp.dir, `${form}.checked.onnx`);
    const r = await runCli('convert', pixartQuantized(form), '--weights', weights, '-o', out, '--json');
    expect(r.code, r.err).toBe(0);
    const { check, recalibration } = JSON.parse(r.out);
    expect(check.layers.layers).toHaveLength(4);
    for (const l of check.layers.layers) {
      expect(l.sizes).toEqual(['2×8×6']);
      expect(l.error).toBeLessThan(1e-5);
      expect(l.weightError).toBe(0);
    }
    const widened = recalibration?.status === 'done' ? recalibration.widened.length : 0;
    if (form === 'dyn') expect(widened).toBe(0);
    else expect(check.layers.outside.recalibrated).toBeGreaterThanOrEqual(widened);
    // a scale the recalibration did not record is damage: a scale read before the first layer, doubled
    const model = loadModel(out);
    const before = snapshotGraph(loadModel(pixartQuantized(form)));
    const recorded = new Set(readRecalibration(model)?.changed);
    const scale = [...model.graph.initializers.values()].find((v) => /_scale$/.test(v.name) && !recorded.has(v.name) && v.initializer!.dims.length === 0 && v.uses.some((u) => !u.node.name.includes('attn1')));
    expect(scale).toBeDefined();
    scale!.initializer = Tensor.fromFloat32([scale!.initializer!.toFloat32()[0]! * 2], [], scale!.initializer!.dtype);
    const damaged = saveModel(model, path.join(tmp.dir, `${form}.damaged.onnx`));
    const failure = await checkLayers(before, damaged.modelPath, { weights }).then(() => null, (e: unknown) => e as { code?: string; message: string });
    expect(failure?.code).toBe('DELTAC_E_CHECK_FAILED');
    expect(failure?.message).toContain(`initializer "${scale!.name}"`);
    expect(failure?.message).toContain("differs from the original's");
  });

  it('QDQ (--json): per-layer quantization, the recalibration, and --no-recalibrate keeps every scale', async () => {
    const out = path.join(tmp.dir, 'qdq.delta.onnx');
    const r = await runCli('convert', pixartQuantized('qdq'), '--weights', weights, '-o', out, '--json', '--no-check');
    expect(r.code, r.err).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.report.layers.map((l: { quantization: unknown }) => l.quantization)).toEqual(Array(4).fill({ forms: ['QDQ'], input: 'f32', output: 'f32', block: 'f32' }));
    expect(json.recalibration.status).toBe('done');
    expect(json.recalibration.widened.length).toBeGreaterThan(0);
    for (const w of json.recalibration.widened) {
      // widened, never narrowed
      expect(w.to[0]).toBeLessThanOrEqual(w.from[0] + 1e-6);
      expect(w.to[1]).toBeGreaterThanOrEqual(w.from[1] - 1e-6);
    }
    const kept = await runCli('convert', pixartQuantized('qdq'), '--weights', weights, '-o', path.join(tmp.dir, 'qdq.kept.onnx'), '--no-recalibrate', '--no-check');
    expect(kept.out).toContain('recalibrate      skipped: --no-recalibrate');
  });

  it('--emit fused: the float twin cannot run the fused block, so recalibration is skipped and says why', async () => {
    const r = await runCli('convert', pixartQuantized('qdq'), '--weights', weights, '-o', path.join(tmp.dir, 'qdq.fused.onnx'), '--emit', 'fused', '--no-check');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('recalibrate      skipped: ai.deltac PyramidConvBlock has no onnxruntime kernel (--emit fused)');
  });

  it('dynamic: nothing to recalibrate (activation scales are computed at run time)', async () => {
    const r = await runCli('convert', pixartQuantized('dyn'), '--weights', weights, '-o', path.join(tmp.dir, 'dyn.delta.onnx'), '--no-check');
    expect(r.code, r.err).toBe(0);
    expect(r.out.match(/ dynamic f32→f32→f32 /g)).toHaveLength(4);
    expect(r.out).not.toContain('recalibrate');
  });
});

/** pixart-mini QDQ with the activation scales of transformer_blocks.0's attn1 turned into graph inputs. */
function scalesAsInputs(): { model: Model; file: string; scales: string[] } {
  const model = loadModel(pixartQuantized('qdq'));
  const g = model.graph;
  const scales = [...g.initializers.keys()].filter((n) => n.startsWith('/m/transformer_blocks.0/attn1/') && n.endsWith('_scale'));
  for (const name of scales) {
    const v = g.initializers.get(name)!;
    const input = g.addInput(`${name}_input`, { kind: 'tensor', dtype: v.initializer!.dtype, shape: [] });
    for (const u of [...v.uses]) u.node.setInput(u.index, input);
    g.removeInitializer(v);
  }
  const file = path.join(tmp.dir, 'scales-as-inputs.onnx');
  saveModel(model, file);
  return { model, file, scales };
}

describe('a quantized module whose scales are graph inputs', () => {
  it('is kept with a DELTAC_W_QUANTIZED warning naming the layer and the values; the others convert', async () => {
    const { model, file, scales } = scalesAsInputs();
    expect(scales.length).toBeGreaterThan(5);
    const report = convert(model, { weights });
    const first = report.layers[0]!;
    expect(first.id).toBe('transformer_blocks.0');
    expect(first.status).toBe('kept');
    expect(first.reason).toMatch(/^quantization not readable: its quantization scales or zero points ".*_scale_input".* are not constants/);
    expect(report.layers.slice(1).map((l) => l.status)).toEqual(['converted', 'converted', 'converted']);
    const w = report.diagnostics.filter((d) => d.code === 'DELTAC_W_QUANTIZED');
    expect(w).toHaveLength(1);
    expect(w[0]!.message).toMatch(/^layer transformer_blocks\.0 keeps its self-attention: /);
    // its attention is all there
    expect(model.graph.nodes.filter((n) => n.name.startsWith('/m/transformer_blocks.0/attn1/') && n.opType === 'Softmax')).toHaveLength(1);

    const r = await runCli('convert', file, '--weights', weights, '-o', path.join(tmp.dir, 'scales.delta.onnx'), '--no-check');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/self-attention {3}3 converted, 1 kept \(quantization not readable\)/);
    expect(r.err).toMatch(/warning: layer transformer_blocks\.0 keeps its self-attention: its quantization scales/);
  });
});

describe('a QOperator module that ends on a quantized tensor', () => {
  it("gets the block's output quantized again with the module's output scale and zero point", async () => {
    const model = loadModel(pixartQuantized('qop'));
    const g = model.graph;
    // without the Div by rescale_output_factor (1.0): the gate reads to_out's QLinearAdd result (same scale and zero point)
    for (let b = 0; b < 4; b++) {
      const requantized = g.lookup(`/m/transformer_blocks.${b}/attn1/Div_2_output_0_quantized`)!;
      requantized.replaceAllUsesWith(g.lookup(`/m/transformer_blocks.${b}/attn1/to_out.0/Add_output_0_quantized`)!);
    }
    g.removeDeadNodes();
    const file = path.join(tmp.dir, 'qop-u8-out.onnx');
    saveModel(model, file);
    const report = convert(model, { weights });
    for (const l of report.layers) {
      expect(l.quantization).toEqual({ forms: ['QOperator'], input: 'u8 (dequantized)', output: 'u8 (quantized again)', block: 'f32' });
      const q = g.nodes.find((n) => n.name === `${l.node}/quantize_output`)!;
      expect(q.opType).toBe('QuantizeLinear');
      expect(q.inputs.slice(1).map((v) => v!.name)).toEqual([`/m/${l.id}/attn1/to_out.0/Add_output_0_scale`, `/m/${l.id}/attn1/to_out.0/Add_output_0_zero_point`]);
    }
    await recalibrateQuantization(model, report.layers.map((l) => l.node!));
    const out = path.join(tmp.dir, 'qop-u8-out.delta.onnx');
    saveModel(model, out);
    const dir = path.join(MODELS_DIR, 'pixart-mini');
    const feeds = readInputFolder(dir).get('in0')!;
    const [o, d] = [await OrtModel.load(file), await OrtModel.load(out)];
    const original = compareArrays(Object.values(await o.run(feeds))[0]!.data, readNpy(path.join(dir, 'out0.attn.npy')).data as Float32Array).rel;
    const converted = compareArrays(Object.values(await d.run(feeds))[0]!.data, readNpy(path.join(dir, 'out0.delta.npy')).data as Float32Array).rel;
    expect(converted, `${converted.toExponential(2)} vs ${original.toExponential(2)}`).toBeLessThanOrEqual(2 * original);
    await o.release();
    await d.release();
  });
});
