/**
 * The denoising loop of diffusers' StableDiffusionPipeline / StableDiffusionXLPipeline:
 *
 *   scheduler.set_timesteps(steps)                     (before: the caller)
 *   latents = latents · init_noise_sigma
 *   for t in scheduler.timesteps:
 *     x   = concat([latents, latents]) with guidance, else latents
 *     x   = scheduler.scale_model_input(x, t)
 *     eps = unet(sample = x, timestep = [t], encoder_hidden_states, (text_embeds, time_ids))
 *     eps = eps_neg + scale · (eps_prompt − eps_neg)      with guidance
 *     latents = scheduler.step(eps, t, latents)
 *
 * The timestep goes in as the UNet declares it (int64, float32 or float16; shape [1]
 * as diffusers' ONNX pipeline feeds it, or scalar), the sample and conditioning in the
 * UNet's float type. A UNet exported with a fixed batch of 1 runs the two halves one
 * after the other. Arithmetic between runs is float32, as torch does it.
 */
import { DeltacError } from '../ir/errors.js';
import { type Conditioning, conditioningFeeds } from './prompt-encoding.js';
import type { Scheduler } from './schedulers/index.js';
import { type ModelSession, type TensorData, castFloat32, inputOf, outputOf, toFloat32 } from './session.js';

export interface StepRecord {
  /** 0-based step. */
  index: number;
  timestep: number;
  /** Wall time of the UNet run(s) of this step, ms. */
  unetMs: number;
  /** Latents after the step (a copy the caller may keep). */
  latents: Float32Array;
}

export interface DenoiseOptions {
  guidanceScale: number;
  /** Called after every step. */
  onStep?: (step: StepRecord) => void;
}

/** `[1]` of the timestep in the element type and rank the UNet declares. */
export function timestepFeed(unet: ModelSession, t: number): TensorData {
  const input = inputOf(unet, 'timestep');
  const dims = input.dims.length === 0 ? [] : input.dims.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const count = dims.reduce((a, b) => a * b, 1);
  const what = `${unet.label} input "timestep"`;
  switch (input.dtype) {
    case 'int64':
      // numpy's astype truncates, as diffusers' ONNX pipeline casts a float timestep
      return { dtype: 'int64', dims, data: new BigInt64Array(count).fill(BigInt(Math.trunc(t))) };
    case 'int32':
      return { dtype: 'int32', dims, data: new Int32Array(count).fill(Math.trunc(t)) };
    default:
      return castFloat32(new Float32Array(count).fill(t), dims, input.dtype, what);
  }
}

function sliceBatch(t: TensorData, index: number): TensorData {
  const row = t.data.length / t.dims[0]!;
  return { dtype: t.dtype, dims: [1, ...t.dims.slice(1)], data: t.data.subarray(index * row, (index + 1) * row) } as TensorData;
}

/** Runs the loop from `latents` (diffusers' `latents=`: not yet scaled by init_noise_sigma); returns the final latents. */
export async function denoise(
  unet: ModelSession,
  scheduler: Scheduler,
  conditioning: Conditioning,
  latents: Float32Array,
  latentDims: number[],
  options: DenoiseOptions,
): Promise<Float32Array> {
  const sample = inputOf(unet, 'sample');
  const batch = conditioning.batch;
  const staticBatch = typeof sample.dims[0] === 'number' && sample.dims[0] > 0 ? sample.dims[0] : null;
  if (staticBatch !== null && staticBatch !== batch && staticBatch !== 1) {
    throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${unet.label} was exported for batch ${staticBatch}; the pipeline runs batch ${batch} (1, or 2 with guidance)`);
  }
  const split = batch > 1 && staticBatch === 1;
  const condFeeds = conditioningFeeds(unet, conditioning);
  const sigma = Math.fround(scheduler.initNoiseSigma);
  let x: Float32Array = Float32Array.from(latents, (v) => v * sigma);
  const n = x.length;
  const out = outputOf.bind(null, unet);
  for (const [index, t] of scheduler.timesteps.entries()) {
    const doubled = new Float32Array(n * batch);
    for (let b = 0; b < batch; b++) doubled.set(x, b * n);
    const scaled = scheduler.scaleModelInput(doubled, t);
    const sampleFeed = castFloat32(scaled, [batch, ...latentDims.slice(1)], sample.dtype, `${unet.label} input "sample"`);
    const timestep = timestepFeed(unet, t);
    const started = performance.now();
    let eps: Float32Array;
    if (split) {
      eps = new Float32Array(n * batch);
      for (let b = 0; b < batch; b++) {
        const feeds: Record<string, TensorData> = { sample: sliceBatch(sampleFeed, b), timestep };
        for (const [k, v] of Object.entries(condFeeds)) feeds[k] = sliceBatch(v, b);
        eps.set(toFloat32(out(await unet.run(feeds)), `${unet.label} output`), b * n);
      }
    } else {
      eps = toFloat32(out(await unet.run({ ...condFeeds, sample: sampleFeed, timestep })), `${unet.label} output`);
    }
    const unetMs = performance.now() - started;
    if (eps.length !== n * batch) {
      throw new DeltacError('DELTAC_E_UNSUPPORTED_PIPELINE', `${unet.label} gave ${eps.length} values for a sample of ${n * batch}; its output must have the sample's shape`);
    }
    let guided: Float32Array = eps;
    if (batch === 2) {
      const g = Math.fround(options.guidanceScale);
      guided = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const uncond = eps[i]!;
        guided[i] = uncond + Math.fround(g * Math.fround(eps[n + i]! - uncond));
      }
    }
    x = scheduler.step(guided, t, x);
    options.onStep?.({ index, timestep: t, unetMs, latents: x.slice() });
  }
  return x;
}
