/**
 * `deltac report`: per self-attention layer and in total, FLOPs and activation
 * memory of attention vs the ΔConvBlock at given resolutions (counting convention
 * in flops.ts). For an original model the ΔConvBlock geometry comes from a
 * checkpoint when one is given, else from the paper's defaults (Ci = C/2, K = 9
 * for UNets and 13 for DiTs, scales 1 and ½, the family's gate). For a converted
 * model the geometry is read from the provenance deltac stores in the model's
 * metadata (`deltac.layers`).
 */
import { byteSizeOf, DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { runInference } from '../ir/shape-inference/infer.js';
import { findAttention } from '../passes/attention/find-attention.js';
import { MatchContext } from '../passes/attention/match.js';
import { DEFAULT_GATE } from '../passes/delta-conv/insert-pyramid-conv.js';
import { type ProvenanceLayer, readProvenance } from '../passes/delta-conv/provenance.js';
import { findSpatialSource, type ModelFamily } from '../passes/delta-conv/spatial/index.js';
import type { Checkpoint } from '../weights/checkpoint.js';
import { attentionCost, blockCost, type Cost, flashAttentionBytes, localAttentionCost } from './flops.js';

export interface LayerGeometry extends Omit<ProvenanceLayer, 'hwValue' | 'staticHW' | 'region' | 'dtype'> {
  /** Where the geometry came from. */
  source: 'checkpoint' | 'defaults' | 'model';
}

export interface LayerAtResolution {
  resolution: number | null;
  height: number;
  width: number;
  attention: { flops: number; activationBytes: number };
  block: { flops: number; activationBytes: number };
  /** Local attention with a K×K window (`baselineWindow`). */
  localAttention?: Cost;
  /** Activation memory at `batch`: self-attention with a flash kernel vs the ΔConvBlock. */
  atBatch?: { batch: number; flashAttentionBytes: number; blockBytes: number };
}

export interface ReportLayer extends LayerGeometry {
  at: LayerAtResolution[];
}

export interface ModelReport {
  converted: boolean;
  layers: ReportLayer[];
  totals: {
    resolution: number | null;
    attentionFlops: number;
    blockFlops: number;
    attentionPeakBytes: number;
    blockPeakBytes: number;
    localAttentionFlops?: number;
    localAttentionPeakBytes?: number;
    /** Largest layer at `batch`: flash self-attention vs ΔConvBlock. */
    flashPeakBytesAtBatch?: number;
    blockPeakBytesAtBatch?: number;
  }[];
  /** K of the local-attention baseline column, when asked for. */
  baselineWindow?: number;
  batch?: number;
  notes: string[];
}

/** Seed Table I: measured VRAM of self-attention (FlashAttention) vs ΔConvBlock, batch 32. */
export const PAPER_TABLE_I = [
  { resolution: '1024²', selfAttentionGB: 1.77, blockGB: 1.46 },
  { resolution: '4K', selfAttentionGB: 14.68, blockGB: 12.17 },
] as const;

export const DEFAULT_KERNEL: Record<ModelFamily, number> = { unet: 9, dit: 13 };

/** Bindings of the first 4-D input's symbolic H, W for an image resolution (latent = resolution / 8). */
export function resolutionBindings(model: Model, resolution: number): Record<string, number> {
  const latent = model.graph.inputs.find((v) => v.type?.kind === 'tensor' && v.type.shape?.length === 4);
  const shape = latent?.type?.kind === 'tensor' ? latent.type.shape : null;
  const out: Record<string, number> = {};
  if (shape && typeof shape[2] === 'string') out[shape[2]] = Math.floor(resolution / 8);
  if (shape && typeof shape[3] === 'string') out[shape[3]] = Math.floor(resolution / 8);
  return out;
}

interface LayerSite {
  modulePath: string;
  family: ModelFamily;
  channels: number;
  heads: number;
  dims: Map<number | null, [number, number]>;
}

/** Self-attention layers of an unconverted model with their H, W at each resolution. */
function attentionSites(model: Model, resolutions: (number | null)[]): LayerSite[] {
  const sites = new Map<string, LayerSite>();
  for (const res of resolutions) {
    const env = runInference(model, { bindings: res === null ? undefined : resolutionBindings(model, res) });
    const ctx = new MatchContext(env);
    const found = findAttention(model, env);
    const barriers = new Set(found.matches.map((m) => m.output));
    found.matches.forEach((m, i) => {
      if (m.kind !== 'self' || !m.channels) return;
      const key = m.modulePath ?? `layer${i}`;
      const src = findSpatialSource(m.input, ctx, barriers);
      const s4 = src ? ctx.shape(src.tensor) : null;
      const h = src && s4 ? s4[src.hAxis] : null;
      const w = src && s4 ? s4[src.wAxis] : null;
      const site = sites.get(key) ?? { modulePath: key, family: src?.family ?? 'unet', channels: m.channels, heads: m.heads ?? 1, dims: new Map() };
      if (typeof h === 'number' && typeof w === 'number') site.dims.set(res, [h, w]);
      sites.set(key, site);
    });
  }
  return [...sites.values()];
}

export interface ReportOptions {
  resolutions?: number[];
  checkpoint?: Checkpoint;
  /** Bytes per activation element (default: 4, or 2 for fp16 models). */
  bytesPerElement?: number;
  /** Add local attention with this K×K window as a baseline (seed §F: NA, K = 17). */
  baselineWindow?: number;
  /** Add activation memory at this batch size: flash self-attention vs ΔConvBlock (seed §E). */
  batch?: number;
}

export function reportModel(model: Model, options: ReportOptions = {}): ModelReport {
  const resolutions: (number | null)[] = options.resolutions?.length ? options.resolutions : [null];
  const bytes = options.bytesPerElement ?? byteSizeOf(modelDtype(model), 1);
  const notes: string[] = [];
  const provenance = readProvenance(model);
  let geometries: { geo: LayerGeometry; dims: Map<number | null, [number, number]> }[];
  if (provenance) {
    // A converted model: the geometry was recorded at conversion; H, W come from the
    // [H, W] value each block reads (evaluated at each resolution) or its static size.
    // Shape inference runs only when some block reads such a value (none does when H, W are static).
    const hwValues = provenance.map((l) => (l.hwValue ? model.graph.lookup(l.hwValue) : undefined));
    const envs = hwValues.some((v) => v !== undefined)
      ? new Map(resolutions.map((res) => [res, runInference(model, { bindings: res === null ? undefined : resolutionBindings(model, res) })]))
      : undefined;
    geometries = provenance.map((l, i) => {
      const dims = new Map<number | null, [number, number]>();
      const hwValue = hwValues[i];
      for (const res of resolutions) {
        const c = hwValue ? envs?.get(res)?.contents.get(hwValue) : undefined;
        if (c && typeof c[0] === 'number' && typeof c[1] === 'number') dims.set(res, [c[0], c[1]]);
        else if (l.staticHW) dims.set(res, l.staticHW);
      }
      const { region: _region, dtype: _dtype, ...geo } = l;
      return { geo: { ...geo, source: 'model' as const }, dims };
    });
  } else {
    const sites = attentionSites(model, resolutions);
    geometries = sites.map((s) => {
      const block = options.checkpoint ? findBlock(options.checkpoint, s.modulePath) : undefined;
      if (block) {
        const g = options.checkpoint!.geometry(block, s.modulePath);
        return {
          geo: { modulePath: s.modulePath, family: s.family, channels: s.channels, heads: s.heads, inner: g.inner, kernel: g.kernel, scales: Array.from({ length: g.gates }, (_, i) => 1 / 2 ** i), gate: DEFAULT_GATE[s.family], source: 'checkpoint', checkpointBlock: block.prefix },
          dims: s.dims,
        };
      }
      return {
        geo: { modulePath: s.modulePath, family: s.family, channels: s.channels, heads: s.heads, inner: s.channels / 2, kernel: DEFAULT_KERNEL[s.family], scales: [1, 0.5], gate: DEFAULT_GATE[s.family], source: 'defaults' },
        dims: s.dims,
      };
    });
    if (geometries.some((g) => g.geo.source === 'defaults')) {
      notes.push('ΔConvBlock geometry assumed (Ci = C/2, K = 9 UNet / 13 DiT, scales 1,½); pass --weights for the checkpoint\'s');
    }
  }
  const layers: ReportLayer[] = geometries.map(({ geo, dims }) => ({
    ...geo,
    at: resolutions.flatMap((res) => {
      const hw = dims.get(res);
      if (!hw) return [];
      const [h, w] = hw;
      const block = blockCost({ height: h, width: w, channels: geo.channels, inner: geo.inner, kernel: geo.kernel, scales: geo.scales, gate: geo.gate }, bytes);
      const at: LayerAtResolution = {
        resolution: res,
        height: h,
        width: w,
        attention: attentionCost({ tokens: h * w, channels: geo.channels, heads: geo.heads }, bytes),
        block,
      };
      if (options.baselineWindow) at.localAttention = localAttentionCost({ height: h, width: w, channels: geo.channels, heads: geo.heads, window: options.baselineWindow }, bytes);
      if (options.batch) {
        at.atBatch = {
          batch: options.batch,
          flashAttentionBytes: flashAttentionBytes({ tokens: h * w, channels: geo.channels, heads: geo.heads }, options.batch, bytes),
          blockBytes: options.batch * block.activationBytes,
        };
      }
      return [at];
    }),
  }));
  if (layers.some((l) => l.at.length < resolutions.length)) {
    notes.push(resolutions[0] === null ? 'some layers have symbolic H×W: pass --resolution to evaluate them' : 'H×W of some layers could not be evaluated at every resolution');
  }
  const totals = resolutions.map((res) => {
    const at = layers.map((l) => l.at.find((a) => a.resolution === res)).filter((a): a is LayerAtResolution => !!a);
    return {
      resolution: res,
      attentionFlops: at.reduce((s, a) => s + a.attention.flops, 0),
      blockFlops: at.reduce((s, a) => s + a.block.flops, 0),
      attentionPeakBytes: Math.max(0, ...at.map((a) => a.attention.activationBytes)),
      blockPeakBytes: Math.max(0, ...at.map((a) => a.block.activationBytes)),
      ...(options.baselineWindow
        ? {
            localAttentionFlops: at.reduce((s, a) => s + a.localAttention!.flops, 0),
            localAttentionPeakBytes: Math.max(0, ...at.map((a) => a.localAttention!.activationBytes)),
          }
        : {}),
      ...(options.batch
        ? {
            flashPeakBytesAtBatch: Math.max(0, ...at.map((a) => a.atBatch!.flashAttentionBytes)),
            blockPeakBytesAtBatch: Math.max(0, ...at.map((a) => a.atBatch!.blockBytes)),
          }
        : {}),
    };
  });
  return {
    converted: provenance !== null,
    layers,
    totals,
    ...(options.baselineWindow ? { baselineWindow: options.baselineWindow } : {}),
    ...(options.batch ? { batch: options.batch } : {}),
    notes,
  };
}

/** The checkpoint block of a self-attention module path (`….attn1` → its transformer block). */
export function findBlock(ckpt: Checkpoint, modulePath: string) {
  const blockPath = modulePath.replace(/\.[^.]*attn\d*$/, '');
  return [...ckpt.blocks.values()].find((b) => b.path === blockPath || b.prefix.endsWith(`.${blockPath}`) || b.prefix === blockPath);
}

function modelDtype(model: Model): DataType {
  const x = model.graph.inputs.find((v) => v.type?.kind === 'tensor' && v.type.shape?.length === 4);
  return x?.type?.kind === 'tensor' && x.type.dtype === DataType.FLOAT16 ? DataType.FLOAT16 : DataType.FLOAT;
}

