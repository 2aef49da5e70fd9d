/**
 * What every scheduler offers the denoising loop, as diffusers' pipelines use it:
 *
 *   scheduler.setTimesteps(steps)
 *   latents = noise · initNoiseSigma
 *   for t of scheduler.timesteps:
 *     eps = unet(scheduler.scaleModelInput(latents, t), t, …)     (guidance applied by the caller)
 *     latents = scheduler.step(eps, t, latents)
 *
 * Samples are flat float32 arrays (any shape: the maths is elementwise). Schedulers keep
 * state between steps (PNDM and DPM-Solver keep earlier model outputs), so one instance
 * runs one denoising loop; `setTimesteps` starts a new one.
 */
export interface Scheduler {
  /** The diffusers class it reproduces, e.g. `PNDMScheduler`. */
  readonly name: string;
  /** The options in effect (diffusers' config keys, defaults filled in). */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * The timesteps of the loop, as diffusers' `scheduler.timesteps` (PNDM's has one more than
   * steps). Integers for PNDM, DDIM and DPM-Solver; float32 values for EulerDiscrete, which
   * are fractional with Karras or exponential σ — a UNet taking int64 timesteps gets them
   * truncated, as diffusers' ONNX pipelines do (`np.array([t], dtype=np.int64)`).
   */
  readonly timesteps: readonly number[];
  /** The factor the initial noise is multiplied by. */
  readonly initNoiseSigma: number;
  setTimesteps(steps: number): void;
  /** The UNet input for timestep t (a new array, or `sample` itself where the scheduler does not scale). */
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  /** One denoising step: the sample at the previous (less noisy) timestep. */
  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array;
}
