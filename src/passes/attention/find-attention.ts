/**
 * Finds every attention module in a model with the registered patterns and
 * classifies it as self- or cross-attention. In a quantized model each module also
 * gets its quantization (quantization/reading.ts): how its input and output are
 * quantized, and whether its scales are constants that can be read.
 */
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { type InferResult, runInference } from '../../ir/shape-inference/infer.js';
import type { Value } from '../../ir/value.js';
import { type QuantParams, describeQuantization, isQuantizedType, producerOp, quantFormOf, quantOfValue, sameReading } from '../quantization/reading.js';
import { einsumAttention } from './einsum-attention.js';
import {
  type AttentionMatch,
  type AttentionPattern,
  MatchContext,
  modulePaths,
  traceOutputProjection,
  traceProjection,
} from './match.js';
import { msAttention } from './ms-attention.js';
import { msMultiHeadAttention } from './ms-multihead-attention.js';
import { onnxAttention } from './onnx-attention.js';
import { softmaxAttention } from './softmax-attention.js';

/** The patterns tried, in order. Adding an exporter's variant = adding a file and listing it here. */
export const ATTENTION_PATTERNS: AttentionPattern[] = [softmaxAttention, einsumAttention, onnxAttention, msMultiHeadAttention, msAttention];

export interface FindAttentionResult {
  matches: AttentionMatch[];
  /** Anchors that looked like attention but could not be traced (reported, left alone). */
  unmatched: { node: Node; pattern: string; reason: string }[];
  env: InferResult;
}

export function findAttention(model: Model, env: InferResult = runInference(model)): FindAttentionResult {
  const ctx = new MatchContext(env);
  const quantized = model.graph.nodes.some((n) => quantFormOf(n) !== null);
  const matches: AttentionMatch[] = [];
  const unmatched: FindAttentionResult['unmatched'] = [];
  for (const node of model.graph.nodes) {
    // Patterns may share an anchor (Softmax): the node is unmatched only when none of them matches.
    const failures: FindAttentionResult['unmatched'] = [];
    let coreFound = false;
    for (const pattern of ATTENTION_PATTERNS) {
      if (!pattern.anchor(node)) continue;
      const core = pattern.match(node, ctx);
      if (!core) {
        failures.push({ node, pattern: pattern.name, reason: 'core structure not recognised' });
        continue;
      }
      coreFound = true;
      const tail = traceOutputProjection(core.output, ctx);
      if (!tail) {
        unmatched.push({ node, pattern: pattern.name, reason: 'no output projection (to_out) after the core' });
        continue;
      }
      let input: Value;
      let kvSource: Value;
      let inputQuant: QuantParams | undefined;
      const projNodes: Node[] = [];
      const weights: Value[] = [tail.weight];
      if (core.fusedInput) {
        input = kvSource = core.fusedInput;
        const w = node.inputs[1];
        if (w) weights.push(w);
      } else {
        const [pq, pk, pv] = [core.q, core.k, core.v].map((v) => traceProjection(v, ctx));
        if (!pq || !pk || !pv) {
          unmatched.push({ node, pattern: pattern.name, reason: 'q/k/v are not projections of a tensor' });
          continue;
        }
        if (!sameReading(pk.source, pv.source)) {
          unmatched.push({ node, pattern: pattern.name, reason: 'k and v come from different tensors' });
          continue;
        }
        input = pq.source;
        // dedicated QuantizeLinear/DequantizeLinear pairs per reader: one tensor, read the same way
        kvSource = sameReading(pk.source, pq.source) ? pq.source : pk.source;
        inputQuant = pq.sourceQuant;
        for (const p of [pq, pk, pv]) {
          for (const n of p.nodes) if (!projNodes.includes(n)) projNodes.push(n);
          if (p.weight && !weights.includes(p.weight)) weights.push(p.weight);
          for (const a of p.adapters ?? []) {
            for (const n of [a.sum, ...a.nodes]) if (!projNodes.includes(n)) projNodes.push(n);
            for (const w of a.weights) if (!weights.includes(w)) weights.push(w);
          }
        }
      }
      const paths = modulePaths([...projNodes, ...core.nodes, ...tail.nodes]);
      const xShape = ctx.shape(input);
      const last = xShape?.[xShape.length - 1];
      matches.push({
        pattern: pattern.name,
        kind: input === kvSource ? 'self' : 'cross',
        input,
        kvSource,
        output: tail.output,
        channels: typeof last === 'number' ? last : outputChannels(tail.weight, tail.node),
        heads: core.heads ?? headsFromReshape(core.q, ctx) ?? null,
        blockPath: paths.block,
        modulePath: paths.module,
        nodes: [...projNodes, ...core.nodes, ...tail.nodes],
        weights,
        ...(tail.absorbedBias ? { absorbedBias: tail.absorbedBias } : {}),
      });
      if (quantized) {
        const inputQuantized = isQuantizedType(ctx.dtype(input));
        const outputQuantized = isQuantizedType(ctx.dtype(tail.output));
        const q = describeQuantization(input, tail.output, {
          input: inputQuant ?? (inputQuantized ? quantOfValue(input) : undefined),
          output: tail.outputQuant ?? (outputQuantized ? quantOfValue(tail.output) : undefined),
          inputQuantized,
          outputQuantized,
        });
        if (q) matches[matches.length - 1]!.quantization = q;
      }
      break;
    }
    if (!coreFound) unmatched.push(...failures);
  }
  return { matches: mergeSharedModules(matches), unmatched, env };
}

/**
 * Cores that end in the same `to_out` are one module (IP-Adapter's attn2 adds a
 * second core over the image tokens): one match, cross-attention when any core
 * reads K/V from another tensor than its query source (or reads another query
 * source), so that only modules with exactly one input are ever replaced.
 */
function mergeSharedModules(matches: AttentionMatch[]): AttentionMatch[] {
  const byOutput = new Map<Value, AttentionMatch>();
  const out: AttentionMatch[] = [];
  for (const m of matches) {
    const first = byOutput.get(m.output);
    if (!first) {
      byOutput.set(m.output, m);
      out.push(m);
      continue;
    }
    // A module is self-attention only if every core attends over the module's one input.
    if ((m.kind === 'cross' || m.input !== first.input) && first.kind === 'self') {
      first.kind = 'cross';
      first.kvSource = m.kind === 'cross' ? m.kvSource : m.input;
    }
    for (const n of m.nodes) if (!first.nodes.includes(n)) first.nodes.push(n);
    for (const w of m.weights) if (!first.weights.includes(w)) first.weights.push(w);
    first.blockPath ??= m.blockPath;
    first.modulePath ??= m.modulePath;
  }
  return out;
}

function outputChannels(weight: Value, node: Node): number | null {
  const dims = weight.initializer?.dims;
  if (!dims || dims.length !== 2) return null;
  return node.opType === 'Gemm' && node.getInt('transB', 0) ? dims[0]! : dims[1]!;
}

/**
 * Heads from the Reshape that splits q into [B, N, heads, head_dim], walking
 * back over layout ops and scaling — and over the [B·heads, N, head_dim] Reshape
 * of exports that fold the heads into the batch (torch 1.x AttnProcessor).
 */
function headsFromReshape(q: Value | null, ctx: MatchContext): number | undefined {
  let cur = q;
  for (let i = 0; cur && i < 16; i++) {
    const p = producerOp(cur);
    if (!p) return undefined;
    if (p.opType === 'Reshape') {
      const c = ctx.contents(p.inputs[1]);
      if (c && c.length === 4 && typeof c[2] === 'number' && c[2] > 0) return c[2];
      if (!c || c.length !== 3) return undefined;
    } else if (p.opType === 'MatMul' || p.opType === 'Gemm') return undefined;
    cur = p.inputs[0] ?? null;
  }
  return undefined;
}

/** True for element types the conversion handles. */
export function isConvertibleDtype(dt: DataType): boolean {
  return dt === DataType.FLOAT || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16;
}
