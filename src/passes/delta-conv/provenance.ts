/**
 * What deltac records about each converted layer in the model's metadata
 * (`deltac.layers`, JSON): the ΔConvBlock's geometry and where it reads H and W.
 * `deltac report` reads it back to count FLOPs of a converted model.
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
