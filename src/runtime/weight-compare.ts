/**
 * The per-layer check's first part (layer-check.ts): a layer's weights as read back
 * from the saved model against the checkpoint's, cast to the model's type as the
 * conversion casts them. Runs where the reference runs (reference-pool.ts: a worker
 * thread), so the checkpoint is opened there by its path.
 */
import fs from 'node:fs';
import { DataType } from '../ir/dtype.js';
import { DeltacError } from '../ir/errors.js';
import { halfToFloat32Array } from '../ir/half.js';
import type { Tensor } from '../ir/tensor.js';
import type { ProvenanceLayer } from '../passes/delta-conv/provenance.js';
import { type UnpackedWeights, foldedPoolBias } from '../reference/block-weights.js';
import type { DeltaConvBlockWeights } from '../reference/delta-conv-block.js';
import { Checkpoint } from '../weights/checkpoint.js';
import type { SafetensorsEntry } from '../weights/safetensors.js';
import { scanNonFinite } from '../weights/nonfinite.js';

/**
 * What to compare a layer's weights with: the checkpoint (its path, which a worker thread
 * opens itself; or, on the calling thread only, the object) and the type the model holds
 * them in.
 */
export interface WeightComparison {
  checkpoint: string | Checkpoint;
  layer: ProvenanceLayer;
  dtype: DataType;
}

/** `weights` against the checkpoint's (a path opened once per file and thread). */
export function compareWeights(weights: DeltaConvBlockWeights, c: WeightComparison, raw: UnpackedWeights['raw'] = {}): WeightDiff {
  return compareWithCheckpoint(weights, typeof c.checkpoint === 'string' ? openCheckpoint(c.checkpoint) : c.checkpoint, c.layer, c.dtype, raw);
}

/** Whether `checkpoint` holds its file's tensors, so that opening its path gives the same (a subclass may give others). */
export function opensByPath(checkpoint: Checkpoint): boolean {
  return Object.getPrototypeOf(checkpoint) === Checkpoint.prototype;
}

const opened = new Map<string, { checkpoint: Checkpoint; stamp: string }>();

function openCheckpoint(file: string): Checkpoint {
  const stamp = fileStamp(file);
  const known = opened.get(file);
  if (known && known.stamp === stamp) return known.checkpoint;
  const checkpoint = Checkpoint.open(file);
  opened.set(file, { checkpoint, stamp });
  return checkpoint;
}

function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return ''; // (Checkpoint.open reports it)
  }
}

/** Smallest normal number per type: below it, differences are measured against it. */
const SMALLEST: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 2 ** -126, [DataType.FLOAT16]: 2 ** -14, [DataType.BFLOAT16]: 2 ** -126 };

export const WEIGHT_NAMES: Record<keyof DeltaConvBlockWeights, string> = {
  upWeight: 'conv_up.weight',
  upBias: 'conv_up.bias',
  gateWeights: 'gates.conv_spatial.weight',
  outWeight: 'conv_out.weight',
  outBias: 'conv_out.bias',
  poolWeight: 'conv_pool.weight',
  poolBias: 'conv_pool.bias + conv_out.bias',
};

export function firstNonFinite(w: DeltaConvBlockWeights): string | null {
  for (const [key, label] of Object.entries(WEIGHT_NAMES)) {
    const a = w[key as keyof DeltaConvBlockWeights];
    const i = scanNonFinite(a, DataType.FLOAT)?.first;
    if (i !== undefined) return `${label}[${i}] (${a[i]})`;
  }
  return null;
}

/** Buffers reused from weight to weight (per thread): a check reads 829 MB of SDXL weights, in 16 MB pieces. */
const scratch = {
  byteBuffer: new Uint8Array(0),
  floatBuffer: new Float32Array(0),
  bytes(n: number): Uint8Array {
    if (this.byteBuffer.length < n) this.byteBuffer = new Uint8Array(n);
    return this.byteBuffer.subarray(0, n);
  },
  floats(n: number): Float32Array {
    if (this.floatBuffer.length < n) this.floatBuffer = new Float32Array(n);
    return this.floatBuffer.subarray(0, n);
  },
};

/**
 * The checkpoint's tensors for `layer`, cast to `dtype` as the conversion casts them, in
 * the reference's layouts (biases folded), each read when asked for: one weight at a
 * time in memory. (Read as they are: a NaN or ±Inf in them shows in the comparison.)
 */
function checkpointWeights(checkpoint: Checkpoint, layer: ProvenanceLayer, dtype: DataType): Record<keyof DeltaConvBlockWeights, () => Float32Array> & { bytes(key: keyof UnpackedWeights['raw']): Uint8Array | null } {
  const name = layer.modulePath;
  const block = layer.checkpointBlock ? checkpoint.blocks.get(layer.checkpointBlock) : undefined;
  if (!block) {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${name}: the checkpoint "${checkpoint.path}" has no block "${layer.checkpointBlock ?? '?'}", which the model records for it; is it the checkpoint the model was converted with?`, { layer: name, stage: 'weights' });
  }
  const own = opensByPath(checkpoint) ? undefined : checkpoint.read(block);
  type Field = 'upWeight' | 'upBias' | 'outWeight' | 'outBias' | 'poolWeight' | 'poolBias';
  const read = (e: SafetensorsEntry | undefined, label: string, fromOwn: () => Tensor, reuse = false): Float32Array => {
    if (!e) throw new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${name}: the checkpoint "${checkpoint.path}" has no ${label} for block "${block.prefix}"`, { layer: name, stage: 'weights' });
    // (a subclass's own tensors through its read(); the file's read here, without read()'s scan for NaN: the comparison finds them)
    if (own) return fromOwn().castTo(dtype).toFloat32();
    if (!reuse) return checkpoint.file.tensor(e.key).castTo(dtype).toFloat32();
    // A weight matrix, compared and let go before the next is read: read into (and, as float32, kept in) scratch buffers.
    const t = checkpoint.file.tensor(e.key, scratch.bytes(e.end - e.begin));
    if (t.dtype !== dtype) return t.castTo(dtype).toFloat32();
    if (dtype === DataType.FLOAT) return t.readFloat32();
    if (dtype === DataType.FLOAT16 && t.storage.kind === 'inline' && t.storage.bytes.byteOffset % 2 === 0) {
      const b = t.storage.bytes;
      return halfToFloat32Array(new Uint16Array(b.buffer, b.byteOffset, t.elementCount), scratch.floats(t.elementCount));
    }
    return t.toFloat32();
  };
  const field = (f: Field, label: string, reuse = false) => () => read(block[f], label, () => own![f], reuse);
  return {
    /** A matrix's bytes in `dtype`, read into the scratch buffer (null: a subclass's, or missing). */
    bytes: (key) => {
      const e = block[key];
      if (own || !e) return null;
      const t = checkpoint.file.tensor(e.key, scratch.bytes(e.end - e.begin));
      return t.dtype === dtype ? t.bytes() : t.castTo(dtype).bytes();
    },
    upWeight: field('upWeight', 'conv_up.weight', true),
    upBias: field('upBias', 'conv_up.bias'),
    gateWeights: () => {
      const gates = block.gates.map((g, i) => read(g, 'gates.conv_spatial.weight', () => own!.gates[i]!));
      const all = new Float32Array(gates.reduce((a, g) => a + g.length, 0));
      gates.reduce((at, g) => (all.set(g, at), at + g.length), 0);
      return all;
    },
    outWeight: field('outWeight', 'conv_out.weight', true),
    // (folded as foldBiases folds them: conv_out's bias added to conv_pool's)
    outBias: () => new Float32Array(field('outBias', 'conv_out.bias')().length),
    poolWeight: field('poolWeight', 'conv_pool.weight', true),
    poolBias: () => foldedPoolBias(field('poolBias', 'conv_pool.bias')(), field('outBias', 'conv_out.bias')()),
  };
}

export interface WeightDiff {
  error: number;
  where: string;
  saved: number;
  expected: number;
}

/**
 * The worst element-wise difference of `saved` from the checkpoint's weights. Where `raw`
 * holds a matrix's saved bytes in the weights' layout and in `dtype`, they are compared
 * with the checkpoint's bytes first: the same bits (the usual case) need no float32 of
 * the checkpoint, only a scan for NaN/±Inf.
 */
export function compareWithCheckpoint(saved: DeltaConvBlockWeights, checkpoint: Checkpoint, layer: ProvenanceLayer, dtype: DataType, raw: UnpackedWeights['raw'] = {}): WeightDiff {
  const expected = checkpointWeights(checkpoint, layer, dtype);
  const floor = SMALLEST[dtype] ?? 2 ** -126;
  const { kernel: K, inner: Ci } = layer;
  let worst: WeightDiff = { error: 0, where: '', saved: 0, expected: 0 };
  for (const [key, label] of Object.entries(WEIGHT_NAMES)) {
    const a = saved[key as keyof DeltaConvBlockWeights];
    const r = raw[key as keyof UnpackedWeights['raw']];
    if (r && r.dtype === dtype) {
      const same = expected.bytes(key as keyof UnpackedWeights['raw']);
      if (same && Buffer.compare(r.bytes, same) === 0) {
        const bad = scanNonFinite(r.bytes, dtype);
        if (!bad) continue;
        if (worst.error < Infinity) worst = { error: Infinity, where: `${label}[${bad.first}]`, saved: a[bad.first]!, expected: a[bad.first]! };
        continue;
      }
    }
    const b = expected[key as keyof DeltaConvBlockWeights]();
    if (a.length !== b.length) return { error: Infinity, where: `${label} (${a.length} values)`, saved: NaN, expected: b.length };
    const { error, index } = worstRelative(a, b, floor);
    if (error > worst.error) worst = { error, where: key === 'gateWeights' ? gateWhere(index, K, Ci) : `${label}[${index}]`, saved: a[index]!, expected: b[index]! };
  }
  return worst;
}

/** The largest |a − b| / max(|b|, floor) and where (NaN counts as Infinity). */
function worstRelative(a: Float32Array, b: Float32Array, floor: number): { error: number; index: number } {
  // the common case, the same bits (a conversion copies or casts the checkpoint's values): then only a NaN or ±Inf differs
  if (Buffer.compare(floatBytes(a), floatBytes(b)) === 0) {
    const bad = scanNonFinite(a, DataType.FLOAT);
    return bad ? { error: Infinity, index: bad.first } : { error: 0, index: 0 };
  }
  let error = 0;
  let index = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    const scale = Math.max(Math.abs(b[i]!), floor);
    if (d <= error * scale) continue; // the common case, without a division
    const e = d / scale;
    if (!(e <= error)) {
      error = Number.isNaN(e) ? Infinity : e;
      index = i;
      if (error === Infinity) break;
    }
  }
  return { error, index };
}

/** "gate 1 conv_spatial.weight [i, j, c]" for a flat index of [S, K, K, Ci]. */
function gateWhere(i: number, K: number, Ci: number): string {
  const c = i % Ci;
  const j = Math.floor(i / Ci) % K;
  const r = Math.floor(i / (Ci * K)) % K;
  return `gate ${Math.floor(i / (Ci * K * K))} conv_spatial.weight [${r}, ${j}, ${c}]`;
}

const floatBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
