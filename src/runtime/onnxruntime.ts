/**
 * Running models with onnxruntime-node (CPU), used by `deltac verify`, the tests
 * and the benchmarks.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { DeltacError } from '../ir/errors.js';
import { type NpyArray, readNpy } from './npy.js';

export { compareArrays } from './compare.js';

export type Feeds = Record<string, NpyArray>;
export type Outputs = Record<string, { data: Float32Array; dims: number[] }>;

export interface SessionOptions {
  threads?: number;
  /** onnxruntime graph optimizations (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Let idle intra-op threads spin between parallel sections (onnxruntime's own
   * default). Off by default here: onnxruntime-node runs the session on a libuv
   * thread, and on small machines (2 cores) spinning threads take the cores the
   * computation needs — a ΔConvBlock layer measured 26 ms median with spinning
   * and 7 ms without.
   */
  spinning?: boolean;
  /** Folder external-data locations resolve against when the model is given as bytes. */
  externalDataFolder?: string;
  /** Pre-pack weights for faster GEMMs (default true; off keeps a second copy of the weights out of memory). */
  prepacking?: boolean;
  /**
   * onnxruntime's CPU arena and memory patterns (default true). Off, each tensor is
   * freed after its last reader: lower peak memory over runs on several inputs.
   */
  memoryArena?: boolean;
  /** Log nothing below fatal (errors still reach the caller as exceptions); for runs that may fail by design. */
  quiet?: boolean;
}

export class OrtModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly file: string,
  ) {}

  /** Loads a model file, or serialized bytes (`file` then names them in messages). */
  static async load(file: string, options: SessionOptions = {}, bytes?: Uint8Array): Promise<OrtModel> {
    const session: Record<string, unknown> = options.spinning ? {} : { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } };
    if (options.externalDataFolder) session.model_external_initializers_file_folder_path = path.resolve(options.externalDataFolder);
    if (options.prepacking === false) session.disable_prepacking = '1';
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      intraOpNumThreads: options.threads ?? 2,
      interOpNumThreads: 1,
      graphOptimizationLevel: options.optimization ?? 'all',
      logSeverityLevel: options.quiet ? 4 : 3,
      ...(options.memoryArena === false ? { enableCpuMemArena: false, enableMemPattern: false } : {}),
      ...(Object.keys(session).length ? { extra: { session } } : {}),
    };
    try {
      const created = bytes ? await ort.InferenceSession.create(bytes, sessionOptions) : await ort.InferenceSession.create(path.resolve(file), sessionOptions);
      return new OrtModel(created, file);
    } catch (e) {
      throw new DeltacError('DELTAC_E_RUNTIME', `onnxruntime cannot load "${file}": ${(e as Error).message}`, undefined, { cause: e });
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** The inputs as onnxruntime declares them (element type, dims with symbolic names). */
  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.session.inputMetadata;
  }

  async run(feeds: Feeds): Promise<Outputs> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const a = feeds[name];
      if (!a) throw new DeltacError('DELTAC_E_RUNTIME', `no input given for "${name}" of ${this.file}`);
      inputs[name] = toOrtTensor(a);
    }
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(inputs);
    } catch (e) {
      throw new DeltacError('DELTAC_E_RUNTIME', `onnxruntime failed to run "${this.file}": ${(e as Error).message}`, undefined, { cause: e });
    }
    const out: Outputs = {};
    for (const [name, t] of Object.entries(result)) {
      const tensor = t as ort.Tensor;
      out[name] = { data: Float32Array.from(tensor.data as Float32Array), dims: [...tensor.dims] };
    }
    return out;
  }

  /** Runs on onnxruntime tensors as they are (any element type); returns the named outputs, or all. */
  async runTensors(inputs: Record<string, ort.Tensor>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    try {
      return (await (outputs ? this.session.run(inputs, outputs) : this.session.run(inputs))) as Record<string, ort.Tensor>;
    } catch (e) {
      throw new DeltacError('DELTAC_E_RUNTIME', `onnxruntime failed to run "${this.file}": ${(e as Error).message}`, undefined, { cause: e });
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function toOrtTensor(a: NpyArray): ort.Tensor {
  switch (a.dtype) {
    case 'float32':
      return new ort.Tensor('float32', a.data as Float32Array, a.shape);
    case 'float64':
      return new ort.Tensor('float64', a.data as Float64Array, a.shape);
    case 'int64':
      return new ort.Tensor('int64', a.data as BigInt64Array, a.shape);
    case 'int32':
      return new ort.Tensor('int32', a.data as Int32Array, a.shape);
    case 'bool':
      return new ort.Tensor('bool', a.data as Uint8Array, a.shape);
    default:
      return new ort.Tensor('uint8', a.data as Uint8Array, a.shape);
  }
}

/**
 * Reads inputs named `in<k>.<input>.npy` (the shared fixtures' layout) or
 * `<input>.npy` from a folder. Returns one feed set per prefix k (or one set).
 */
export function readInputFolder(dir: string): Map<string, Feeds> {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.npy'));
  } catch {
    throw new DeltacError('DELTAC_E_FILE_NOT_FOUND', `input folder "${dir}" does not exist`);
  }
  const sets = new Map<string, Feeds>();
  for (const f of files.sort()) {
    const m = /^(in\d+)\.(.+)\.npy$/.exec(f);
    const key = m ? m[1]! : 'in';
    const name = m ? m[2]! : f.slice(0, -4);
    if (/^out\d*\./.test(f)) continue;
    const feeds = sets.get(key) ?? {};
    feeds[name] = readNpy(path.join(dir, f));
    sets.set(key, feeds);
  }
  return sets;
}

/** The first line of onnxruntime's own message: OrtModel's wrapper (its `cause`'s holder) says which file, the caller says which model. */
export function messageOf(e: unknown): string {
  const inner = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  return (inner instanceof Error ? inner.message : String(inner)).split('\n')[0]!.trim();
}

/**
 * The operator onnxruntime says it has no kernel (or function) for, or null: `domain`
 * when the message names it ("ai.deltac:PyramidConvBlock(1) is not a registered
 * function/op"), null when it names the op alone ("Could not find an implementation for X(1)").
 */
export function missingKernelOp(e: unknown): { domain: string | null; op: string } | null {
  const msg = messageOf(e);
  const registered = /(?:^|\s)([\w.]+):(\w+)\(-?\d+\) is not a registered function\/op/.exec(msg);
  if (registered) return { domain: registered[1]!, op: registered[2]! };
  const notFound = /Could not find an implementation for (\w+)\((\d+)\)/.exec(msg);
  return notFound ? { domain: null, op: notFound[1]! } : null;
}
