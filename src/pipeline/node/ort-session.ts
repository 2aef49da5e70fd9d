/** onnxruntime-node sessions as the pipeline's `ModelSession` (CPU, like `deltac verify`). */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { OrtModel } from '../../runtime/onnxruntime.js';
import type { ModelSession, SessionInput, TensorData, TensorDtype } from '../session.js';

const TENSOR_TYPES: readonly string[] = ['float32', 'float16', 'int64', 'int32'] satisfies TensorDtype[];

export interface OrtSessionOptions {
  threads?: number;
  /** Folder the model's external data resolves against when it is given as bytes. */
  externalDataFolder?: string;
}

/** Opens `file` (or `bytes`, with `file` naming them) in onnxruntime-node; `label` names it in messages. */
export async function openOrtSession(label: string, file: string, options: OrtSessionOptions = {}, bytes?: Uint8Array): Promise<ModelSession> {
  const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 8));
  const model = await OrtModel.load(file, { threads, externalDataFolder: options.externalDataFolder }, bytes);
  const inputs: SessionInput[] = model.inputMetadata.map((m) => ({
    name: m.name,
    dtype: m.isTensor ? m.type : 'non-tensor',
    dims: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) : [],
  }));
  return {
    label,
    inputs,
    outputNames: model.outputNames,
    async run(feeds) {
      const tensors: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.dtype, t.data, t.dims);
      const result = await model.runTensors(tensors);
      const out: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(result)) {
        if (!TENSOR_TYPES.includes(t.type)) continue;
        out[name] = { dtype: t.type as TensorDtype, dims: [...t.dims], data: t.data as TensorData['data'] };
      }
      return out;
    },
    release: () => model.release(),
  };
}
