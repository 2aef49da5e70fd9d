/**
 * Adds what `deltac analyze` reads as extra outputs of an in-memory copy of the
 * model (the user's file is never written): per layer the input tokens x, the
 * module output y, and — when the pattern computes a Softmax — the probabilities
 * of a seeded sample of query positions only (a Gather on the query axis), so that
 * no N×N matrix leaves the runtime. Everything is cast to float32.
 */
import { DataType } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import { Tensor } from '../../ir/tensor.js';
import type { Value } from '../../ir/value.js';
import type { AttentionLayer } from './layers.js';
import { sampleIndices } from './query-sample.js';

export interface LayerCaptureNames {
  x: string;
  y: string;
  probs: string | null;
  /** Token indices whose probabilities are captured (ascending). */
  queries: Int32Array;
}

/** Inserts `opType` right after the producer of its first input, so a staged run keeps it next to it. */
function insertAfter(graph: Graph, producer: Node | null, opType: string, inputs: Value[], name: string, attributes: Record<string, { type: 'int'; value: number }>): Value {
  const idx = producer ? graph.nodes.indexOf(producer) : -1;
  const before = graph.nodes[idx + 1];
  return graph.op(opType, inputs, { name, output: name, attributes, ...(before ? { before } : {}) });
}

function captureAsFloat(graph: Graph, v: Value, name: string): string {
  return insertAfter(graph, v.producer, 'Cast', [v], graph.uniqueName(name), { to: { type: 'int', value: DataType.FLOAT } }).name;
}

/**
 * Where one layer's values are captured, by value name and node position: every
 * fresh load of the model (same order, same names) is instrumented from these
 * without shape inference or attention matching.
 */
export interface CaptureSite {
  /** The layer's position among the model's self-attention layers (seeds its query sample). */
  index: number;
  tokens: number;
  input: string;
  output: string;
  /** Position of the Softmax in the graph's node list, when the pattern has one. */
  softmax: number | null;
}

export function captureSites(model: Model, layers: AttentionLayer[]): CaptureSite[] {
  return layers.map((l) => ({
    index: l.index,
    tokens: l.height * l.width,
    input: l.match.input.name,
    output: l.match.output.name,
    softmax: l.softmax ? model.graph.nodes.indexOf(l.softmax) : null,
  }));
}

export function instrument(model: Model, sites: CaptureSite[], queriesPerLayer: number, seed: number): LayerCaptureNames[] {
  const graph = model.graph;
  const value = (name: string): Value => {
    const v = graph.lookup(name);
    if (!v) throw new Error(`internal: captured value ${name} is missing`);
    return v;
  };
  // resolve every site before inserting nodes (which moves node positions)
  const resolved = sites.map((site) => ({ site, input: value(site.input), output: value(site.output), softmax: site.softmax === null ? null : graph.nodes[site.softmax]! }));
  return resolved.map(({ site, input, output, softmax }) => {
    const tag = `deltac_analyze_${site.index}`;
    const queries = sampleIndices(site.tokens, queriesPerLayer, seed * 1009 + site.index);
    const names: LayerCaptureNames = {
      x: captureAsFloat(graph, input, `${tag}_x`),
      y: captureAsFloat(graph, output, `${tag}_y`),
      probs: null,
      queries,
    };
    if (softmax) {
      const probs = softmax.outputs[0]!;
      const idx = graph.addInitializer(`${tag}_queries`, Tensor.fromInt64([...queries]));
      const picked = insertAfter(graph, softmax, 'Gather', [probs, idx], graph.uniqueName(`${tag}_probs_rows`), { axis: { type: 'int', value: -2 } });
      names.probs = captureAsFloat(graph, picked, `${tag}_probs`);
    }
    return names;
  });
}
