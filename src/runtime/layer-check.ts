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
 * are read, once, one layer at a time. The work is split so that each weight byte is
 * touched few times: this thread reads a layer's constants and runs its region in
 * onnxruntime (one session per distinct region structure, the weights fed as inputs:
 * regionModel's weightsAsInputs), then hands the constants (not a copy) to the
 * reference pool's worker, which unpacks them, compares them with the checkpoint
 * (bytes first: weight-compare.ts) and computes the reference, while this thread
 * reads and runs the next layer. Run while the model is written (`whenReadable`), it
 * reads each layer once the writer has put it in the file.
 */
import { createHash } from 'node:crypto';
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
import { type BlockConstants, blockConstants } from '../reference/block-weights.js';
import { type TokenWindow, pyramidReads, windowTokens } from '../reference/pyramid-conv.js';
import { Checkpoint } from '../weights/checkpoint.js';
import { scanNonFinite } from '../weights/nonfinite.js';
import { compareArrays } from './compare.js';
import { type LayerRegion, cutLayerRegion, regionModel } from './layer-region.js';
import { OrtModel, messageOf, missingKernelOp } from './onnxruntime.js';
import { type GraphSnapshot, type OutsideComparison, compareOutsideNodes } from './outside-nodes.js';
import { type ReferencePool, type ReferenceResult, referencePool } from './reference-pool.js';
import { normalSampler, seededRandom } from './seeded-random.js';
import { opensByPath } from './weight-compare.js';

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
  /**
   * Resolves once the given tensors of `converted` can be read as saved: a check run
   * while the model is being written waits for each layer's bytes (saveModelAsync's
   * `whenWritten`), so that it reads them from the file.
   */
  whenReadable?: (tensors: Tensor[]) => Promise<void>;
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
  /** onnxruntime sessions the layers ran in: one per distinct region structure (their weights fed as inputs). */
  sessions: number;
  /** Wall time of the whole check. */
  ms: number;
}

/** max|Δ| / max|reference| allowed per block type: the reference accumulates in float32 from the same rounded inputs and weights. */
export const OUTPUT_TOLERANCE: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 1e-4, [DataType.FLOAT16]: 1e-2, [DataType.BFLOAT16]: 5e-2 };
/** Element-wise |saved − checkpoint| / |checkpoint| allowed: a rounding or two of the type (the simple gate's B half is stored times √(Ci/2)). */
export const WEIGHT_TOLERANCE: Partial<Record<DataType, number>> = { [DataType.FLOAT]: 5e-7, [DataType.FLOAT16]: 2e-3, [DataType.BFLOAT16]: 1.6e-2 };

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
  // (a checkpoint given as an object that is not its file's tensors is compared on this thread)
  const pool = referencePool(checkpoint !== undefined && !opensByPath(checkpoint));
  const sessions = new RegionSessions(threads);
  let behind: Promise<LayerCheck> | null = null;
  try {
    for (const [index, layer] of provenance.entries()) {
      const region = cutLayerRegion(saved, layer);
      regions.push(region);
      await options.whenReadable?.(regionTensors(region));
      const ran = runLayer(saved, region, checkpoint, { seed: (options.seed ?? 1) * 7919 + index, sessions }, pool);
      // (a layer that fails here fails after the one still behind it has been judged)
      const done = ran.then((finish) => finish());
      done.catch(() => {}); // (awaited below, in order)
      if (behind) layers.push(await behind);
      behind = done;
    }
    if (behind) layers.push(await behind);
  } finally {
    await pool.close();
    await sessions.release();
  }
  let outside: OutsideComparison = { skipped: 'no original model given' };
  if (typeof original === 'string' && saved.sourcePath && sameFile(original, saved.sourcePath)) {
    outside = { skipped: 'the converted model replaced the original (--force)' };
  } else if (original !== null) {
    const before = typeof original === 'string' ? loadModel(original, { missingExternalData: 'warn' }) : original;
    outside = compareOutsideNodes(before, saved, regions);
  }
  return { mode: 'layers', status: 'passed', layers, outside, sessions: sessions.size, ms: performance.now() - started };
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
  o: { seed: number; sessions: RegionSessions },
  pool: ReferencePool,
): Promise<() => Promise<LayerCheck>> {
  // The region's constants are read from the file once, for its weights and its onnxruntime model both, and let go after.
  const held = readOnce(regionTensors(region));
  try {
    return await runRegion(saved, region, checkpoint, o, pool, held.fresh);
  } finally {
    held.release();
  }
}

/**
 * Holds the bytes of `tensors` stored in files in memory until `release` is called;
 * `fresh`: the buffers read for them (nothing else refers to them).
 */
function readOnce(tensors: Tensor[]): { fresh: Set<ArrayBufferLike>; release: () => void } {
  const stored = new Map<Tensor, Tensor['storage']>();
  const fresh = new Set<ArrayBufferLike>();
  for (const t of tensors) {
    if (t.storage.kind !== 'external' || stored.has(t)) continue;
    stored.set(t, t.storage);
    const bytes = t.bytes();
    if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) fresh.add(bytes.buffer);
    t.storage = { kind: 'inline', bytes, encoding: 'raw' };
  }
  return {
    fresh,
    release: () => {
      for (const [t, s] of stored) t.storage = s;
    },
  };
}

async function runRegion(
  saved: Model,
  region: LayerRegion,
  checkpoint: Checkpoint | undefined,
  o: { seed: number; sessions: RegionSessions },
  pool: ReferencePool,
  fresh: Set<ArrayBufferLike>,
): Promise<() => Promise<LayerCheck>> {
  const t0 = performance.now();
  const { layer, dtype } = region;
  const name = layer.modulePath;
  const fail = (stage: string, why: string): never => {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `layer ${name}: ${why}`, { layer: name, stage });
  };
  /** A weight that cannot be read back (a missing or misshapen constant) fails the layer at 'weights'. */
  const unreadable = (e: unknown): never => {
    if (isDeltacError(e) && (e.code === 'DELTAC_E_UNSUPPORTED_MODEL' || e.code === 'DELTAC_E_TENSOR_DATA')) return fail('weights', e.message.replace(`layer ${name}: `, ''));
    throw e;
  };
  // The block's constants as read; they are unpacked (and compared with the checkpoint) where
  // the reference is computed, the pool's worker, and handed to it rather than copied.
  let constants: BlockConstants;
  try {
    constants = blockConstants(region.nodes, name);
  } catch (e) {
    return unreadable(e);
  }
  const weights = { constants, shape: layer, layer: name };
  const transfer = [...new Set(Object.values('slots' in constants ? constants.slots : constants.labels).map((r) => r?.bytes.buffer))].filter(
    (b): b is ArrayBuffer => b instanceof ArrayBuffer && fresh.has(b),
  );
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
  // The weights are compared with the checkpoint where the reference is computed (the pool's
  // worker), and that verdict comes first: a layer whose weights differ fails for them, whatever
  // onnxruntime then made of it.
  const params = { channels: layer.channels, inner: layer.inner, kernel: layer.kernel, scales: layer.scales, gate: layer.gate };
  const compare = checkpoint ? { checkpoint: pool.where === 'worker' ? checkpoint.path : checkpoint, layer, dtype } : undefined;
  /** The worker's verdict on the weights: an error unpacking them, a NaN or ±Inf, a difference from the checkpoint. */
  const judgeWeights = async (job: Promise<ReferenceResult>): Promise<ReferenceResult> => {
    const r = await job.catch(unreadable);
    if (r.nonFiniteWeight) fail('weights', `its saved ${r.nonFiniteWeight} is not finite`);
    const diff = r.weightDiff;
    if (!diff) return r;
    result.weightError = diff.error;
    if (!(diff.error <= result.weightTolerance)) {
      fail('weights', `its saved ${diff.where} is ${diff.saved}, the checkpoint's ${diff.expected} (relative difference ${fmt(diff.error)} > ${fmt(result.weightTolerance)} for ${dtypeName(dtype)})`);
    }
    return r;
  };
  const weightsOnly = () => judgeWeights(pool.compute({ weights, params, runs: [], compare }, transfer));
  /** Fails at `stage`, unless the weights fail first. */
  const failAfterWeights = async (stage: string, why: string): Promise<never> => {
    await weightsOnly();
    return fail(stage, why);
  };
  /** What is left when onnxruntime cannot run the layer: its weights. */
  const notRun = (why: string) => {
    result.notRun = why;
    result.ms = performance.now() - t0;
    const judged = weightsOnly();
    judged.catch(() => {}); // (awaited when the layer is taken)
    return async () => (await judged, result);
  };
  const sizes = layerSizes(layer);
  if (dtype !== DataType.FLOAT && dtype !== DataType.FLOAT16) return notRun(`onnxruntime-node has no ${dtypeName(dtype)} tensors`);
  // One session per distinct region structure, the weights fed as inputs; where that session
  // cannot load or run, the region with the layer's own names and constants, in a session of its
  // own, says what onnxruntime makes of it.
  const shared = regionModel(saved, region, { weightsAsInputs: true });
  let attempt: Attempt;
  try {
    const session = await o.sessions.get(`layer ${name}`, serializeModel(shared.model));
    attempt = await runSizes(session, shared, weightFeeds(shared.weights), sizes, layer, dtype, o.seed);
  } catch (e) {
    attempt = { stage: 'load', why: messageOf(e) };
  }
  if ('stage' in attempt) {
    const own = regionModel(saved, region);
    let session: OrtModel;
    try {
      session = await OrtModel.load(`layer ${name}`, SESSION_OPTIONS(o.sessions.threads), serializeModel(own.model));
    } catch (e) {
      const missing = missingKernel(e);
      if (missing) return notRun(missing);
      return failAfterWeights('load', `onnxruntime cannot load its region: ${messageOf(e)}`);
    }
    try {
      attempt = await runSizes(session, own, {}, sizes, layer, dtype, o.seed);
    } finally {
      await session.release();
    }
    if ('stage' in attempt) return failAfterWeights(attempt.stage, attempt.why);
  }
  const runs = attempt.runs;
  result.sizes.push(...runs.map((r) => formatSize(r.size)));
  const references = pool.compute({ weights, params, runs: runs.map(({ x, size }) => ({ x, size: { batch: size.batch, height: size.height, width: size.width }, window: size.window })), compare }, transfer);
  references.catch(() => {}); // (judged when the layer is taken)
  const ranMs = performance.now() - t0;
  return async () => {
    const t1 = performance.now();
    const { outputs } = await judgeWeights(references);
    let worst = 0;
    for (const [k, reference] of outputs.entries()) {
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

/**
 * One run per size: pre-packed weights and the fusions and layout changes of the higher
 * optimization levels (made for many runs) cost more than they save; the semantics are the same.
 */
const SESSION_OPTIONS = (threads: number) => ({ threads, quiet: true, prepacking: false, optimization: 'basic' as const });

/** The check's onnxruntime sessions, one per distinct region model (regionModel's weightsAsInputs), released at its end. */
class RegionSessions {
  private readonly byModel = new Map<string, Promise<OrtModel>>();

  constructor(readonly threads: number) {}

  get(label: string, model: Uint8Array): Promise<OrtModel> {
    const key = createHash('sha256').update(model).digest('hex');
    let session = this.byModel.get(key);
    if (!session) {
      session = OrtModel.load(label, SESSION_OPTIONS(this.threads), model);
      session.catch(() => {}); // (each layer that asks for it sees the failure)
      this.byModel.set(key, session);
    }
    return session;
  }

  /** Sessions made so far (released ones included). */
  get size(): number {
    return this.byModel.size;
  }

  async release(): Promise<void> {
    for (const s of this.byModel.values()) await s.then((m) => m.release(), () => {});
  }
}

/** The weights regionModel made inputs, as onnxruntime tensors over their bytes. */
function weightFeeds(weights: Map<string, Tensor>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of weights) {
    const b = t.bytes();
    /** The bytes as elements of `T` (copied first when they do not start on an element boundary). */
    const view = <T>(T: { BYTES_PER_ELEMENT: number; new (buffer: ArrayBufferLike, offset: number, length: number): T }): T => {
      const a = b.byteOffset % T.BYTES_PER_ELEMENT === 0 ? b : b.slice();
      return new T(a.buffer, a.byteOffset, t.elementCount);
    };
    // (float32 otherwise: a bfloat16 layer is not run)
    if (t.dtype === DataType.FLOAT16) feeds[name] = new ort.Tensor('float16', view(Uint16Array), t.dims);
    else if (t.dtype === DataType.DOUBLE) feeds[name] = new ort.Tensor('float64', view(Float64Array), t.dims);
    else feeds[name] = new ort.Tensor('float32', view(Float32Array), t.dims);
  }
  return feeds;
}

/** A region's runs at every size, or where onnxruntime failed. */
type Attempt = { runs: { x: Float32Array; size: Size; got: Float32Array }[] } | { stage: string; why: string };

async function runSizes(
  session: OrtModel,
  built: ReturnType<typeof regionModel>,
  weights: Record<string, ort.Tensor>,
  sizes: Size[],
  layer: ProvenanceLayer,
  dtype: DataType,
  seed: number,
): Promise<Attempt> {
  const runs: { x: Float32Array; size: Size; got: Float32Array }[] = [];
  for (const [k, size] of sizes.entries()) {
    const n = size.height * size.width;
    const x = seededTokens(size, layer, dtype, seed * 16 + k);
    const feeds: Record<string, ort.Tensor> = { ...weights, [built.inputs.tokens]: toOrt(x, dtype, [size.batch, n, layer.channels]) };
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
      return { stage: 'run', why: `onnxruntime cannot run its region on tokens ${formatSize(size)} (batch×H×W): ${messageOf(e)}` };
    }
    const expectDims = [size.batch, n, layer.channels];
    if ([...got.dims].join(',') !== expectDims.join(',')) {
      return { stage: 'outputs', why: `gives [${got.dims.join(', ')}] for tokens ${formatSize(size)} (batch×H×W), expected [${expectDims.join(', ')}]` };
    }
    const whole = fromOrt(got);
    const bad = scanNonFinite(whole, DataType.FLOAT);
    if (bad) {
      return { stage: 'nonfinite', why: `gives ${bad.count} NaN/Inf of ${whole.length} outputs on tokens ${formatSize(size)} (batch×H×W; the first at ${position(bad.first, size, layer.channels)}) where the reference ΔConvBlock's are finite` };
    }
    runs.push({ x, size, got: size.window ? windowTokens(whole, size, layer.channels, size.window) : whole });
  }
  return { runs };
}

// ---- weights -----------------------------------------------------------------------

/** The constants a layer's region reads. */
function regionTensors(region: LayerRegion): Tensor[] {
  const tensors: Tensor[] = [];
  for (const n of [...region.nodes, ...region.edges]) for (const v of n.inputs) if (v?.initializer) tensors.push(v.initializer);
  return tensors;
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
