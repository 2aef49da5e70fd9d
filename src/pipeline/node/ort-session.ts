/** onnxruntime-node sessions as the pipeline's `ModelSession` (CPU, like `deltac verify`). */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { OrtModel } from '../../runtime/onnxruntime.js';
import { type ModelSession, ortModelSession } from '../session.js';

export interface OrtSessionOptions {
  threads?: number;
  /** Folder the model's external data resolves against when it is given as bytes. */
  externalDataFolder?: string;
}

/** Opens `file` (or `bytes`, with `file` naming them) in onnxruntime-node; `label` names it in messages. */
export async function openOrtSession(label: string, file: string, options: OrtSessionOptions = {}, bytes?: Uint8Array): Promise<ModelSession> {
  const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 8));
  const model = await OrtModel.load(file, { threads, externalDataFolder: options.externalDataFolder }, bytes);
  const session = { inputMetadata: model.inputMetadata, outputNames: model.outputNames, run: (feeds: Record<string, ort.Tensor>) => model.runTensors(feeds), release: () => model.release() };
  return ortModelSession(label, session, (t) => new ort.Tensor(t.dtype, t.data, t.dims));
}
