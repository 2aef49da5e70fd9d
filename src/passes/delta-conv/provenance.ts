/**
 * What deltac records about each converted layer in the model's metadata
 * (`deltac.layers`, JSON): the ΔConvBlock's geometry and where it reads H and W.
 * `deltac report` reads it back to count FLOPs of a converted model, and the per-layer
 * check after `deltac convert` to find each layer's region and weights.
 */
import type { Model } from '../../ir/model.js';
import type { GateKind } from './op.js';
import type { ModelFamily } from './spatial/index.js';

export const PROVENANCE_KEY = 'deltac.layers';

export interface ProvenanceLayer {
  modulePath: string;
  family: ModelFamily;
  channels: number;
  heads: number;
  inner: number;
  kernel: number;
  scales: number[];
  gate: GateKind;
  checkpointBlock?: string;
  /** Name of the int64 [H, W] value the block reads (run-time sizes). */
  hwValue?: string;
  /** H, W when static. */
  staticHW?: [number, number];
  /** Element type of the block's weights and tokens ('f32', 'f16', 'bf16'). */
  dtype?: string;
  /** Where the layer sits in the saved graph (runtime/layer-check.ts cuts it out there). */
  region?: LayerRegionNames;
}

/**
 * The boundary of a converted layer's region: what flows in (the tokens, and the
 * tensor whose dims hold H and W) and what flows out. Every node between them is the
 * layer's; every other node was in the original model.
 */
export interface LayerRegionNames {
  /** The [B, N, C] tokens the block reads. */
  tokens: string;
  /** The value that took the attention output's place (the block's output, or the Cast of it). */
  output: string;
  /** The 4-D tensor whose dims hold H and W, and their axes (absent when H, W are static). */
  hwSource?: string;
  hwAxes?: [number, number];
}

export function readProvenance(model: Model): ProvenanceLayer[] | null {
  const raw = model.metadataProps.find(([k]) => k === PROVENANCE_KEY)?.[1];
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as ProvenanceLayer[];
    return Array.isArray(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

export function writeProvenance(model: Model, layers: ProvenanceLayer[]): void {
  model.metadataProps = model.metadataProps.filter(([k]) => k !== PROVENANCE_KEY);
  model.metadataProps.push([PROVENANCE_KEY, JSON.stringify(layers)]);
}
