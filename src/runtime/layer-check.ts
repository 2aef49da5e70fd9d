/**
 * The check after a conversion, layer by layer (`deltac convert`'s default): every
 * converted layer is cut out of the SAVED model (layer-region.ts) and
 *
 *   1. its weights, read back out of the saved file and unpacked from the lowered
 *      graph's constants (reference/block-weights.ts), must equal the checkpoint's
 *      tensors cast to the model's type: a packing or a write gone wrong shows here;
 *   2. onnxruntime (CPU) runs the region on seeded tokens at two sizes it accepts,
 *      one of them non-square and with batch 2 (a layer whose H and W are static
 *      constants takes only its own size), and its output must match the reference
 *      ΔConvBlock (reference/delta-conv-block.ts) computed with those weights, within
 *      a tolerance of the block's type: the lowering and its H/W wiring show here;
 *   3. every node outside the layers must be the original model's node
 *      (outside-nodes.ts): a rewrite that touched the rest of the model shows here.
 *
 * Time and memory follow the ΔConvBlock weights, not the model: the saved model's
 * structure is loaded (external data stays on disk), and only each layer's tensors
 * are read, one layer at a time.
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { DataType, dtypeName } from '../ir/dtype.js';
import { DeltacError, isDeltacError } from '../ir/errors.js';
import { float32ToBfloat16Array, float32ToHalfArray, halfToFloat32Array, bfloat16ToFloat32Array } from '../ir/half.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import { loadModel } from '../onnx/load.js';
import { sameFile, serializeModel } from '../onnx/save.js';
import { type ProvenanceLayer, readProvenance } from '../passes/delta-conv/provenance.js';
import { blockWeightsOf, foldBiases } from '../reference/block-weights.js';
import type { DeltaConvBlockWeights } from '../reference/delta-conv-block.js';
import { type TokenWindow, pyramidReads, windowTokens } from '../reference/pyramid-conv.js';
import { Checkpoint } from '../weights/checkpoint.js';
import { scanNonFinite } from '../weights/nonfinite.js';
import { compareArrays } from './compare.js';
import { type LayerRegion, cutLayerRegion, regionModel } from './layer-region.js';
import { OrtModel, messageOf, missingKernelOp } from './onnxruntime.js';
import { type GraphSnapshot, type OutsideComparison, compareOutsideNodes } from './outside-nodes.js';
import { type ReferencePool, referencePool } from './reference-pool.js';
import { normalSampler, seededRandom } from './seeded-random.js';

export interface LayerCheckOptions {
  /**
   * The ΔConvFusion checkpoint the model was converted with (a path or an opened
   * one): the saved weights must equal its tensors. Without it, weights are read
   * back and used, but not compared.
   */
  weights?: string | Checkpoint;
  /** Seed of the random tokens (default 1). */
  seed?: number;
  /** onnxruntime intra-op threads (default: the machine's cores, at most 4). */
  threads?: number;
}

/** One layer's result. */
export interface LayerCheck {
  layer: string;
  dtype: string;
  /** The inputs onnxruntime and the reference ran on: batch×H×W. */
  sizes: string[];
  /** H and W are constants of the model: only its own size was possible. */
  staticHW?: [number, number];
  /** Worst relative error of onnxruntime's output against the reference over the sizes (max|Δ| / max|reference|); null when it did not run. */
  error: number | null;
  tolerance: number;
  /** Worst element-wise relative difference of the saved weights from the checkpoint's; null without a checkpoint. */
  weightError: number | null;
  weightTolerance: number;
  /** Why onnxruntime could not run the layer (then only its weights were checked). */
  notRun?: string;
  ms: number;
}

export interface LayerCheckResult {
  mode: 'layers';
  status: 'passed';
  layers: LayerCheck[];
  /** Nodes outside the layers compared with the original model, or why not. */
  outside: OutsideComparison;
  /** Wall time of the whole check. */
  ms: number;
}

/** max|Δ| / max|reference| allowed per block type: the reference accumulates in float32 from the same rounded inputs and weights. */
export const OUTPUT_TOLERANCE: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 1e-4, [DataType.FLOAT16]: 1e-2, [DataType.BFLOAT16]: 5e-2 };
/** Element-wise |saved − checkpoint| / |checkpoint| allowed: a rounding or two of the type (the simple gate's B half is stored times √(Ci/2)). */
export const WEIGHT_TOLERANCE: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 5e-7, [DataType.FLOAT16]: 2e-3, [DataType.BFLOAT16]: 1.6e-2 };
/** Smallest normal number per type: below it, differences are measured against it. */
const SMALLEST: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 2 ** -126, [DataType.FLOAT16]: 2 ** -14, [DataType.BFLOAT16]: 2 ** -126 };

interface Size {
  batch: number;
  height: number;
  width: number;
  /** Compare only these tokens (a large static layer: the reference would cost N·C·Ci per token). */
  window?: TokenWindow;
}

const formatSize = (s: Size) =>
  `${s.batch}×${s.height}×${s.width}${s.window ? ` (its last ${s.window.rows[1] - s.window.rows[0]}×${s.window.cols[1] - s.window.cols[0]} tokens)` : ''}`;

/**
 * Multiply-adds of the reference above which a static layer is compared on a window:
 * its bottom-right 2×2 tokens (the last, odd-size pooling windows and the clamped
 * upsampling taps are there), for which conv_up runs on the ~8×8 tokens they read.
 */
const WHOLE_REFERENCE_MACS = 1e8;

/**
 * The sizes a layer is run at: its own when H, W are static; otherwise a square one
 * (batch 1) and a non-square one with odd sides (batch 2: pooling's odd-size windows,
 * swapped axes and batch mixing all show), the smallest whose coarsest gate still has
 * a cell.
 */
export function layerSizes(layer: Pick<ProvenanceLayer, 'scales' | 'staticHW' | 'channels' | 'inner'>): Size[] {
  if (layer.staticHW) {
    const [height, width] = layer.staticHW;
    const macs = 2 * height * width * 2 * layer.channels * layer.inner;
    if (macs <= WHOLE_REFERENCE_MACS) return [{ batch: 2, height, width }];
    return [{ batch: 1, height, width, window: { rows: [Math.max(0, height - 2), height], cols: [Math.max(0, width - 2), width] } }];
  }
  const side = Math.max(4, Math.ceil(1 / Math.min(...layer.scales)) + 1);
  return [
    { batch: 1, height: side, width: side },
    { batch: 2, height: side - 1, width: side + 1 },
  ];
}

/**
 * Checks every converted layer of `converted` (a saved model's path, or a model) and,
 * when `original` is given (its path, the model, or a `snapshotGraph` of it taken
 * before converting), that nothing outside the layers changed. Throws
 * DELTAC_E_CHECK_FAILED naming the layer (or the node outside them) that fails.
 */
export async function checkLayers(original: string | Model | GraphSnapshot | null, converted: string | Model, options: LayerCheckOptions = {}): Promise<LayerCheckResult> {
  const started = performance.now();
  const saved = typeof converted === 'string' ? loadModel(converted) : converted;
  const provenance = readProvenance(saved);
  // (an empty list is a partial conversion that kept every layer's attention: nothing to run, the rest is still compared)
  if (!provenance) {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', 'the saved model records no converted layers (its "deltac.layers" metadata is missing)', { stage: 'region' });
  }
  const checkpoint = typeof options.weights === 'string' ? Checkpoint.open(options.weights) : options.weights;
  const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 4));
  const regions: LayerRegion[] = [];
  const layers: LayerCheck[] = [];
  // Layer i's reference runs (in the pool's worker) while layer i + 1 is read and run in
  // onnxruntime; results are taken in order, so the first failing layer is the one named.
  const pool = referencePool();
  let behind: Promise<LayerCheck> | null = null;
  try {
    for (const [index, layer] of provenance.entries()) {
      const region = cutLayerRegion(saved, layer);
      regions.push(region);
      const ran = runLayer(saved, region, checkpoint, { seed: (options.seed ?? 1) * 7919 + index, threads }, pool);
      // (a layer that fails here fails after the one still behind it has been judged)
      const done = ran.then((finish) => finish());
      done.catch(() => {}); // (awaited below, in order)
      if (behind) layers.push(await behind);
      behind = done;
    }
    if (behind) layers.push(await behind);
  } finally {
    await pool.close();
  }
  let outside: OutsideComparison = { skipped: 'no original model given' };
  if (typeof original === 'string' && saved.sourcePath && sameFile(original, saved.sourcePath)) {
    outside = { skipped: 'the converted model replaced the original (--force)' };
  } else if (original !== null) {
    const before = typeof original === 'string' ? loadModel(original, { missingExternalData: 'warn' }) : original;
    outside = compareOutsideNodes(before, saved, regions);
  }
  return { mode: 'layers', status: 'passed', layers, outside, ms: performance.now() - started };
}

/**
 * What can be checked of a layer on this thread: its weights, and onnxruntime's run of
 * its region at each size. Resolves to the rest (the reference and the comparison,
 * computed in `pool`), or rejects with the layer's failure.
 */
async function runLayer(
  saved: Model,
  region: LayerRegion,
  checkpoint: Checkpoint | undefined,
  o: { seed: number; threads: number },
  pool: ReferencePool,
): Promise<() => Promise<LayerCheck>> {
  const t0 = performance.now();
  const { layer, dtype } = region;
  const name = layer.modulePath;
  const fail = (stage: string, why: string): never => {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${name}: ${why}`, { layer: name, stage });
  };
  let weights: DeltaConvBlockWeights;
  try {
    weights = blockWeightsOf(region.nodes, layer, name);
  } catch (e) {
    if (isDeltacError(e) && (e.code === 'DELTAC_E_UNSUPPORTED_MODEL' || e.code === 'DELTAC_E_TENSOR_DATA')) return fail('weights', e.message.replace(`layer ${name}: `, ''));
    throw e;
  }
  const result: LayerCheck = {
    layer: name,
    dtype: dtypeName(dtype),
    sizes: [],
    ...(layer.staticHW ? { staticHW: layer.staticHW } : {}),
    error: null,
    tolerance: OUTPUT_TOLERANCE[dtype] ?? 1e-4,
    weightError: null,
    weightTolerance: WEIGHT_TOLERANCE[dtype] ?? 5e-7,
    ms: 0,
  };
  // (with a checkpoint, a NaN or ±Inf in the saved weights is a difference from it)
  const nonFiniteWeight = checkpoint ? null : firstNonFinite(weights);
  if (nonFiniteWeight) fail('weights', `its saved ${nonFiniteWeight} is not finite`);
  if (checkpoint) {
    const diff = compareWithCheckpoint(weights, checkpoint, layer, dtype);
    result.weightError = diff.error;
    if (!(diff.error <= result.weightTolerance)) {
      fail('weights', `its saved ${diff.where} is ${diff.saved}, the checkpoint's ${diff.expected} (relative difference ${fmt(diff.error)} > ${fmt(result.weightTolerance)} for ${dtypeName(dtype)})`);
    }
  }
  const sizes = layerSizes(layer);
  if (dtype !== DataType.FLOAT && dtype !== DataType.FLOAT16) {
    result.notRun = `onnxruntime-node has no ${dtypeName(dtype)} tensors`;
    result.ms = performance.now() - t0;
    return async () => result;
  }
  const built = regionModel(saved, region);
  let session: OrtModel;
  try {
    // One run per size: pre-packed weights and the fusions and layout changes of the higher
    // optimization levels (made for many runs) cost more than they save; the semantics are the same.
    session = await OrtModel.load(`layer ${name}`, { threads: o.threads, quiet: true, prepacking: false, optimization: 'basic' }, serializeModel(built.model));
  } catch (e) {
    const missing = missingKernel(e);
    if (missing) {
      result.notRun = missing;
      result.ms = performance.now() - t0;
      return async () => result;
    }
    return fail('load', `onnxruntime cannot load its region: ${messageOf(e)}`);
  }
  const params = { channels: layer.channels, inner: layer.inner, kernel: layer.kernel, scales: layer.scales, gate: layer.gate };
  const runs: { x: Float32Array; size: Size; got: Float32Array }[] = [];
  try {
    for (const [k, size] of sizes.entries()) {
      const n = size.height * size.width;
      const x = seededTokens(size, layer, dtype, o.seed * 16 + k);
      const feeds: Record<string, ort.Tensor> = { [built.inputs.tokens]: toOrt(x, dtype, [size.batch, n, layer.channels]) };
      if (built.inputs.hwSource) {
        const dims = [1, 1, 1, 1];
        const [h, w] = layer.region!.hwAxes ?? [2, 3];
        dims[h] = size.height;
        dims[w] = size.width;
        const source = built.model.graph.inputs[1]!.type;
        feeds[built.inputs.hwSource] = zeros(source?.kind === 'tensor' ? source.dtype : dtype, dims);
      }
      let got: ort.Tensor;
      try {
        got = (await session.runTensors(feeds, [built.output]))[built.output]!;
      } catch (e) {
        return fail('run', `onnxruntime cannot run its region on tokens ${formatSize(size)} (batch×H×W): ${messageOf(e)}`);
      }
      result.sizes.push(formatSize(size));
      const expectDims = [size.batch, n, layer.channels];
      if ([...got.dims].join(',') !== expectDims.join(',')) {
        fail('outputs', `gives [${got.dims.join(', ')}] for tokens ${formatSize(size)} (batch×H×W), expected [${expectDims.join(', ')}]`);
      }
      const whole = fromOrt(got);
      const bad = scanNonFinite(floatBytes(whole), DataType.FLOAT);
      if (bad) {
        fail('nonfinite', `gives ${bad.count} NaN/Inf of ${whole.length} outputs on tokens ${formatSize(size)} (batch×H×W; the first at ${position(bad.first, size, layer.channels)}) where the reference ΔConvBlock's are finite`);
      }
      runs.push({ x, size, got: size.window ? windowTokens(whole, size, layer.channels, size.window) : whole });
    }
  } finally {
    await session.release();
  }
  const references = pool.compute({ weights, params, runs: runs.map(({ x, size }) => ({ x, size: { batch: size.batch, height: size.height, width: size.width }, window: size.window })) });
  const ranMs = performance.now() - t0;
  return async () => {
    const t1 = performance.now();
    let worst = 0;
    for (const [k, reference] of (await references).entries()) {
      const { size, got: actual } = runs[k]!;
      const c = compareArrays(actual, reference);
      worst = Math.max(worst, c.rel);
      if (!(c.rel <= result.tolerance)) {
        const at = worstIndex(actual, reference);
        fail(
          'mismatch',
          `differs from the reference ΔConvBlock on tokens ${formatSize(size)} (batch×H×W): relative error ${fmt(c.rel)} > ${fmt(result.tolerance)} for ${dtypeName(dtype)} (the worst at ${position(at, size, layer.channels, size.window)}: ${actual[at]} vs ${reference[at]})`,
        );
      }
    }
    result.error = worst;
    // (this layer's own time: its run here, and the comparison once its reference came back)
    result.ms = ranMs + (performance.now() - t1);
    return result;
  };
}

// ---- weights -----------------------------------------------------------------------

const WEIGHT_NAMES: Record<keyof DeltaConvBlockWeights, string> = {
  upWeight: 'conv_up.weight',
  upBias: 'conv_up.bias',
  gateWeights: 'gates.conv_spatial.weight',
  outWeight: 'conv_out.weight',
  outBias: 'conv_out.bias',
  poolWeight: 'conv_pool.weight',
  poolBias: 'conv_pool.bias + conv_out.bias',
};

function firstNonFinite(w: DeltaConvBlockWeights): string | null {
  for (const [key, label] of Object.entries(WEIGHT_NAMES)) {
    const a = w[key as keyof DeltaConvBlockWeights];
    const i = scanNonFinite(floatBytes(a), DataType.FLOAT)?.first;
    if (i !== undefined) return `${label}[${i}] (${a[i]})`;
  }
  return null;
}

/** The checkpoint's tensors for `layer`, cast to `dtype` as the conversion casts them, in the reference's layouts (biases folded). */
function checkpointWeights(checkpoint: Checkpoint, layer: ProvenanceLayer, dtype: DataType): DeltaConvBlockWeights {
  const block = layer.checkpointBlock ? checkpoint.blocks.get(layer.checkpointBlock) : undefined;
  if (!block) {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${layer.modulePath}: the checkpoint "${checkpoint.path}" has no block "${layer.checkpointBlock ?? '?'}", which the model records for it; is it the checkpoint the model was converted with?`, { layer: layer.modulePath, stage: 'weights' });
  }
  const t = checkpoint.read(block);
  const f = (x: Tensor) => x.castTo(dtype).toFloat32();
  const gates = t.gates.map(f);
  const gateWeights = new Float32Array(gates.reduce((a, g) => a + g.length, 0));
  gates.reduce((at, g) => (gateWeights.set(g, at), at + g.length), 0);
  return foldBiases({ upWeight: f(t.upWeight), upBias: f(t.upBias), gateWeights, outWeight: f(t.outWeight), outBias: f(t.outBias), poolWeight: f(t.poolWeight), poolBias: f(t.poolBias) });
}

interface WeightDiff {
  error: number;
  where: string;
  saved: number;
  expected: number;
}

function compareWithCheckpoint(saved: DeltaConvBlockWeights, checkpoint: Checkpoint, layer: ProvenanceLayer, dtype: DataType): WeightDiff {
  const expected = checkpointWeights(checkpoint, layer, dtype);
  const floor = SMALLEST[dtype] ?? 2 ** -126;
  const { kernel: K, inner: Ci } = layer;
  let worst: WeightDiff = { error: 0, where: '', saved: 0, expected: 0 };
  for (const [key, label] of Object.entries(WEIGHT_NAMES)) {
    const a = saved[key as keyof DeltaConvBlockWeights];
    const b = expected[key as keyof DeltaConvBlockWeights];
    if (a.length !== b.length) return { error: Infinity, where: `${label} (${a.length} values)`, saved: NaN, expected: b.length };
    const { error, index } = worstRelative(a, b, floor);
    if (error > worst.error) worst = { error, where: key === 'gateWeights' ? gateWhere(index, K, Ci) : `${label}[${index}]`, saved: a[index]!, expected: b[index]! };
  }
  return worst;
}

/** The largest |a − b| / max(|b|, floor) and where (NaN counts as Infinity). */
function worstRelative(a: Float32Array, b: Float32Array, floor: number): { error: number; index: number } {
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

// ---- inputs and outputs ------------------------------------------------------------

/**
 * Standard normal tokens, rounded to `dtype` (the reference sees exactly what
 * onnxruntime gets). For a window, only where the reference reads them for it (the
 * rest is zero: it reaches the window only through the mean, as zeros do).
 */
function seededTokens(size: Size, layer: ProvenanceLayer, dtype: DataType, seed: number): Float32Array {
  const { batch, height: H, width: W, window } = size;
  const c = layer.channels;
  const normal = normalSampler(seededRandom(seed));
  const x = new Float32Array(batch * H * W * c);
  const [r0, r1] = window ? pyramidReads(H, window.rows[0], window.rows[1], layer.kernel, layer.scales) : [0, H];
  const [c0, c1] = window ? pyramidReads(W, window.cols[0], window.cols[1], layer.kernel, layer.scales) : [0, W];
  for (let b = 0; b < batch; b++) for (let r = r0; r < r1; r++) for (let i = ((b * H + r) * W + c0) * c, end = ((b * H + r) * W + c1) * c; i < end; i++) x[i] = normal();
  if (dtype === DataType.FLOAT16) return halfToFloat32Array(float32ToHalfArray(x));
  if (dtype === DataType.BFLOAT16) return bfloat16ToFloat32Array(float32ToBfloat16Array(x));
  return x;
}

function toOrt(x: Float32Array, dtype: DataType, dims: number[]): ort.Tensor {
  return dtype === DataType.FLOAT16 ? new ort.Tensor('float16', float32ToHalfArray(x), dims) : new ort.Tensor('float32', x, dims);
}

function zeros(dtype: DataType, dims: number[]): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case DataType.FLOAT16:
      return new ort.Tensor('float16', new Uint16Array(n), dims);
    case DataType.DOUBLE:
      return new ort.Tensor('float64', new Float64Array(n), dims);
    case DataType.INT64:
      return new ort.Tensor('int64', new BigInt64Array(n), dims);
    case DataType.INT32:
      return new ort.Tensor('int32', new Int32Array(n), dims);
    default:
      return new ort.Tensor('float32', new Float32Array(n), dims);
  }
}

function fromOrt(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') {
    const d = t.data as unknown;
    return d instanceof Uint16Array ? halfToFloat32Array(d) : Float32Array.from(d as ArrayLike<number>);
  }
  if (t.type === 'float32') return t.data as Float32Array;
  return Float32Array.from(t.data as ArrayLike<number>, Number);
}

/** "image 1, row 2, column 4, channel 17" for a flat index of a [B, H·W, C] output (or of a window's tokens). */
function position(index: number, size: Size, c: number, w?: TokenWindow): string {
  const token = Math.floor(index / c);
  const cols = w ? w.cols[1] - w.cols[0] : size.width;
  const perImage = w ? (w.rows[1] - w.rows[0]) * cols : size.height * size.width;
  const t = token % perImage;
  return `image ${Math.floor(token / perImage)}, row ${Math.floor(t / cols) + (w?.rows[0] ?? 0)}, column ${(t % cols) + (w?.cols[0] ?? 0)}, channel ${index % c}`;
}

const floatBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function worstIndex(a: Float32Array, b: Float32Array): number {
  let at = 0;
  let worst = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  return at;
}

/** "ai.deltac PyramidConvBlock has no onnxruntime kernel …" when onnxruntime does not know an operator of the region. */
function missingKernel(e: unknown): string | null {
  const m = missingKernelOp(e);
  if (!m) return null;
  const op = m.domain ? `${m.domain} ${m.op}` : m.op;
  return `onnxruntime has no kernel for ${op}${op.startsWith('ai.deltac') ? ' (--emit fused keeps it for runtimes with the generated kernels, and the model carries no function for it)' : ''}`;
}

export function fmt(x: number): string {
  return x === 0 ? '0' : x.toExponential(1);
}
