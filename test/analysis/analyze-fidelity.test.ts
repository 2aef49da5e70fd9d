/**
 * `deltac analyze --weights`: the per-layer error between the ΔConvBlock and the
 * attention on the captured inputs, checked against measurements made without the
 * analysis: onnxruntime running the converted block (the lowered graph, not the CPU
 * reference) on the same input, and a checkpoint fitted here by least squares whose
 * residual is known. A checkpoint that does not fit (two layers' blocks swapped, the
 * wrong gate) shows up in exactly the layers it touches.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel, type AnalysisReport } from '../../src/analysis/analyze/index.js';
import { convert } from '../../src/convert.js';
import type { Model } from '../../src/ir/model.js';
import type { Node } from '../../src/ir/node.js';
import type { Value } from '../../src/ir/value.js';
import { loadModel } from '../../src/onnx/load.js';
import { serializeModel } from '../../src/onnx/save.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { isPyramidConvBlock } from '../../src/passes/delta-conv/op.js';
import { linear } from '../../src/reference/delta-conv-block.js';
import { pyramidConvReference } from '../../src/reference/pyramid-conv.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { type Feeds, OrtModel, readInputFolder } from '../../src/runtime/onnxruntime.js';
import { SafetensorsFile } from '../../src/weights/safetensors.js';
import { makeTempDir, MODELS_DIR } from '../helpers/paths.js';
import { type TensorSpec, writeSafetensors } from '../helpers/safetensors-writer.js';

const tmp = makeTempDir('deltac-analyze-fidelity-');
afterAll(() => tmp.cleanup());

const SD15 = path.join(MODELS_DIR, 'sd15-mini');
const PIXART = path.join(MODELS_DIR, 'pixart-mini');

/** Every tensor of a safetensors file as float32. */
function readTensors(file: string): Record<string, TensorSpec> {
  const f = SafetensorsFile.open(file);
  return Object.fromEntries(f.keys().map((k) => [k, { shape: [...f.entries.get(k)!.shape], data: f.tensor(k).toFloat32() }]));
}

const blockKeys = (tensors: Record<string, TensorSpec>, block: string) => Object.keys(tensors).filter((k) => k.startsWith(`${block}.conv1.`));

/** Runs `model` in onnxruntime with `values` as extra outputs (Identity probes added to the model). */
async function probe(model: Model, values: Value[], feeds: Feeds): Promise<Float32Array[]> {
  const names = values.map((v, i) => {
    const out = model.graph.op('Identity', [v], { name: `probe_${i}`, output: `probe_${i}` });
    model.graph.addOutput(out);
    return out.name;
  });
  const ort = await OrtModel.load('probed', {}, serializeModel(model));
  try {
    const out = await ort.run(feeds);
    return names.map((n) => out[n]!.data);
  } finally {
    await ort.release();
  }
}

/** Batch item b of [B, N, C] data. */
const item = (a: Float32Array, b: number, batch: number) => a.subarray((b * a.length) / batch, ((b + 1) * a.length) / batch);

/** max|Δ|/max|attn| and ‖Δ‖/‖attn‖ agree with the analysis' figures to `tol` (relative). */
function expectSame(got: { rel: number; rms: number }, want: { rel: number; rms: number }, tol: number): void {
  expect(Math.abs(got.rel - want.rel) / want.rel).toBeLessThan(tol);
  expect(Math.abs(got.rms - want.rms) / want.rms).toBeLessThan(tol);
}

describe('deltac analyze --weights: per-layer error against onnxruntime running the converted block', () => {
  for (const { dir, layers } of [
    { dir: SD15, layers: [0, 6, 15] },
    { dir: PIXART, layers: [0, 3] },
  ]) {
    it(`${path.basename(dir)}: layers ${layers.join(', ')}`, async () => {
      const modelFile = path.join(dir, 'model.onnx');
      const ckpt = path.join(dir, 'delta.safetensors');
      const report = await analyzeModel(modelFile, { weights: ckpt, inputs: dir });
      const feeds = readInputFolder(dir).get('in0')!;
      const tensors = readTensors(ckpt);
      for (const j of layers) {
        const l = report.layers[j]!;
        const f = l.fidelity!;
        // a checkpoint with layer j's block only: the rest of the converted model is the attention model, so the block sees layer j's input
        const one = path.join(tmp.dir, `${path.basename(dir)}-layer${j}.safetensors`);
        writeSafetensors(one, Object.fromEntries(blockKeys(tensors, l.checkpoint!.block).map((k) => [k, tensors[k]!])));
        const original = loadModel(modelFile);
        const match = findAttention(original).matches.filter((m) => m.kind === 'self')[j]!;
        expect(match.modulePath).toBe(l.name);
        const [attn] = await probe(original, [match.output], feeds);
        const converted = loadModel(modelFile);
        // the fused node's reader; after lowering it reads whatever computes the block's output
        let reader: { node: Node; index: number } | undefined;
        const r = convert(converted, { weights: one, allowPartial: true, onFused: (m) => {
          const use = m.graph.nodes.find(isPyramidConvBlock)!.outputs[0]!.uses[0]!;
          reader = { node: use.node, index: use.index };
        } });
        expect(r.layers.filter((x) => x.status === 'converted').map((x) => x.modulePath)).toEqual([l.name]);
        const [delta] = await probe(converted, [reader!.node.inputs[reader!.index]!], feeds);
        const batch = f.samples.length;
        for (let b = 0; b < batch; b++) expectSame(compareArrays(item(delta!, b, batch), item(attn!, b, batch)), f.samples[b]!, 1e-5);
      }
    });
  }
});

/**
 * Least squares [W; b] = argmin ‖[A 1]·[W; b] − Y‖ for A [rows, m], Y [rows, c]
 * (normal equations, Cholesky, a tiny ridge): returns [m + 1, c].
 */
function leastSquares(a: Float32Array, y: Float32Array, rows: number, m: number, c: number): Float64Array {
  const n = m + 1;
  const at = (r: number, j: number) => (j === m ? 1 : a[r * m + j]!);
  const g = new Float64Array(n * n);
  const rhs = new Float64Array(n * c);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const ai = at(r, i);
      for (let j = 0; j < n; j++) g[i * n + j]! += ai * at(r, j);
      for (let o = 0; o < c; o++) rhs[i * c + o]! += ai * y[r * c + o]!;
    }
  }
  let trace = 0;
  for (let i = 0; i < n; i++) trace += g[i * n + i]!;
  for (let i = 0; i < n; i++) g[i * n + i]! += 1e-9 * trace;
  // G = L·Lᵀ, then L·Lᵀ·X = rhs
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = g[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(s) : s / l[j * n + j]!;
    }
  }
  const x = Float64Array.from(rhs);
  for (let o = 0; o < c; o++) {
    for (let i = 0; i < n; i++) {
      let s = x[i * c + o]!;
      for (let k = 0; k < i; k++) s -= l[i * n + k]! * x[k * c + o]!;
      x[i * c + o] = s / l[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * c + o]!;
      for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k * c + o]!;
      x[i * c + o] = s / l[i * n + i]!;
    }
  }
  return x;
}

describe('deltac analyze --weights: a checkpoint that fits and ones that do not (sd15-mini)', () => {
  const modelFile = path.join(SD15, 'model.onnx');
  const fitted = path.join(tmp.dir, 'fitted.safetensors');
  /** The fitted blocks' residual ‖Δ‖/‖attn‖ and max|Δ|/max|attn| per layer and batch item, computed here. */
  const residual: { rel: number; rms: number }[][] = [];
  let base: AnalysisReport;

  beforeAll(async () => {
    // The shared checkpoint's conv_up and gates (random: the gate features), with conv_out
    // and its bias fitted by least squares to each layer's captured attention output
    // (conv_pool zero): a block as close to the attention as these gates allow.
    base = await analyzeModel(modelFile, { inputs: SD15, weights: path.join(SD15, 'delta.safetensors') });
    const tensors = readTensors(path.join(SD15, 'delta.safetensors'));
    const model = loadModel(modelFile);
    const selfs = findAttention(model).matches.filter((m) => m.kind === 'self');
    const io = await probe(model, selfs.flatMap((m) => [m.input, m.output]), readInputFolder(SD15).get('in0')!);
    const out: Record<string, TensorSpec> = {};
    base.layers.forEach((l, j) => {
      const x = io[2 * j]!;
      const y = io[2 * j + 1]!;
      const { block, inner, kernel, gates, scales } = l.checkpoint!;
      const c = l.channels!;
      const tokens = l.height * l.width;
      const batch = x.length / (tokens * c);
      const t = (k: string) => tensors[`${block}.conv1.${k}`]!;
      const gateWeights = new Float32Array(gates * kernel * kernel * inner);
      for (let g = 0; g < gates; g++) gateWeights.set(t(`gates.${g}.conv_spatial.weight`).data, g * kernel * kernel * inner);
      const u = linear(x, batch * tokens, c, t('conv_up.weight').data, t('conv_up.bias').data, inner);
      const features = pyramidConvReference(u, gateWeights, { batch, height: l.height, width: l.width }, { inner, kernel, scales, gate: 'simple' });
      const m = (gates * inner) / 2;
      const w = leastSquares(features, y, batch * tokens, m, c);
      const outWeight = new Float32Array(c * m);
      const outBias = new Float32Array(c);
      for (let o = 0; o < c; o++) {
        for (let i = 0; i < m; i++) outWeight[o * m + i] = w[i * c + o]!;
        outBias[o] = w[m * c + o]!;
      }
      for (const k of blockKeys(tensors, block)) out[k] = tensors[k]!;
      out[`${block}.conv1.conv_out.weight`] = { shape: [c, m], data: outWeight };
      out[`${block}.conv1.conv_out.bias`] = { shape: [c], data: outBias };
      out[`${block}.conv1.conv_pool.weight`] = { shape: [c, c], data: new Float32Array(c * c) };
      out[`${block}.conv1.conv_pool.bias`] = { shape: [c], data: new Float32Array(c) };
      const fit = linear(features, batch * tokens, m, outWeight, outBias, c);
      residual.push(Array.from({ length: batch }, (_, b) => compareArrays(item(fit, b, batch), item(y, b, batch))));
    });
    writeSafetensors(fitted, out);
  });

  it('the shared (random) checkpoint fits no layer: every rms ≥ 1', () => {
    for (const l of base.layers) {
      expect(l.fidelity!.rms).toBeGreaterThanOrEqual(1);
      expect(l.fidelity!.fit).toBe('poor');
    }
  });

  it('the fitted checkpoint: the analysis reports the least-squares residual of every layer, and every layer fits', async () => {
    const r = await analyzeModel(modelFile, { inputs: SD15, weights: fitted });
    r.layers.forEach((l, j) => {
      l.fidelity!.samples.forEach((s, b) => expectSame(s, residual[j]![b]!, 1e-6));
      expect(l.fidelity!.rms).toBeLessThan(1);
      expect(l.fidelity!.fit).toBe('ok');
    });
  });

  it('two layers of equal shape with their blocks swapped: exactly those two jump, the rest stay', async () => {
    const tensors = readTensors(fitted);
    const [a, b] = ['down_blocks.0.attentions.0.transformer_blocks.0', 'up_blocks.3.attentions.2.transformer_blocks.0'];
    const swapped: Record<string, TensorSpec> = { ...tensors };
    for (const k of blockKeys(tensors, a)) {
      const other = k.replace(a, b);
      swapped[k] = tensors[other]!;
      swapped[other] = tensors[k]!;
    }
    const file = path.join(tmp.dir, 'swapped.safetensors');
    writeSafetensors(file, swapped);
    const [fit, bad] = await Promise.all([analyzeModel(modelFile, { inputs: SD15, weights: fitted }), analyzeModel(modelFile, { inputs: SD15, weights: file })]);
    const changed = bad.layers.filter((l, j) => l.fidelity!.rms !== fit.layers[j]!.fidelity!.rms).map((l) => l.name);
    expect(changed).toEqual([`${a}.attn1`, `${b}.attn1`]);
    for (const name of changed) {
      const j = bad.layers.findIndex((l) => l.name === name);
      expect(bad.layers[j]!.fidelity!.rms).toBeGreaterThan(3 * fit.layers[j]!.fidelity!.rms);
      expect(bad.layers[j]!.fidelity!.fit).not.toBe('ok');
    }
    for (const l of bad.layers) if (!changed.includes(l.name)) expect(l.fidelity!.fit).toBe('ok');
  });

  it("the wrong gate (sigmoid on a simple-gate checkpoint) raises every layer's error", async () => {
    const [fit, wrong] = await Promise.all([analyzeModel(modelFile, { inputs: SD15, weights: fitted }), analyzeModel(modelFile, { inputs: SD15, weights: fitted, gate: 'sigmoid' })]);
    wrong.layers.forEach((l, j) => {
      expect(l.checkpoint!.gate).toBe('sigmoid');
      const before = fit.layers[j]!.fidelity!.rms;
      expect(l.fidelity!.rms).toBeGreaterThan(before);
      // this random model's attention outputs are nearly constant over the tokens (‖y − mean‖/‖y‖
      // 0.09–0.16), so the fitted bias carries much of each fit; what the wrong gate costs depends
      // on the weight the fit puts on the gates: little at C = 32, ≥ 4× at C = 64
      if (l.channels === 64) expect(l.fidelity!.rms).toBeGreaterThan(4 * before);
    });
  });
});
