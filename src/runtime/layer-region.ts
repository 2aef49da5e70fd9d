/**
 * One converted layer cut out of a saved model: the nodes between its tokens (and the
 * tensor it reads H and W from) and the value that took the attention output's place,
 * as the conversion recorded them (`deltac.layers`, provenance.ts). The region is the
 * lowered block and its H/W arithmetic, or the fused PyramidConvBlock node; either
 * way it becomes a small standalone model of the layer's own constants, which
 * onnxruntime runs on inputs of any size the layer takes.
 *
 *   tokens [B, N, C] ──┐
 *   hw source [.. H .. W ..] ─ Shape ─┴─ (the block's nodes) ─→ output [B, N, C]
 */
import { DataType, isFloatType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import { Graph } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import type { Tensor } from '../ir/tensor.js';
import { runInference } from '../ir/shape-inference/infer.js';
import type { Value } from '../ir/value.js';
import { type ProvenanceLayer, readProvenance } from '../passes/delta-conv/provenance.js';
import { blockWeightsOf } from '../reference/block-weights.js';
import type { DeltaConvBlockWeights } from '../reference/delta-conv-block.js';

export interface LayerRegion {
  layer: ProvenanceLayer;
  /** The region's nodes, in graph order. */
  nodes: Node[];
  tokens: Value;
  /** The tensor H and W are read from (null when they are static constants). */
  hwSource: Value | null;
  output: Value;
  /** A quantized module's DequantizeLinear of its tokens and QuantizeLinear of its output: the layer's, outside the float region. */
  edges: Node[];
  /** What the model's other nodes read of the layer: its output, or the quantized value it becomes. */
  readBy: Value;
  /** Element type of the block (its tokens and weights). */
  dtype: DataType;
}

const DTYPES: Record<string, DataType> = { f32: DataType.FLOAT, f16: DataType.FLOAT16, bf16: DataType.BFLOAT16 };

/** Fails the check for `layer`, saying what is wrong with its region. */
function broken(layer: string, why: string): DeltacError {
  return new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${layer}: ${why}`, { layer, stage: 'region' });
}

/**
 * The region of `layer` in `model` (the saved graph). Every value the region's nodes
 * read must be one of its inputs, a constant, or computed inside it, and nothing
 * outside may read what it computes except its output: otherwise the rewrite wired
 * the layer to the rest of the model in a way the conversion did not record.
 */
export function cutLayerRegion(model: Model, layer: ProvenanceLayer): LayerRegion {
  const name = layer.modulePath;
  const names = layer.region;
  if (!names) throw broken(name, 'the model does not record where the layer is (converted by an older deltac: convert the original again)');
  const g = model.graph;
  const lookup = (what: string, value: string): Value => {
    const v = g.lookup(value);
    if (!v) throw broken(name, `its ${what} "${value}" is not in the saved model`);
    return v;
  };
  const tokens = lookup('tokens', names.tokens);
  const output = lookup('output', names.output);
  const hwSource = names.hwSource ? lookup('H/W source', names.hwSource) : null;
  const boundary = new Set<Value>([tokens, ...(hwSource ? [hwSource] : [])]);
  const inside = new Set<Node>();
  const stack: Value[] = [output];
  const seen = new Set<Value>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v) || boundary.has(v) || v.initializer) continue;
    seen.add(v);
    const p = v.producer;
    if (!p) throw broken(name, `its nodes read "${v.name}", a graph input that is neither its tokens nor its H/W source`);
    if (inside.has(p)) continue;
    if (p.subgraphs().length) throw broken(name, `its node "${p.name}" (${p.qualifiedType}) holds a subgraph; a ΔConvBlock has none`);
    inside.add(p);
    for (const i of p.inputs) if (i) stack.push(i);
  }
  if (!inside.size) throw broken(name, `its output "${output.name}" is not computed by any node`);
  if (![...inside].some((n) => n.inputs.includes(tokens))) throw broken(name, `its output does not depend on its tokens "${tokens.name}"`);
  if (hwSource && ![...inside].some((n) => n.inputs.includes(hwSource))) throw broken(name, `it does not read H and W from "${hwSource.name}"`);
  for (const n of inside) {
    for (const o of n.outputs) {
      if (o === output) continue;
      const outsider = o.uses.find((u) => !inside.has(u.node));
      if (outsider) throw broken(name, `"${outsider.node.name}" (${outsider.node.qualifiedType}), outside the layer, reads "${o.name}" from inside it`);
      if (o.isGraphOutput) throw broken(name, `"${o.name}", computed inside the layer, is a graph output`);
    }
  }
  const edges: Node[] = [];
  let readBy = output;
  if (names.quantizedTokens) {
    const q = lookup('quantized tokens', names.quantizedTokens);
    const p = tokens.producer;
    if (p?.opType !== 'DequantizeLinear' || p.inputs[0] !== q) throw broken(name, `its tokens "${tokens.name}" are not the DequantizeLinear of its quantized tokens "${q.name}"`);
    edges.push(p);
  }
  if (names.quantizedOutput) {
    readBy = lookup('quantized output', names.quantizedOutput);
    const p = readBy.producer;
    if (p?.opType !== 'QuantizeLinear' || p.inputs[0] !== output) throw broken(name, `its quantized output "${readBy.name}" is not the QuantizeLinear of its output "${output.name}"`);
    if (output.uses.some((u) => u.node !== p) || output.isGraphOutput) throw broken(name, `its output "${output.name}" is read by more than the QuantizeLinear that quantizes it again`);
    edges.push(p);
  }
  const dtype = DTYPES[layer.dtype ?? ''] ?? floatType(tokens) ?? DataType.FLOAT;
  return { layer, nodes: g.nodes.filter((n) => inside.has(n)), tokens, hwSource, output, edges, readBy, dtype };
}

function floatType(v: Value): DataType | undefined {
  return v.type?.kind === 'tensor' && v.type.dtype !== DataType.UNDEFINED ? v.type.dtype : undefined;
}

/** Symbolic dim names of the region model's inputs. */
const TOKENS_DIMS = ['batch', 'tokens'];

/**
 * The region as a model of its own: inputs `tokens` [batch, tokens, C] and (when
 * H, W are not static) `hw_source` of rank 4, the region's constants as initializers
 * (the same tensors: external data is read when the model is serialized, only the
 * layer's), and the model's opset imports and local functions (a runtime that knows
 * ai.deltac PyramidConvBlock only as a function needs it).
 *
 * With `weightsAsInputs`, the float constants of 16 or more elements (the block's
 * weights and biases) become inputs instead, fed from `weights`, and every name is
 * canonical (n0, v0, w0, c0… in graph order): layers of the same structure then make
 * the same model, byte for byte, and one onnxruntime session runs them all.
 */
export function regionModel(
  model: Model,
  region: LayerRegion,
  options: { weightsAsInputs?: boolean } = {},
): { model: Model; inputs: { tokens: string; hwSource: string | null }; output: string; weights: Map<string, Tensor> } {
  const canonical = options.weightsAsInputs === true;
  const m = new Model(new Graph('layer'));
  m.irVersion = model.irVersion;
  for (const [d, v] of model.opsetImports) m.opsetImports.set(d, v);
  m.functions = model.functions;
  m.producerName = 'deltac layer check';
  const g = m.graph;
  const map = new Map<Value, Value>();
  const weights = new Map<string, Tensor>();
  const c = region.layer.channels;
  const tokensName = canonical ? 'tokens' : region.tokens.name;
  map.set(region.tokens, g.addInput(tokensName, { kind: 'tensor', dtype: region.dtype, shape: [...TOKENS_DIMS, c] }));
  let hwName: string | null = null;
  if (region.hwSource) {
    const dtype = floatType(region.hwSource) ?? region.dtype;
    hwName = canonical ? 'hw_source' : region.hwSource.name;
    map.set(region.hwSource, g.addInput(hwName, { kind: 'tensor', dtype, shape: ['d0', 'd1', 'd2', 'd3'] }));
  }
  let constants = 0;
  const value = (v: Value): Value => {
    let mapped = map.get(v);
    if (!mapped) {
      const t = v.initializer;
      if (!t) throw new Error(`layer region: "${v.name}" has no definition`); // cutLayerRegion admits only closed regions
      if (canonical && isFloatType(t.dtype) && t.elementCount >= 16) {
        const name = `w${weights.size}`;
        mapped = g.addInput(name, { kind: 'tensor', dtype: t.dtype, shape: [...t.dims] });
        weights.set(name, t);
      } else mapped = g.addInitializer(canonical ? `c${constants++}` : v.name, t, true);
      map.set(v, mapped);
    }
    return mapped;
  };
  let values = 0;
  for (const [i, n] of region.nodes.entries()) {
    const copy = g.addNode(n.opType, n.inputs.map((v) => (v ? value(v) : null)), {
      domain: n.domain,
      name: canonical ? `n${i}` : n.name,
      outputs: n.outputs.map((o) => (canonical ? `v${values++}` : o.name)),
      attributes: Object.fromEntries(n.attributes),
    });
    copy.overload = n.overload;
    n.outputs.forEach((o, k) => map.set(o, copy.outputs[k]!));
  }
  const out = map.get(region.output)!;
  g.addOutput(out);
  const inferred = runInference(m).types.get(out);
  out.type = inferred?.kind === 'tensor' ? { ...inferred, shape: inferred.shape?.map(() => null) ?? null } : { kind: 'tensor', dtype: region.dtype, shape: null };
  out.typeSource = 'declared';
  return { model: m, inputs: { tokens: tokensName, hwSource: hwName }, output: out.name, weights };
}

/**
 * Every converted layer of a (saved) model, with its region and its ΔConvBlock weights
 * as the model holds them (unpacked when lowered, biases folded: reference/block-weights.ts).
 */
export function convertedLayers(model: Model): { layer: ProvenanceLayer; region: LayerRegion; weights: DeltaConvBlockWeights }[] {
  return (readProvenance(model) ?? []).map((layer) => {
    const region = cutLayerRegion(model, layer);
    return { layer, region, weights: blockWeightsOf(region.nodes, layer, layer.modulePath) };
  });
}
