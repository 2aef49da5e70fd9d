/**
 * What the pipeline needs of a runtime: a loaded model that runs on named tensors.
 * onnxruntime-node (`node/ort-session.ts`) and onnxruntime-web (the browser page)
 * each adapt their InferenceSession to it, so that the denoising loop, the text
 * encoding and the decoding run unchanged in both. Tensors are typed arrays with
 * dims; float16 travels as its bits in a Uint16Array, as both runtimes take it.
 */
import { DeltacError } from '../ir/errors.js';
import { float32ToHalfArray, halfToFloat32Array } from '../ir/half.js';

export type TensorDtype = 'float32' | 'float16' | 'int64' | 'int32';

export interface TensorData {
  dtype: TensorDtype;
  dims: number[];
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array;
}

/** A model input as the runtime declares it (symbolic dims are strings). */
export interface SessionInput {
  name: string;
  dtype: string;
  dims: readonly (number | string)[];
}

export interface ModelSession {
  /** Names the model in messages (`unet/model.onnx`). */
  readonly label: string;
  readonly inputs: readonly SessionInput[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

/**
 * What `ortModelSession` needs of an onnxruntime InferenceSession: onnxruntime-node's and
 * onnxruntime-web's share this API (onnxruntime-common), so one adapter serves both.
 */
export interface OrtSessionLike<T extends OrtTensorLike> {
  readonly inputMetadata: readonly ({ name: string; isTensor: true; type: string; shape: readonly (number | string)[] } | { name: string; isTensor: false })[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, T>>;
  release(): Promise<void>;
}

export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  /** The values on the CPU (a GPU tensor is read back; `release` frees its GPU copy). */
  getData(release?: boolean): Promise<unknown>;
}

const TENSOR_TYPES: readonly string[] = ['float32', 'float16', 'int64', 'int32'] satisfies TensorDtype[];

/**
 * An onnxruntime session as a `ModelSession`: `tensor` makes the runtime's tensor from
 * `TensorData`. Outputs are read back to the CPU inside `run`, so a step's time is the
 * model's whole run, GPU work included; outputs of other types are left out.
 */
export function ortModelSession<T extends OrtTensorLike>(label: string, session: OrtSessionLike<T>, tensor: (t: TensorData) => T): ModelSession {
  const inputs: SessionInput[] = session.inputMetadata.map((m) => ({
    name: m.name,
    dtype: m.isTensor ? m.type : 'non-tensor',
    dims: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) : [],
  }));
  return {
    label,
    inputs,
    outputNames: session.outputNames,
    async run(feeds) {
      const tensors: Record<string, T> = {};
      for (const [name, t] of Object.entries(feeds)) tensors[name] = tensor(t);
      const result = await session.run(tensors);
      const out: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(result)) {
        if (!TENSOR_TYPES.includes(t.type)) continue;
        out[name] = { dtype: t.type as TensorDtype, dims: [...t.dims], data: (await t.getData(true)) as TensorData['data'] };
      }
      return out;
    },
    release: () => session.release(),
  };
}

/** Opens a component's model when the pipeline needs it (and releases it after). */
export type SessionLoader = () => Promise<ModelSession>;

export function float32Tensor(data: Float32Array, dims: number[]): TensorData {
  return { dtype: 'float32', data, dims };
}

/** A float tensor's values as float32 (float16 widened); other types are an error of the model. */
export function toFloat32(t: TensorData, what: string): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype === 'float16') return halfToFloat32Array(t.data as Uint16Array);
  throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${what} is ${t.dtype}; a float tensor (float32 or float16) was expected`);
}

/** float32 values in the element type a model input declares (`float16`, `int64`, …). */
export function castFloat32(values: Float32Array, dims: number[], dtype: string, what: string): TensorData {
  switch (dtype) {
    case 'float32':
      return { dtype, dims, data: values };
    case 'float16':
      return { dtype, dims, data: float32ToHalfArray(values) };
    case 'int64':
      return { dtype, dims, data: BigInt64Array.from(values, (v) => BigInt(Math.round(v))) };
    case 'int32':
      return { dtype, dims, data: Int32Array.from(values, (v) => Math.round(v)) };
    default:
      throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${what} is declared as ${dtype}; deltac feeds float32, float16, int64 or int32`);
  }
}

/** The declared input `name` of a session, or a DELTAC_E_UNSUPPORTED_PIPELINE naming what it has. */
export function inputOf(session: ModelSession, name: string): SessionInput {
  const input = session.inputs.find((i) => i.name === name);
  if (!input) {
    throw new DeltacError(
      'DELTAC_E_UNSUPPORTED_PIPELINE',
      `${session.label} has no input "${name}" (it has ${session.inputs.map((i) => `"${i.name}"`).join(', ')}); deltac runs the inputs optimum and diffusers export`,
    );
  }
  return input;
}

/** The output `name`, or the first one (pipelines read `[0]`). */
export function outputOf(session: ModelSession, outputs: Record<string, TensorData>, name?: string): TensorData {
  const key = name && outputs[name] ? name : session.outputNames[0]!;
  const t = outputs[key];
  if (!t) throw new DeltacError('DELTAC_E_RUNTIME', `${session.label} gave no output "${name ?? key}"`);
  return t;
}
