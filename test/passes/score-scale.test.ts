/**
 * The score scale an attention pattern records while it matches (`AttentionCore.scale`):
 * the scalar factors it steps over between q·kᵀ and the Softmax, whether a mask is
 * added, or a fused op's `scale` attribute — and the scale `deltac analyze` reads
 * from it (projections.ts), for one self-attention module (C = 8, 2 heads, d = 4)
 * in every export style.
 */
import { describe, expect, it } from 'vitest';
import { readScalar } from '../../src/analysis/analyze/projection-weights.js';
import { attentionParams } from '../../src/analysis/analyze/projections.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runInference } from '../../src/ir/shape-inference/infer.js';
import { tensorType } from '../../src/ir/types.js';
import { ATTENTION_PATTERNS, findAttention } from '../../src/passes/attention/find-attention.js';
import { type AttentionCore, MatchContext } from '../../src/passes/attention/match.js';
import { type AttentionStyle, emitAttention } from '../fixtures/exports/attention.js';
import { Emitter } from '../fixtures/exports/emitter.js';
import { ParamStore } from '../fixtures/exports/params.js';

const N = 16;
const C = 8;
const HEADS = 2;

function layerModel(style: AttentionStyle): Model {
  const dynamo = style === 'dynamo-sdpa' || style.startsWith('onnx-attention');
  const e = new Emitter(new ParamStore(3), {
    naming: dynamo ? 'dynamo' : 'torchscript',
    dtype: DataType.FLOAT,
    opset: style.startsWith('onnx-attention') ? 23 : dynamo ? 18 : 17,
    irVersion: dynamo ? 10 : 8,
    wrapper: 'm',
  });
  if (style.startsWith('ms-')) e.model.opsetImports.set('com.microsoft', 1);
  const x = e.graph.addInput('x', tensorType(DataType.FLOAT, [1, N, C]));
  e.graph.addOutput(e.module('attn1', () => emitAttention(e, style, { x, channels: C, heads: HEADS, qkvBias: true }).out));
  return e.model;
}

/** The one matched core of a model, as the pattern reports it. */
function coreOf(model: Model): { core: AttentionCore; ctx: MatchContext; found: ReturnType<typeof findAttention> } {
  const env = runInference(model);
  const ctx = new MatchContext(env);
  const found = findAttention(model, env);
  expect(found.matches).toHaveLength(1);
  const m = found.matches[0]!;
  const pattern = ATTENTION_PATTERNS.find((p) => p.name === m.pattern)!;
  const anchor = m.nodes.find((n) => pattern.anchor(n))!;
  return { core: pattern.match(anchor, ctx)!, ctx, found };
}

/** What each style writes between q·kᵀ and the Softmax (the √scale on q and kᵀ belongs to the projections). */
const EXPECTED: Record<AttentionStyle, { factors: [string, number][]; masked: boolean; attribute?: null }> = {
  'ts-sdpa': { factors: [], masked: false },
  'ts-sdpa-mask': { factors: [], masked: true },
  'ts-torch1': { factors: [['Mul', 0.5]], masked: true }, // baddbmm: Add(Mul(scores, 1/√d), Mul(empty, 0))
  'ts-div': { factors: [['Div', 2]], masked: false },
  'dynamo-sdpa': { factors: [], masked: false },
  'ts-einsum': { factors: [['Mul', 0.5]], masked: false },
  'onnx-attention': { factors: [], masked: false, attribute: null },
  'onnx-attention-4d': { factors: [], masked: false, attribute: null },
  'ms-mha': { factors: [], masked: false, attribute: null },
  'ms-mha-packed': { factors: [], masked: false, attribute: null },
  'ms-mha-packed-kv': { factors: [], masked: false, attribute: null },
  'ms-attention': { factors: [], masked: false, attribute: null },
};

describe('the score scale recorded by the attention patterns', () => {
  for (const [style, want] of Object.entries(EXPECTED) as [AttentionStyle, (typeof EXPECTED)[AttentionStyle]][]) {
    it(style, () => {
      const model = layerModel(style);
      const { core, ctx, found } = coreOf(model);
      const s = core.scale!;
      expect(s).toBeDefined();
      expect(s.factors.map((f) => [f.op, readScalar(f.value)])).toEqual(want.factors);
      expect(s.masked).toBe(want.masked);
      expect(s.attribute).toBe(want.attribute);
      // every style computes softmax(q·kᵀ/√d), d = 4: analyze reads 1/√d from the scores or
      // the default, except dynamo-sdpa whose constant √s on q and kᵀ is folded into wq, wk
      const pr = attentionParams(found.matches[0]!, ctx);
      if ('reason' in pr) throw new Error(pr.reason);
      expect(pr.params.scale).toBeCloseTo(style === 'dynamo-sdpa' ? 1 : 0.5, 6);
    });
  }

  it('a fused op\'s scale attribute is recorded and read', () => {
    const model = layerModel('onnx-attention');
    model.graph.nodes.find((n) => n.opType === 'Attention')!.attributes.set('scale', { type: 'float', value: 0.3 });
    const { core, ctx, found } = coreOf(model);
    expect(core.scale?.attribute).toBeCloseTo(0.3, 6);
    const pr = attentionParams(found.matches[0]!, ctx);
    expect('params' in pr && pr.params.scale).toBeCloseTo(0.3, 6);
  });

  it('a scores factor computed at run time is recorded, and analyze says it cannot read it', () => {
    const model = layerModel('ts-div');
    const div = model.graph.nodes.find((n) => n.opType === 'Div' && n.outputs[0]!.users().some((u) => u.opType === 'Softmax'))!;
    // √d as Sqrt(4): a scalar the pattern still steps over, but no constant
    const four = model.graph.addInitializer('four', Tensor.fromFloat32(new Float32Array([4]), []));
    div.setInput(1, model.graph.op('Sqrt', [four], { before: div }));
    const { core, ctx, found } = coreOf(model);
    expect(core.scale!.factors.map((f) => f.op)).toEqual(['Div']);
    expect(readScalar(core.scale!.factors[0]!.value)).toBeNull();
    expect(attentionParams(found.matches[0]!, ctx)).toEqual({ reason: 'the score scale could not be read' });
  });
});
