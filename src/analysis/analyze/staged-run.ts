/**
 * Runs a model in onnxruntime for a set of wanted values only, in stages when its
 * weights are large: the nodes the wanted values depend on are cut, in graph
 * order, into pieces of at most `stageBytes` of weights; each piece is a session
 * of its own (created from bytes, external data read in place from the model's
 * folder), run on every feed set and released before the next, with the values
 * that cross a cut handed over as tensors. Peak memory is then one piece's weights
 * plus its activations instead of the whole model's weights.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type ort from 'onnxruntime-node';
import { DataType } from '../../ir/dtype.js';
import type { Model } from '../../ir/model.js';
import type { Node } from '../../ir/node.js';
import type { Value } from '../../ir/value.js';
import { saveModel, serializeModel } from '../../onnx/save.js';
import { OrtModel } from '../../runtime/onnxruntime.js';

export type TensorFeeds = Record<string, ort.Tensor>;

export interface StagedRunOptions {
  /** Weight bytes per stage (default 512 MiB). */
  stageBytes?: number;
  /** Called after each stage ran on every feed set. */
  onStage?: (done: number, total: number) => void;
}

const ORT_TO_DTYPE: Record<string, DataType> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

/** What a node reads: its inputs and the outer values its subgraphs capture. */
function nodeInputs(n: Node): Value[] {
  return [...n.inputs, ...n.subgraphs().flatMap((g) => [...g.captures()])].filter((v): v is Value => !!v);
}

/** Nodes the wanted values depend on, in graph order. */
function neededNodes(model: Model, wanted: Value[]): Node[] {
  const need = new Set<Node>();
  const stack = wanted.map((v) => v.producer).filter((n): n is Node => !!n);
  while (stack.length) {
    const n = stack.pop()!;
    if (need.has(n)) continue;
    need.add(n);
    for (const v of nodeInputs(n)) if (v.producer && !need.has(v.producer)) stack.push(v.producer);
  }
  return model.graph.nodes.filter((n) => need.has(n));
}

/**
 * Nodes that compute from constants only (Constant, the Identity copies of shared
 * weights TorchScript writes): every stage that reads them gets its own copy
 * instead of receiving their (weight-sized) outputs from an earlier stage.
 */
function constantNodes(nodes: Node[]): Set<Node> {
  const out = new Set<Node>();
  for (const n of nodes) {
    if (n.subgraphs().length) continue;
    if (n.inputs.every((v) => !v || v.initializer || (v.producer && out.has(v.producer)))) out.add(n);
  }
  return out;
}

/** Cuts the needed nodes into stages by weight bytes; returns node indices per stage (constant nodes go with their readers). */
function planStages(model: Model, wanted: Value[], stageBytes: number): number[][] {
  const index = new Map(model.graph.nodes.map((n, i) => [n, i]));
  const needed = neededNodes(model, wanted);
  const constants = constantNodes(needed);
  const stages: Set<Node>[] = [new Set()];
  const seen = new Set<Value>();
  let bytes = 0;
  /** n and the constant nodes it reads through. */
  const withConstants = (n: Node): Node[] => {
    const out: Node[] = [];
    const visit = (m: Node) => {
      for (const v of m.inputs) if (v?.producer && constants.has(v.producer) && !out.includes(v.producer)) visit(v.producer);
      out.push(m);
    };
    visit(n);
    return out;
  };
  for (const n of needed) {
    if (constants.has(n)) continue;
    const group = withConstants(n);
    const reads = new Set(group.flatMap((m) => nodeInputs(m)).filter((v) => v.initializer));
    let add = 0;
    for (const v of reads) if (!seen.has(v)) add += v.initializer!.byteLength;
    if (bytes + add > stageBytes && stages[stages.length - 1]!.size) {
      stages.push(new Set());
      bytes = 0;
      seen.clear();
      add = [...reads].reduce((a, v) => a + v.initializer!.byteLength, 0);
    }
    for (const v of reads) seen.add(v);
    bytes += add;
    for (const m of group) stages[stages.length - 1]!.add(m);
  }
  return stages.map((s) => [...s].map((n) => index.get(n)!).sort((a, b) => a - b));
}

/** Serialized bytes of a model whose external tensors stay in their files, and the folder they resolve against. */
function serializeInPlace(model: Model): { bytes: Uint8Array; folder?: string } {
  const external = [...model.graph.initializers.values()].some((v) => v.initializer!.storage.kind === 'external');
  if (!external || !model.baseDir) return { bytes: serializeModel(model) };
  // The saver references unchanged external tensors in place ("reuse") when the output
  // sits in the model's folder; write to a private temp folder presented as that folder.
  const folder = model.baseDir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deltac-analyze-'));
  try {
    model.baseDir = tmp;
    const file = path.join(tmp, 'stage.onnx');
    saveModel(model, file, { externalData: true, reuseWeights: true, sizeThreshold: Infinity, force: true });
    return { bytes: fs.readFileSync(file), folder };
  } finally {
    model.baseDir = folder;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Runs `build()` (a fresh, deterministic copy of the instrumented model: same node
 * order and names every call) for the values named `wanted` on each feed set.
 */
export async function runStaged(
  build: () => Model,
  wanted: string[],
  feedSets: TensorFeeds[],
  options: StagedRunOptions = {},
): Promise<Map<string, ort.Tensor>[]> {
  const plan = build();
  const wantedValues = wanted.map((name) => {
    const v = plan.graph.lookup(name);
    if (!v) throw new Error(`internal: captured value ${name} is missing`);
    return v;
  });
  const stages = planStages(plan, wantedValues, options.stageBytes ?? 512 * 2 ** 20);
  // the last stage that reads each value (so that a stage hands it on)
  const lastUse = new Map<string, number>();
  stages.forEach((st, s) => {
    const inStage = new Set(st.map((k) => plan.graph.nodes[k]!));
    for (const n of inStage) {
      for (const v of nodeInputs(n)) if (!(v.producer && inStage.has(v.producer))) lastUse.set(v.name, Math.max(lastUse.get(v.name) ?? -1, s));
    }
  });
  const wantedSet = new Set(wanted);

  const results = feedSets.map(() => new Map<string, ort.Tensor>());
  const carried = feedSets.map((f) => new Map<string, ort.Tensor>(Object.entries(f)));
  for (let s = 0; s < stages.length; s++) {
    const model = s === 0 ? plan : build();
    const g = model.graph;
    const keep = new Set(stages[s]!.map((k) => g.nodes[k]!));
    g.removeNodes(g.nodes.filter((n) => !keep.has(n)), true);
    // values produced by earlier stages become inputs
    const inputs: Value[] = [];
    for (const n of g.nodes) {
      for (const v of nodeInputs(n)) {
        if (v.initializer || v.isGraphInput || inputs.includes(v)) continue;
        if (v.producer && !v.producer.removed) continue;
        const t = carried[0]!.get(v.name);
        if (!t) throw new Error(`internal: stage ${s} needs ${v.name}, which no earlier stage produced`);
        v.producer = null;
        v.producerIndex = -1;
        v.type = { kind: 'tensor', dtype: ORT_TO_DTYPE[t.type] ?? DataType.FLOAT, shape: t.dims.map(() => null) };
        v.typeSource = 'declared';
        inputs.push(v);
      }
    }
    for (const v of [...g.inputs]) if (!v.uses.length) g.inputs.splice(g.inputs.indexOf(v), 1);
    g.inputs.push(...inputs);
    const outputs = new Set<Value>();
    for (const n of g.nodes) {
      for (const o of n.outputs) if (wantedSet.has(o.name) || (lastUse.get(o.name) ?? -1) > s) outputs.add(o);
    }
    g.outputs.length = 0;
    g.outputs.push(...outputs);
    g.removeUnusedInitializers();
    const { bytes, folder } = serializeInPlace(model);
    const session = await OrtModel.load(`${model.sourcePath ?? 'model'} (analysis stage ${s + 1}/${stages.length})`, { externalDataFolder: folder, prepacking: false, memoryArena: false }, bytes);
    try {
      const inputNames = session.inputNames;
      for (let k = 0; k < feedSets.length; k++) {
        const feeds: TensorFeeds = {};
        for (const name of inputNames) feeds[name] = carried[k]!.get(name)!;
        const out = await session.runTensors(feeds);
        for (const [name, t] of Object.entries(out)) {
          if (wantedSet.has(name)) results[k]!.set(name, t);
          if ((lastUse.get(name) ?? -1) > s) carried[k]!.set(name, t);
        }
        // drop what no later stage reads
        for (const name of [...carried[k]!.keys()]) if ((lastUse.get(name) ?? -1) <= s && !(name in feedSets[k]!)) carried[k]!.delete(name);
      }
    } finally {
      await session.release();
    }
    options.onStage?.(s + 1, stages.length);
  }
  return results;
}
