/**
 * The conversion as one call: bind a ΔConvFusion checkpoint to a model's
 * self-attention layers, rewrite, clean up and (by default) lower to standard
 * ONNX. The same steps are available one by one through `createPassManager()`.
 */
import { attentionCost, blockCost } from './analysis/flops.js';
import type { Diagnostic } from './ir/diagnostics.js';
import { DataType, byteSizeOf } from './ir/dtype.js';
import { DeltacError } from './ir/errors.js';
import type { Model } from './ir/model.js';
import { runInference } from './ir/shape-inference/infer.js';
import { findAttention } from './passes/attention/find-attention.js';
import { MatchContext } from './passes/attention/match.js';
import { deadCodePass } from './passes/cleanup/dead-code.js';
import { foldConstantsPass } from './passes/cleanup/fold-constants.js';
import { type UnusedInitializersData, unusedInitializersPass } from './passes/cleanup/unused-initializers.js';
import {
  type InsertReport,
  type LayerReport,
  insertPyramidConvPass,
} from './passes/delta-conv/insert-pyramid-conv.js';
import { lowerPyramidConvPass } from './passes/delta-conv/lower-pyramid-conv.js';
import type { GateKind } from './passes/delta-conv/op.js';
import { findSpatialSource } from './passes/delta-conv/spatial-dims.js';
import { type PassRecord, PassManager } from './passes/pass-manager.js';
import { readLayerMap } from './weights/binding.js';
import { Checkpoint } from './weights/checkpoint.js';

export function createPassManager(): PassManager {
  return new PassManager([
    insertPyramidConvPass as never,
    deadCodePass as never,
    unusedInitializersPass as never,
    lowerPyramidConvPass as never,
    foldConstantsPass as never,
  ]);
}

export interface ConvertOptions {
  /** Path of the ΔConvFusion safetensors checkpoint, or an opened one. */
  weights: string | Checkpoint;
  gate?: GateKind;
  scales?: number[];
  /** Layer → checkpoint block assignments, or the path of a JSON file with them. */
  map?: string | Record<string, string>;
  allowPartial?: boolean;
  /** 'standard' lowers to plain ONNX ops (default); 'fused' keeps ai.deltac.PyramidConvBlock. */
  emit?: 'standard' | 'fused';
  /** Image resolutions (pixels, e.g. 512) at which to count FLOPs; the model's static sizes are used when omitted. */
  resolutions?: number[];
  onPass?: (record: PassRecord) => void;
}

export interface LayerFlops {
  resolution: number | null;
  /** H, W of the layer at this resolution. */
  height: number;
  width: number;
  attention: number;
  block: number;
}

export interface ConversionReport extends InsertReport {
  layers: (LayerReport & { flops?: LayerFlops[] })[];
  removedInitializers: { name: string; bytes: number }[];
  nodesBefore: number;
  nodesAfter: number;
  emit: 'standard' | 'fused';
  passes: { name: string; ms: number; stats?: Record<string, number> }[];
  diagnostics: Diagnostic[];
  totals: { resolution: number | null; attention: number; block: number }[];
}

/** Converts `model` in place and reports what changed. */
export function convert(model: Model, options: ConvertOptions): ConversionReport {
  const checkpoint = typeof options.weights === 'string' ? Checkpoint.open(options.weights) : options.weights;
  const map = typeof options.map === 'string' ? readLayerMap(options.map) : options.map;
  if (options.scales && options.scales.some((s) => !(s > 0 && s <= 1))) {
    throw new DeltacError('DELTAC_E_BAD_OPTION', `--scales must be numbers in (0, 1], got ${options.scales.join(',')}`);
  }
  const emit = options.emit ?? 'standard';
  const nodesBefore = model.graph.nodes.length;
  const shapesAt = layerShapes(model, options.resolutions);
  const pm = createPassManager();
  const passes = ['insert-pyramid-conv', 'dce', 'remove-unused-initializers', ...(emit === 'standard' ? ['lower-pyramid-conv'] : []), 'fold-constants', 'dce'];
  const records = pm.run(
    model,
    passes,
    { 'insert-pyramid-conv': { checkpoint, gate: options.gate, scales: options.scales, map, allowPartial: options.allowPartial } },
    { onPass: options.onPass },
  );
  const insert = records[0]!.result.data as InsertReport;
  const removed = records.filter((r) => r.name === 'remove-unused-initializers').flatMap((r) => (r.result.data as UnusedInitializersData).removed);
  const layers = insert.layers.map((l) => ({ ...l, flops: flopsFor(l, shapesAt) }));
  const totals = (shapesAt.length ? shapesAt : [{ resolution: null, shapes: new Map() }]).map((s, i) => ({
    resolution: s.resolution,
    attention: layers.reduce((a, l) => a + (l.flops?.[i]?.attention ?? 0), 0),
    block: layers.reduce((a, l) => a + (l.status === 'converted' ? (l.flops?.[i]?.block ?? 0) : (l.flops?.[i]?.attention ?? 0)), 0),
  }));
  return {
    ...insert,
    layers,
    removedInitializers: removed,
    nodesBefore,
    nodesAfter: model.graph.nodes.length,
    emit,
    passes: records.map((r) => ({ name: r.name, ms: r.ms, stats: r.result.stats })),
    diagnostics: records.flatMap((r) => r.result.diagnostics),
    totals,
  };
}

interface ShapesAt {
  resolution: number | null;
  /** layer block/module path → (N, C, heads, H, W) */
  shapes: Map<string, { h: number; w: number; c: number; heads: number }>;
}

/**
 * Numeric H, W per self-attention layer at each resolution (latent = resolution/8
 * bound to the symbolic height/width of the first 4-D input), or at the model's
 * static sizes when no resolution is given.
 */
export function layerShapes(model: Model, resolutions?: number[]): ShapesAt[] {
  const runs: { resolution: number | null; bindings?: Record<string, number> }[] = [];
  const latent = model.graph.inputs.find((v) => v.type?.kind === 'tensor' && v.type.shape?.length === 4);
  const shape = latent?.type?.kind === 'tensor' ? latent.type.shape : null;
  if (resolutions?.length) {
    for (const r of resolutions) {
      const bindings: Record<string, number> = {};
      if (shape && typeof shape[2] === 'string') bindings[shape[2]] = Math.floor(r / 8);
      if (shape && typeof shape[3] === 'string') bindings[shape[3]] = Math.floor(r / 8);
      runs.push({ resolution: r, bindings });
    }
  } else runs.push({ resolution: null });
  const out: ShapesAt[] = [];
  for (const run of runs) {
    const env = runInference(model, { bindings: run.bindings });
    const ctx = new MatchContext(env);
    const shapes = new Map<string, { h: number; w: number; c: number; heads: number }>();
    const matches = findAttention(model, env).matches;
    const barriers = new Set(matches.map((m) => m.output));
    for (const m of matches) {
      if (m.kind !== 'self') continue;
      const src = findSpatialSource(m.input, ctx, barriers);
      const s4 = src ? ctx.shape(src.tensor) : null;
      const h = s4?.[src!.hAxis];
      const w = s4?.[src!.wAxis];
      if (typeof h === 'number' && typeof w === 'number' && m.channels) {
        shapes.set(m.modulePath ?? m.blockPath ?? '', { h, w, c: m.channels, heads: m.heads ?? 1 });
      }
    }
    out.push({ resolution: run.resolution, shapes });
  }
  return out;
}

function flopsFor(l: LayerReport, shapesAt: ShapesAt[]): LayerFlops[] | undefined {
  const key = l.modulePath ?? l.blockPath ?? '';
  const result: LayerFlops[] = [];
  for (const s of shapesAt) {
    const sh = s.shapes.get(key);
    if (!sh) return undefined;
    const bytes = byteSizeOf(l.dtype === 'f16' ? DataType.FLOAT16 : DataType.FLOAT, 1);
    const attention = attentionCost({ tokens: sh.h * sh.w, channels: sh.c, heads: sh.heads }, bytes).flops;
    const block =
      l.status === 'converted'
        ? blockCost({ height: sh.h, width: sh.w, channels: sh.c, inner: l.inner!, kernel: l.kernel!, scales: l.scales!, gate: l.gate! }, bytes).flops
        : attention;
    result.push({ resolution: s.resolution, height: sh.h, width: sh.w, attention, block });
  }
  return result;
}
