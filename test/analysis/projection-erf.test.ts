/**
 * The attention ERF with its projections read from the model (projection-weights.ts)
 * for every projection form, against central finite differences of the layer as
 * onnxruntime runs it: one self-attention module (4×4 tokens, C = 8, 2 heads, q/k/v
 * biases) in the einsum (LDM) style, with unfused LoRA adapters, with a packed
 * [C, 3C] projection split into q, k, v, and as com.microsoft.MultiHeadAttention
 * with packed QKV. onnxruntime's CPU provider has no kernel for the packed
 * MultiHeadAttention, so its differences are taken on the same layer exported with
 * separate projections (ms-mha, the same seeded weights).
 */
import { describe, expect, it } from 'vitest';
import { attentionVjp } from '../../src/analysis/analyze/attention-erf.js';
import { attentionParams } from '../../src/analysis/analyze/projections.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { tensorType } from '../../src/ir/types.js';
import type { Value } from '../../src/ir/value.js';
import { findAttention } from '../../src/passes/attention/find-attention.js';
import { MatchContext } from '../../src/passes/attention/match.js';
import { type AttentionStyle, emitAttention } from '../fixtures/exports/attention.js';
import { Emitter } from '../fixtures/exports/emitter.js';
import { DEFAULT_LORA } from '../fixtures/exports/lora.js';
import { ParamStore } from '../fixtures/exports/params.js';
import { runModel } from '../fixtures/exports/runtime.js';
import { seededRandom } from '../helpers/random.js';
import { maxRelError } from '../reference/fixtures.js';

const N = 16;
const C = 8;
const HEADS = 2;

/** q, k, v from one MatMul [C, 3C] + bias, Split on the last axis (torch's `qkv.chunk(3, -1)`). */
function splitPacked(e: Emitter, x: Value): Value {
  const d = C / HEADS;
  const qkv = e.linear('to_qkv', x, C, 3 * C, true, 1.5);
  const [q, k, v] = e.node('Split', [qkv, e.i64([C, C, C])], { axis: -1 }, { outputs: 3 }).outputs as [Value, Value, Value];
  const heads = (t: Value) => e.transpose(e.reshape(t, [e.dim(x, 0), N, HEADS, d]), [0, 2, 1, 3]);
  const kT = e.transpose(e.reshape(k, [e.dim(x, 0), N, HEADS, d]), [0, 2, 3, 1]);
  const probs = e.op('Softmax', [e.op('Mul', [e.op('MatMul', [heads(q), kT]), e.f(d ** -0.5)])], { axis: -1 });
  const o = e.reshape(e.transpose(e.op('MatMul', [probs, heads(v)]), [0, 2, 1, 3]), [e.dim(x, 0), N, C]);
  return e.module('to_out.0', () => e.linear('', o, C, C));
}

function layerModel(style: AttentionStyle | 'split-packed', lora = false): Model {
  const e = new Emitter(new ParamStore(3), {
    naming: 'torchscript',
    dtype: DataType.FLOAT,
    opset: 17,
    irVersion: 8,
    wrapper: 'm',
    ...(lora ? { lora: DEFAULT_LORA } : {}),
  });
  if (style.startsWith('ms-')) e.model.opsetImports.set('com.microsoft', 1);
  const x = e.graph.addInput('x', tensorType(DataType.FLOAT, ['batch', N, C]));
  const out = e.module('attn1', () => (style === 'split-packed' ? splitPacked(e, x) : emitAttention(e, style, { x, channels: C, heads: HEADS, qkvBias: true }).out));
  e.graph.addOutput(out);
  return e.model;
}

/** ∂ Σ_c y[n0, c] / ∂x [N, C] by central differences in onnxruntime: all 2·N·C perturbed inputs as one batch. */
async function finiteDifferences(model: Model, x: Float32Array, n0: number, eps: number): Promise<Float64Array> {
  const n = N * C;
  const batch = new Float32Array(2 * n * n);
  for (let i = 0; i < n; i++) {
    batch.set(x, 2 * i * n);
    batch.set(x, (2 * i + 1) * n);
    batch[2 * i * n + i]! += eps;
    batch[(2 * i + 1) * n + i]! -= eps;
  }
  const [y] = await runModel(model, { x: { dims: [2 * n, N, C], data: batch, dtype: DataType.FLOAT } });
  const sumAt = (b: number) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += y!.data[(b * N + n0) * C + c]!;
    return s;
  };
  return Float64Array.from({ length: n }, (_, i) => (sumAt(2 * i) - sumAt(2 * i + 1)) / (2 * eps));
}

const CASES: { name: string; style: AttentionStyle | 'split-packed'; lora?: boolean; runAs?: AttentionStyle }[] = [
  { name: 'einsum (LDM / CompVis)', style: 'ts-einsum' },
  { name: 'unfused LoRA adapters on to_q, to_k, to_v, to_out.0', style: 'ts-sdpa', lora: true },
  { name: 'packed [C, 3C] projection split into q, k, v', style: 'split-packed' },
  { name: 'MultiHeadAttention with packed QKV', style: 'ms-mha-packed', runAs: 'ms-mha' },
  { name: 'Attention with packed weights', style: 'ms-attention' },
];

describe('attention ERF from the model\'s weights = finite differences of the layer', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const model = layerModel(c.style, c.lora);
      const env = runInference(model, { bindings: { batch: 1 } });
      const found = findAttention(model, env);
      expect(found.matches.map((m) => m.kind)).toEqual(['self']);
      const pr = attentionParams(found.matches[0]!, new MatchContext(env));
      if ('reason' in pr) throw new Error(pr.reason);
      const rand = seededRandom(11);
      const x = Float32Array.from({ length: N * C }, () => rand() * 2 - 1);
      const n0 = 9;
      const vjp = attentionVjp(x, N, pr.params, n0);
      const fd = await finiteDifferences(c.runAs ? layerModel(c.runAs) : model, x, n0, 1e-2);
      const err = maxRelError(vjp, fd);
      expect(err).toBeLessThan(1e-3);
      // the gradient is not trivially small: tokens other than n0 matter
      expect(Math.max(...fd.slice(0, C).map(Math.abs))).toBeGreaterThan(1e-3);
    });
  }

  it('a packed QKV part without its per-head reshape is refused, with the reason', () => {
    const model = layerModel('ms-mha-packed');
    // drop the Reshape [0, 0, h, 3, d]: MultiHeadAttention now reads the raw [B, N, 3C] product
    const reshape = model.graph.nodes.find((n) => n.opType === 'Reshape' && n.outputs[0]!.users().some((u) => u.opType === 'MultiHeadAttention'))!;
    const mha = reshape.outputs[0]!.users()[0]!;
    mha.setInput(0, reshape.inputs[0]!);
    const env = runInference(model, { bindings: { batch: 1 } });
    const found = findAttention(model, env);
    const pr = attentionParams(found.matches[0]!, new MatchContext(env));
    expect('reason' in pr && pr.reason).toMatch(/packed 3-way projection has no \[\.\., heads, 3, d\] reshape/);
  });
});
