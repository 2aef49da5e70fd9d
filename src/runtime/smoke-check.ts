/**
 * The whole-model run after a conversion (`deltac convert --check full`; the default
 * check goes layer by layer: layer-check.ts): the original and the converted model run once
 * in onnxruntime-node (CPU) on the same seeded inputs at a small resolution, and
 * the converted model must load, run, give outputs of the original's shapes, and
 * give finite outputs wherever the original's are finite. It is not a numerical
 * comparison (the ΔConvBlocks compute something else than the attention they
 * replace); it catches a model that cannot load, cannot run, or renders NaN.
 *
 * Inputs come from the graph's declared input types, symbolic dims bound to small
 * legal values (smoke-inputs.ts): the latent [B, C, H, W] gets B = 1, H = W = 32 (a
 * UNet's lowest level is then 4×4 after three ×2 downsamplings; 64 and 16 are tried
 * next when the original model refuses 32), text inputs 8 tokens, and the dims of
 * other inputs (ControlNet residuals, one size per UNet level) are derived by shape
 * inference from the ops that consume them. Static dims (PixArt's fixed latent size)
 * stay as declared. Float inputs are standard normal, timesteps uniform in [0, 1000),
 * integers in [0, 1000).
 *
 * A model the CPU provider cannot load (onnxruntime-optimized CUDA graphs with
 * com.microsoft NhwcConv, GroupNorm …, or an ai.deltac.PyramidConvBlock the model
 * does not define as a local function) is skipped with the operator's name, not
 * failed. `--emit fused` output defines it, so it runs (onnxruntime inlines the body).
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { DataType, dtypeName } from '../ir/dtype.js';
import { float32ToHalfArray } from '../ir/half.js';
import { DeltacError, isDeltacError } from '../ir/errors.js';
import { calledFunction, indexFunctions } from '../ir/function.js';
import type { Model } from '../ir/model.js';
import { sameFile } from '../onnx/save.js';
import { PYRAMID_CONV_DOMAIN } from '../passes/delta-conv/op.js';
import { describeNonFinite, scanNonFinite, unflattenIndex } from '../weights/nonfinite.js';
import { OrtModel, messageOf, missingKernelOp } from './onnxruntime.js';
import { normalSampler, seededRandom } from './seeded-random.js';
import { type PlannedInput, planInputs } from './smoke-inputs.js';

export interface SmokeCheckOptions {
  /** Seed of the random inputs (default 1). */
  seed?: number;
  /** Sizes tried, in order, for symbolic spatial dims (default 32, 64, 16). */
  spatialSizes?: number[];
  /** Text tokens for a symbolic sequence dim (default 8). */
  sequence?: number;
  /** onnxruntime intra-op threads (default: the machine's cores, at most 8). */
  threads?: number;
}

export interface SmokeInput {
  name: string;
  dtype: string;
  dims: number[];
}

export interface SmokeOutput {
  name: string;
  dims: number[];
  /** Non-finite elements in the converted model's output / the original's. */
  nonFinite: number;
  originalNonFinite: number;
}

export interface SmokeCheckResult {
  status: 'passed' | 'skipped';
  /** Why the check was skipped. */
  reason?: string;
  inputs: SmokeInput[];
  outputs: SmokeOutput[];
  /** Wall time of the whole check (both models loaded and run). */
  ms: number;
  /** The conversion replaced the original model file (`--force`): only the converted model ran, and its outputs had to be finite. */
  replacedOriginal?: boolean;
}

const DEFAULT_SIZES = [32, 64, 16];

/** A check that did not run, and why. */
export function skippedCheck(reason: string, ms = 0): SmokeCheckResult {
  return { status: 'skipped', reason, inputs: [], outputs: [], ms };
}

/**
 * Runs `original` and `converted` (model files) once on the same seeded inputs.
 * `model` is the converted model in memory (its input types, node domains and
 * external data; `loadModel(converted)` when there is none at hand). Throws
 * DELTAC_E_CHECK_FAILED when the converted model fails; returns `skipped` with a
 * reason when the check cannot run. When `converted` is `original` (the conversion
 * replaced it, `--force`), there is nothing to compare with: the converted model must
 * load, run, and give finite outputs.
 */
export async function smokeCheck(original: string, converted: string, model: Model, options: SmokeCheckOptions = {}): Promise<SmokeCheckResult> {
  const started = performance.now();
  const skip = (reason: string) => skippedCheck(reason, performance.now() - started);
  const functions = indexFunctions(model.functions);
  const fused = model.graph.nodes.find((n) => n.domain === PYRAMID_CONV_DOMAIN && !calledFunction(functions, n));
  if (fused) return skip(`${PYRAMID_CONV_DOMAIN} ${fused.opType} has no CPU kernel and the model does not define it as a function (only runtimes with the generated kernels run it)`);
  const missing = missingExternalData(model);
  if (missing.length) return skip(`the model's weights are missing (${missing.length} external-data file${missing.length > 1 ? 's' : ''}, e.g. "${missing[0]}")`);
  const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 8));

  const inPlace = sameFile(original, converted);
  let inputs: SmokeInput[] = [];
  const fail = (stage: string, why: string): never => {
    throw new DeltacError('DELTAC_E_CHECK_FAILED', `the converted model ${why}`, { stage, inputs });
  };

  // 1. The original model (in place: the converted one) at the first size it accepts.
  let reference: OrtModel;
  try {
    reference = await OrtModel.load(original, { threads, quiet: true });
  } catch (e) {
    const why = missingKernel(e, model);
    if (why) return skip(why);
    return inPlace ? fail('load', `does not load in onnxruntime: ${messageOf(e)}`) : skip(`the original model does not load in onnxruntime (${messageOf(e)})`);
  }
  let feeds: Record<string, ort.Tensor> | undefined;
  let expected: Record<string, ort.Tensor> = {};
  const tried: string[] = [];
  let guessed: string[] = [];
  try {
    for (const size of options.spatialSizes ?? DEFAULT_SIZES) {
      const plan = planInputs(model, size, options.sequence ?? 8);
      if (typeof plan === 'string') return skip(plan);
      guessed = plan.filter((p) => p.guessed).map((p) => `"${p.name}"`);
      const candidate = makeFeeds(plan, options.seed ?? 1);
      try {
        expected = await reference.runTensors(candidate);
        feeds = candidate;
        inputs = plan.map((p) => ({ name: p.name, dtype: dtypeName(p.dtype), dims: p.dims }));
        break;
      } catch (e) {
        tried.push(`${size}: ${messageOf(e)}`);
        if (!plan.some((p) => p.spatial)) break; // nothing to vary
      }
    }
  } finally {
    await reference.release();
  }
  if (!feeds) {
    const why = `on the inputs tried (${tried.join('; ')})${guessed.length ? `; the spatial dims of ${guessed.join(', ')} could not be derived from the graph (they were given the size tried)` : ''}`;
    return inPlace ? fail('run', `does not run in onnxruntime ${why}`) : skip(`the original model does not run ${why}`);
  }
  // In place, every output must be finite (what the original gave is gone).
  const originalOutputs = Object.fromEntries(Object.entries(expected).map(([k, t]) => [k, { dims: [...t.dims], nonFinite: inPlace ? 0 : (nonFiniteOf(t)?.count ?? 0) }]));

  // 2. The converted model on the same inputs (in place: it already ran).
  let got: Record<string, ort.Tensor> = inPlace ? expected : {};
  expected = {};
  if (!inPlace) {
    let candidate: OrtModel;
    try {
      candidate = await OrtModel.load(converted, { threads, quiet: true });
    } catch (e) {
      return fail('load', `does not load in onnxruntime: ${messageOf(e)}`);
    }
    try {
      got = await candidate.runTensors(feeds);
    } catch (e) {
      return fail('run', `does not run in onnxruntime on ${formatInputs(inputs)}: ${messageOf(e)}`);
    } finally {
      await candidate.release();
    }
  }
  const outputs: SmokeOutput[] = [];
  for (const [name, ref] of Object.entries(originalOutputs)) {
    const t = got[name];
    if (!t) return fail('outputs', `has no output "${name}" (the original has)`);
    const dims = [...t.dims];
    if (dims.join(',') !== ref.dims.join(',')) return fail('outputs', `gives output "${name}" as [${dims.join(', ')}], the original [${ref.dims.join(', ')}], on ${formatInputs(inputs)}`);
    const bad = nonFiniteOf(t);
    if (bad && ref.nonFinite === 0) {
      return fail(
        'nonfinite',
        `gives ${describeNonFinite(bad)} in output "${name}" (of ${t.size}, the first at [${unflattenIndex(bad.first, dims).join(', ')}]) ${inPlace ? 'and replaced the original model (--force), so there is none to compare with' : "where the original model's output is finite"}, on ${formatInputs(inputs)}`,
      );
    }
    outputs.push({ name, dims, nonFinite: bad?.count ?? 0, originalNonFinite: ref.nonFinite });
  }
  return { status: 'passed', inputs, outputs, ms: performance.now() - started, ...(inPlace ? { replacedOriginal: true } : {}) };
}

/** External-data files the model's initializers reference that cannot be opened. */
function missingExternalData(model: Model): string[] {
  const missing = new Set<string>();
  const seen = new Set<string>();
  for (const v of model.graph.initializers.values()) {
    const s = v.initializer?.storage;
    if (s?.kind !== 'external' || seen.has(s.source.description)) continue;
    seen.add(s.source.description);
    try {
      s.source.size();
    } catch {
      missing.add(s.location);
    }
  }
  return [...missing];
}

/** "sample 1×4×32×32, timestep 1, …" */
export function formatInputs(inputs: SmokeInput[]): string {
  return inputs.map((i) => `${i.name} ${i.dims.length ? i.dims.join('×') : 'scalar'}`).join(', ');
}

/** Bytes of the weights onnxruntime would hold for `model` (all initializers). */
function weightBytes(model: Model): number {
  let n = 0;
  for (const v of model.graph.initializers.values()) n += v.initializer?.byteLength ?? 0;
  return n;
}

/**
 * Why the whole-model run should not run on this machine, or null: it holds one
 * model's weights at a time, plus onnxruntime's pre-packed copies, so it runs when
 * twice the weights fit in the memory available now.
 */
export function memoryReason(model: Model, available = os.freemem()): string | null {
  const bytes = weightBytes(model);
  if (2 * bytes <= available) return null;
  const gb = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  return `the weights (${gb(bytes)}) need about ${gb(2 * bytes)} of memory and ${gb(available)} is available`;
}

// ---- inputs ------------------------------------------------------------------------

/** Seeded inputs of the planned shapes: floats standard normal, timesteps and integers uniform in [0, 1000). */
export function makeFeeds(plan: PlannedInput[], seed: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, p] of plan.entries()) {
    const random = seededRandom(seed * 1000 + k);
    const normal = normalSampler(random);
    const n = p.dims.reduce((a, d) => a * d, 1);
    const floats = () => Float32Array.from({ length: n }, () => (p.timestep ? Math.floor(random() * 1000) : normal()));
    switch (p.dtype) {
      case DataType.FLOAT:
        feeds[p.name] = new ort.Tensor('float32', floats(), p.dims);
        break;
      case DataType.DOUBLE:
        feeds[p.name] = new ort.Tensor('float64', Float64Array.from(floats()), p.dims);
        break;
      case DataType.FLOAT16:
        feeds[p.name] = new ort.Tensor('float16', float32ToHalfArray(floats()), p.dims);
        break;
      case DataType.INT64:
        feeds[p.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(random() * 1000))), p.dims);
        break;
      case DataType.INT32:
        feeds[p.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(random() * 1000)), p.dims);
        break;
      case DataType.BOOL:
        feeds[p.name] = new ort.Tensor('bool', Uint8Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0)), p.dims);
        break;
      default:
        throw new Error(`smoke check: no feed for element type ${dtypeName(p.dtype)}`); // planInputs admits only FEEDABLE types
    }
  }
  return feeds;
}

// ---- outputs and errors ------------------------------------------------------------

const ORT_FLOATS: Record<string, DataType> = { float32: DataType.FLOAT, float16: DataType.FLOAT16, float64: DataType.DOUBLE, bfloat16: DataType.BFLOAT16 };

function nonFiniteOf(t: ort.Tensor) {
  const dtype = ORT_FLOATS[t.type];
  if (dtype === undefined) return null;
  const data = t.data as ArrayBufferView;
  return scanNonFinite(data, dtype);
}

/** "com.microsoft NhwcConv has no CPU kernel" when onnxruntime says it has no implementation for an operator. */
function missingKernel(e: unknown, model: Model): string | null {
  const m = missingKernelOp(e);
  if (!m) return null;
  const domain = m.domain ?? model.graph.nodes.find((n) => n.opType === m.op)?.domain ?? '';
  return `${domain && domain !== 'ai.onnx' ? `${domain} ` : ''}${m.op} has no CPU kernel`;
}
