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
import { sampleIndices } from './seeded.js';

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

export function instrument(model: Model, layers: AttentionLayer[], queriesPerLayer: number, seed: number): LayerCaptureNames[] {
  const graph = model.graph;
  const out: LayerCaptureNames[] = [];
  for (const layer of layers) {
    const tag = `deltac_analyze_${layer.index}`;
    const tokens = layer.height * layer.width;
    const queries = sampleIndices(tokens, queriesPerLayer, seed * 1009 + layer.index);
    const names: LayerCaptureNames = {
      x: captureAsFloat(graph, layer.match.input, `${tag}_x`),
      y: captureAsFloat(graph, layer.match.output, `${tag}_y`),
      probs: null,
      queries,
    };
    const sm = layer.softmax;
    if (sm) {
      const probs = sm.outputs[0]!;
      const idx = graph.addInitializer(`${tag}_queries`, Tensor.fromInt64([...queries]));
      const picked = insertAfter(graph, sm, 'Gather', [probs, idx], graph.uniqueName(`${tag}_probs_rows`), { axis: { type: 'int', value: -2 } });
      names.probs = captureAsFloat(graph, picked, `${tag}_probs`);
    }
    out.push(names);
  }
  return out;
}
