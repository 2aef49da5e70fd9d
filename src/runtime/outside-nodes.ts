/**
 * "Everything outside the converted layers is the original model": a structural
 * comparison of a converted model's nodes outside the layers' regions with the
 * original's, cheap enough to run after every conversion. The original is reduced to
 * a snapshot first (one signature string per node, dtype, dims and the first and last
 * bytes of each initializer), so it need not stay loaded beside the converted model,
 * and no weight is read whole.
 *
 * A node outside the layers must be one of the original's (found by its outputs) with
 * the same operator, attributes and inputs. The conversion changes only these inputs:
 *   - a reader of a replaced attention's output reads the layer's output instead;
 *   - an integer constant computed by nodes the conversion folded (fold-constants.ts)
 *     is an initializer `<value>_folded`;
 *   - an optimizer-fused to_out bias of a replaced attention is gone from the node
 *     after it (SkipLayerNormalization).
 *   - a quantized layer's DequantizeLinear of its tokens and QuantizeLinear of its output
 *     (insert-pyramid-conv.ts) are the layer's: its readers read the quantized output;
 *   - a recalibrated quantized model (runtime/recalibrate.ts) records the scales and zero
 *     points it widened and the biases it requantized (`deltac.recalibrated`): those
 *     may differ (same type and dims), and readers may read the requantized values.
 * Each is allowed only where the original's value no longer exists in the converted
 * model. Initializers read outside the layers keep their type, dims and bytes.
 */
import type { Attribute } from '../ir/attribute.js';
import { dtypeName } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import type { Node } from '../ir/node.js';
import type { Tensor } from '../ir/tensor.js';
import { formatType } from '../ir/types.js';
import type { Value } from '../ir/value.js';
import { readRecalibration } from '../passes/quantization/widen-ranges.js';
import type { LayerRegion } from './layer-region.js';

export type OutsideComparison = { nodes: number; initializers: number; unreadable: number; recalibrated: number } | { skipped: string };

interface NodeSignature {
  name: string;
  op: string;
  attributes: string;
  inputs: string[];
}

/** What the comparison needs of the original model. */
export interface GraphSnapshot {
  inputs: string[];
  outputs: string[];
  /** By the node's outputs (its key). */
  nodes: Map<string, NodeSignature>;
  /** Initializers by name: `f32[320,4,3,3] <first and last bytes>`. */
  tensors: Map<string, string>;
}

const SAMPLE_BYTES = 32;

/** Reduces a model to what compareOutsideNodes needs (reads at most 64 bytes of each initializer). */
export function snapshotGraph(model: Model): GraphSnapshot {
  const g = model.graph;
  const nodes = new Map<string, NodeSignature>();
  for (const n of g.nodes) nodes.set(nodeKey(n), signature(n));
  const tensors = new Map<string, string>();
  for (const v of g.initializers.values()) tensors.set(v.name, tensorSignature(v.initializer!));
  return { inputs: g.inputs.filter((v) => !v.initializer).map(valueSignature), outputs: g.outputs.map(valueSignature), nodes, tensors };
}

/** A node is known by its outputs (values are defined once in a graph). */
function nodeKey(n: Node): string {
  return n.outputs.map((o) => (o.omitted ? '' : o.name)).join('\u0000');
}

function signature(n: Node): NodeSignature {
  return {
    name: n.name,
    op: `${n.domain}:${n.opType}${n.overload ? `:${n.overload}` : ''}`,
    attributes: [...n.attributes].map(([k, a]) => `${k}=${attributeSignature(a)}`).sort().join(';'),
    inputs: n.inputs.map((v) => v?.name ?? ''),
  };
}

function valueSignature(v: Value): string {
  return `${v.name}: ${formatType(v.type)}`;
}

function attributeSignature(a: Attribute): string {
  switch (a.type) {
    case 'tensor':
      return `tensor(${tensorSignature(a.value)})`;
    case 'tensors':
      return `tensors(${a.value.map(tensorSignature).join(',')})`;
    case 'graph':
      return `graph(${graphSignature(a.value)})`;
    case 'graphs':
      return `graphs(${a.value.map(graphSignature).join(',')})`;
    case 'ref':
      return `ref(${a.of} ${a.ref})`;
    case 'opaque':
      return `opaque(${JSON.stringify(a.proto, (_k, v) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))})`;
    default:
      return `${a.type}(${JSON.stringify(a.value)})`;
  }
}

/** A subgraph as a whole (If/Loop bodies are compared as they are, never partly). */
function graphSignature(g: Graph): string {
  const inits = [...g.initializers.values()].map((v) => `${v.name}=${tensorSignature(v.initializer!)}`);
  const nodes = g.nodes.map((n) => {
    const s = signature(n);
    return `${s.op}(${s.inputs.join(',')})->(${nodeKey(n)}){${s.attributes}}`;
  });
  return [...g.inputs.map(valueSignature), '|', ...g.outputs.map(valueSignature), '|', ...inits, '|', ...nodes].join(' ');
}

/** `f32[320,4] 0a1b…|…9f` (the first and last bytes), or `… unreadable` when the data cannot be read. */
function tensorSignature(t: Tensor): string {
  const head = `${dtypeName(t.dtype)}[${t.dims.join(',')}]`;
  const s = t.storage;
  try {
    switch (s.kind) {
      case 'inline':
        return `${head} ${sample(s.bytes.length, (o, n) => s.bytes.subarray(o, o + n))}`;
      case 'external':
        return `${head} ${sample(s.length, (o, n) => s.source.read(s.offset + o, n))}`;
      case 'deferred': {
        const b = t.bytes();
        return `${head} ${sample(b.length, (o, n) => b.subarray(o, o + n))}`;
      }
      case 'strings':
        return `${head} strings(${s.values.map((v) => Buffer.from(v).toString('hex')).join(',')})`;
      case 'elided':
        return `${head} elided(${s.digest})`;
    }
  } catch {
    return `${head} unreadable`;
  }
}

function sample(length: number, read: (offset: number, n: number) => Uint8Array): string {
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  if (length <= 2 * SAMPLE_BYTES) return hex(read(0, length));
  return `${hex(read(0, SAMPLE_BYTES))}…${hex(read(length - SAMPLE_BYTES, SAMPLE_BYTES))}`;
}

function differs(what: string): DeltacError {
  return new DeltacError('DELTAC_E_CHECK_FAILED', what, { stage: 'outside' });
}

/**
 * Compares every node of `converted` outside `regions` with `original` (a snapshot, or
 * a model that is reduced to one). Throws DELTAC_E_CHECK_FAILED naming the first
 * node that differs.
 */
export function compareOutsideNodes(original: GraphSnapshot | Model, converted: Model, regions: readonly LayerRegion[]): OutsideComparison {
  const before = 'graph' in original ? snapshotGraph(original) : original;
  const g = converted.graph;
  const inside = new Set<Node>(regions.flatMap((r) => [...r.nodes, ...r.edges]));
  const layerOf = new Map<string, string>(regions.map((r) => [r.readBy.name, r.layer.modulePath]));
  const exists = (name: string) => g.lookup(name) !== undefined;
  // a quantized model's recalibration (passes/quantization/widen-ranges.ts) edits scales and biases on purpose
  const recal = readRecalibration(converted);
  const changed = new Set(recal?.changed);
  const added = new Set(recal?.added);
  const replaced = recal?.replaced ?? {};
  let recalibrated = 0;

  const inputs = g.inputs.filter((v) => !v.initializer).map(valueSignature);
  if (inputs.join('\n') !== before.inputs.join('\n')) throw differs(`the converted model's inputs (${inputs.join(', ')}) are not the original's (${before.inputs.join(', ')})`);
  const outputs = g.outputs.map(valueSignature);
  if (outputs.join('\n') !== before.outputs.join('\n')) throw differs(`the converted model's outputs (${outputs.join(', ')}) are not the original's (${before.outputs.join(', ')})`);

  const tensorsSeen = new Set<string>();
  let unreadable = 0;
  let nodes = 0;
  for (const n of g.nodes) {
    if (inside.has(n)) continue;
    if (n.outputs.length && n.outputs.every((o) => added.has(o.name))) {
      recalibrated++;
      continue;
    }
    nodes++;
    const label = `node "${n.name}" (${n.qualifiedType}), outside the converted layers,`;
    const was = before.nodes.get(nodeKey(n));
    if (!was) throw differs(`${label} is not in the original model (no original node computes ${n.outputs.map((o) => `"${o.name}"`).join(', ')})`);
    const now = signature(n);
    if (now.op !== was.op) throw differs(`${label} was ${was.op.replace(/^:/, '')} in the original model`);
    if (now.attributes !== was.attributes) throw differs(`${label} has other attributes than in the original model (${now.attributes || 'none'} vs ${was.attributes || 'none'})`);
    for (let i = 0; i < Math.max(now.inputs.length, was.inputs.length); i++) {
      const a = now.inputs[i] ?? '';
      const b = was.inputs[i] ?? '';
      if (a === b) continue;
      const gone = b !== '' && !exists(b);
      // a replaced attention's output → the layer's; folded shape arithmetic; an absorbed to_out bias
      if (gone && (layerOf.has(a) || a.startsWith(`${b}_folded`) || a === '')) continue;
      if (replaced[a] === b && added.has(a)) continue;
      throw differs(`${label} reads ${a ? `"${a}"` : 'nothing'} as input ${i} where the original reads ${b ? `"${b}"` : 'nothing'}`);
    }
    for (const v of n.inputs) {
      if (!v?.initializer || tensorsSeen.has(v.name)) continue;
      tensorsSeen.add(v.name);
      const was = before.tensors.get(v.name);
      if (was === undefined) {
        if (v.name.includes('_folded')) continue; // checked above: it replaced a folded value
        if (added.has(v.name)) continue;
        throw differs(`initializer "${v.name}", read by ${label.slice(0, -1)}, is not in the original model`);
      }
      const now = tensorSignature(v.initializer);
      if (now === was) continue;
      if (changed.has(v.name) && now.split(' ')[0] === was.split(' ')[0]) {
        recalibrated++;
        continue;
      }
      if (now.endsWith(' unreadable') || was.endsWith(' unreadable')) {
        if (now.split(' ')[0] === was.split(' ')[0]) {
          unreadable++;
          continue;
        }
      }
      throw differs(`initializer "${v.name}", read by ${label.slice(0, -1)}, differs from the original's (${describe(now)} vs ${describe(was)})`);
    }
  }
  return { nodes, initializers: tensorsSeen.size, unreadable, recalibrated };
}

function describe(sig: string): string {
  const [head, bytes] = sig.split(' ');
  return bytes === undefined || bytes === 'unreadable' ? sig : `${head}, bytes ${bytes.length > 24 ? `${bytes.slice(0, 16)}…` : bytes}`;
}
