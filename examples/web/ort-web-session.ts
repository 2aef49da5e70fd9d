/**
 * onnxruntime-web sessions as the pipeline's `ModelSession` (src/pipeline/session.ts),
 * as src/pipeline/node/ort-session.ts adapts onnxruntime-node's: the page's preview runs
 * the same text encoding, denoising loop and decoding as `deltac preview`.
 *
 * Outputs are read back to the CPU (`getData`) inside `run` (`ortModelSession`), so a
 * step's time is the UNet's whole run on the execution provider, GPU work included.
 */
import * as ort from 'onnxruntime-web';
import { type ModelSession, ortModelSession } from '../../src/pipeline/session.js';

export type ExecutionProvider = 'webgpu' | 'wasm';

/**
 * The tensor layout the WebGPU EP runs convolutions in. onnxruntime-web's default is NHWC;
 * the page asks for NCHW, since with NHWC onnxruntime-web 1.30 computes the self-attention
 * scale of sd-tiny-pipeline's mid block wrong (8 instead of 8^-1/4: a value of the
 * Shape → Sqrt → Div chain before it is read; the original image ends 1.4e-2 off diffusers'),
 * while NCHW reproduces it (README "In the browser"). `?layout=nhwc` on the page gives NHWC back.
 */
export type WebGpuLayout = 'NCHW' | 'NHWC';

/** An external-data file: the name the model gives it, and its bytes, Blob or URL. */
export type ExternalDataFile = { path: string; data: Uint8Array | Blob | string };

/** Opens a model (its bytes, and its external-data files by the names the model gives them) on `provider`. */
export async function openOrtWebSession(
  label: string,
  model: Uint8Array,
  provider: ExecutionProvider,
  externalData: ExternalDataFile[] = [],
  layout: WebGpuLayout = 'NCHW',
): Promise<ModelSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: [provider === 'webgpu' ? { name: 'webgpu', preferredLayout: layout } : provider], ...(externalData.length ? { externalData } : {}) });
  } catch (e) {
    throw new Error(`onnxruntime-web (${provider}) cannot load ${label}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return ortModelSession(label, session, (t) => new ort.Tensor(t.dtype, t.data, t.dims));
}
