/**
 * The conversion as one call: bind a ΔConvFusion checkpoint to a model's
 * self-attention layers, rewrite, clean up and (by default) lower to standard
 * ONNX. The same steps are available one by one through `createPassManager()`.
 */
import { reportModel } from './analysis/report.js';
import type { Diagnostic } from './ir/diagnostics.js';
import { DeltacError } from './ir/errors.js';
import type { Model } from './ir/model.js';
import { deadCodePass } from './passes/cleanup/dead-code.js';
import { foldConstantsPass } from './passes/cleanup/fold-constants.js';
import { type UnusedInitializersData, unusedInitializersPass } from './passes/cleanup/unused-initializers.js';
import {
  type InsertReport,
  type LayerReport,
  insertPyramidConvPass,
} from './passes/delta-conv/insert-pyramid-conv.js';
import { type LoweringData, lowerPyramidConvPass } from './passes/delta-conv/lower-pyramid-conv.js';
import type { GateKind } from './passes/delta-conv/op.js';
import { writeProvenance } from './passes/delta-conv/provenance.js';
import { type PassRecord, PassManager } from './passes/pass-manager.js';
import { readLayerMap } from './weights/binding.js';
import { Checkpoint } from './weights/checkpoint.js';
import { assertNewInitializersFinite } from './weights/nonfinite.js';

/** A manager of the conversion's passes, typed by name: `run` checks each pass's options. */
export function createPassManager() {
  return new PassManager({
    'insert-pyramid-conv': insertPyramidConvPass,
    dce: deadCodePass,
    'remove-unused-initializers': unusedInitializersPass,
    'lower-pyramid-conv': lowerPyramidConvPass,
    'fold-constants': foldConstantsPass,
  });
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
  /** Called with the model while it holds ai.deltac.PyramidConvBlock nodes (before lowering). */
  onFused?: (model: Model) => void;
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
  const tensorsBefore = new Set([...model.graph.initializers.values()].map((v) => v.initializer));
  const pm = createPassManager();
  const settings = { onPass: options.onPass };
  const records = pm.run(
    model,
    ['insert-pyramid-conv', 'dce', 'remove-unused-initializers'],
    { 'insert-pyramid-conv': { checkpoint, gate: options.gate, scales: options.scales, map, allowPartial: options.allowPartial } },
    settings,
  );
  // Checkpoint tensors were scanned as they were read; their casts to the model's type can still overflow.
  assertNewInitializersFinite(model, tensorsBefore);
  // The fused form exists only here when lowering follows: kernels are generated from it.
  options.onFused?.(model);
  for (const v of model.graph.initializers.values()) tensorsBefore.add(v.initializer);
  const after = emit === 'standard' ? (['lower-pyramid-conv', 'fold-constants', 'dce'] as const) : (['fold-constants', 'dce'] as const);
  records.push(...pm.run(model, after, {}, settings));
  assertNewInitializersFinite(model, tensorsBefore);
  const insert = records[0]!.result.data as InsertReport;
  // A lowered block's output is computed by its last lowered node now.
  const lowered = (records.find((r) => r.name === 'lower-pyramid-conv')?.result.data as LoweringData | undefined)?.outputs ?? {};
  writeProvenance(
    model,
    insert.layers
      .filter((l) => l.status === 'converted')
      .map((l) => ({
        modulePath: l.modulePath ?? l.id,
        family: l.family!,
        channels: l.channels!,
        heads: l.heads ?? 1,
        inner: l.inner!,
        kernel: l.kernel!,
        scales: l.scales!,
        gate: l.gate!,
        checkpointBlock: l.checkpointBlock,
        hwValue: l.staticHW ? undefined : l.hwValue,
        staticHW: l.staticHW,
        dtype: l.dtype,
        region: {
          tokens: l.tokensValue!,
          output: lowered[l.outputValue!] ?? l.outputValue!,
          ...(l.hwSourceValue ? { hwSource: l.hwSourceValue, hwAxes: l.hwAxes } : {}),
        },
      })),
  );
  const removed = records.filter((r) => r.name === 'remove-unused-initializers').flatMap((r) => (r.result.data as UnusedInitializersData).removed);
  // FLOPs per layer, evaluated on the converted model from the recorded provenance.
  const costs = reportModel(model, { resolutions: options.resolutions });
  const byPath = new Map(costs.layers.map((l) => [l.modulePath, l]));
  const layers = insert.layers.map((l) => {
    const at = byPath.get(l.modulePath ?? l.id)?.at;
    const flops = at?.map((a) => ({ resolution: a.resolution, height: a.height, width: a.width, attention: a.attention.flops, block: a.block.flops }));
    return { ...l, flops: flops?.length === costs.totals.length ? flops : undefined };
  });
  const totals = costs.totals.map((t) => ({ resolution: t.resolution, attention: t.attentionFlops, block: t.blockFlops }));
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
