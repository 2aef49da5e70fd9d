/**
 * The training noise schedule every scheduler starts from — betas, ᾱ (alphas_cumprod) —
 * and the grids of inference timesteps (`timestep_spacing`), as diffusers computes them.
 *
 *   betas          linear:            linspace(beta_start, beta_end, N)               (float32)
 *                  scaled_linear:     linspace(√beta_start, √beta_end, N)²            (float32)
 *                  squaredcos_cap_v2: 1 − ᾱ(t₂)/ᾱ(t₁), ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), ≤ 0.999
 *                  trained_betas:     as given
 *   rescale_betas_zero_snr: √ᾱ shifted and scaled so that √ᾱ_N = 0, √ᾱ_0 unchanged
 *   ᾱ_t = ∏_{s≤t} (1 − beta_s)
 */
import { DeltacError } from '../../ir/errors.js';
import { option } from './options.js';
import { f32, npArange, npLinspace, roundHalfEven, torchCumprodF32, torchLinspaceF32 } from './numerics.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface NoiseScheduleOptions {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  rescale_betas_zero_snr?: boolean;
}

export function betas(o: NoiseScheduleOptions): Float32Array {
  const n = o.num_train_timesteps;
  let b: Float32Array;
  if (o.trained_betas) {
    b = Float32Array.from(o.trained_betas);
  } else if (o.beta_schedule === 'linear') {
    b = torchLinspaceF32(o.beta_start, o.beta_end, n);
  } else if (o.beta_schedule === 'scaled_linear') {
    b = torchLinspaceF32(Math.sqrt(o.beta_start), Math.sqrt(o.beta_end), n).map((x) => f32(x * x));
  } else {
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
    b = Float32Array.from({ length: n }, (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
  }
  return o.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(b) : b;
}

/** ᾱ = cumprod(1 − betas), float32 as torch keeps it. */
export function alphasCumprod(b: Float32Array): Float32Array {
  return torchCumprodF32(b.map((x) => f32(1 - x)));
}

/** "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1 (float32). */
function rescaleZeroTerminalSnr(b: Float32Array): Float32Array {
  const sqrtBar = alphasCumprod(b).map((x) => f32(Math.sqrt(x)));
  const first = sqrtBar[0]!;
  const last = sqrtBar[sqrtBar.length - 1]!;
  const scale = f32(first / f32(first - last));
  const bar = sqrtBar.map((x) => {
    const y = f32(f32(x - last) * scale);
    return f32(y * y);
  });
  const alphas = bar.map((x, i) => (i === 0 ? x : f32(x / bar[i - 1]!)));
  return alphas.map((a) => f32(1 - a));
}

/**
 * The inference timesteps, descending, as PNDM/DDIM/Euler/DPM compute them for
 * `timestep_spacing` (float64 values before the caller's cast).
 *  - leading:  k·⌊N/n⌋ + steps_offset,    k = n−1 … 0
 *  - trailing: round(N − k·N/n) − 1,       k = 0 … n−1
 *  - linspace: linspace(0, N−1, n), reversed (rounded by the integer schedulers)
 */
export function spacedTimesteps(spacing: TimestepSpacing, trainSteps: number, steps: number, stepsOffset: number): number[] {
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, k) => (steps - 1 - k) * ratio + stepsOffset);
  }
  if (spacing === 'trailing') {
    return npArange(trainSteps, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
  }
  return npLinspace(0, trainSteps - 1, steps).reverse();
}

/** Refuses a grid that reaches outside the training schedule (steps_offset with as many steps as training timesteps). */
export function checkTimestepsInSchedule(scheduler: string, timesteps: readonly number[], trainSteps: number, stepsOffset: number, steps: number): void {
  const outside = timesteps.find((t) => t < 0 || t >= trainSteps);
  if (outside !== undefined) {
    throw new DeltacError(
      'DELTAC_E_BAD_OPTION',
      `${scheduler}: with steps_offset ${stepsOffset}, ${steps} steps reach timestep ${outside}, outside the ${trainSteps} training timesteps; use fewer steps`,
    );
  }
}

/** Refuses a step count the schedule cannot be divided into. */
export function checkSteps(scheduler: string, steps: number, trainSteps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
    throw new DeltacError(
      'DELTAC_E_BAD_OPTION',
      `${scheduler}: the number of inference steps must be an integer from 1 to num_train_timesteps (${trainSteps}), got ${steps}`,
    );
  }
}

const inUnitInterval = (x: number) => (x > 0 && x < 1 ? undefined : 'expected a number in (0, 1)');

/** The options of the training noise schedule, shared by every scheduler (diffusers' defaults). */
export const NOISE_OPTIONS = {
  num_train_timesteps: option.integer(1000, 2),
  beta_start: option.number(0.0001, inUnitInterval),
  beta_end: option.number(0.02, inUnitInterval),
  beta_schedule: option.oneOf<BetaSchedule>('linear', ['linear', 'scaled_linear', 'squaredcos_cap_v2']),
  trained_betas: option.betaList(),
};

/** Refuses trained_betas whose length is not num_train_timesteps (diffusers would index past them). */
export function checkTrainedBetas(scheduler: string, o: NoiseScheduleOptions): void {
  if (o.trained_betas && o.trained_betas.length !== o.num_train_timesteps) {
    throw new DeltacError(
      'DELTAC_E_UNSUPPORTED_SCHEDULER',
      `${scheduler}: trained_betas has ${o.trained_betas.length} values but num_train_timesteps is ${o.num_train_timesteps}`,
    );
  }
}

/** What DDIM and PNDM read beyond the noise schedule: the alpha before the first step, and the timestep grid. */
export interface AlphaStepOptions extends NoiseScheduleOptions {
  set_alpha_to_one: boolean;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
}

/**
 * ᾱ of every training step and the ᾱ the last inference step steps to: 1 with
 * set_alpha_to_one, else ᾱ₀ (DDIM, PNDM). Refuses trained_betas of the wrong length.
 */
export function alphaSchedule(scheduler: string, o: AlphaStepOptions): { alphasCumprod: Float32Array; finalAlphaCumprod: number } {
  checkTrainedBetas(scheduler, o);
  const a = alphasCumprod(betas(o));
  return { alphasCumprod: a, finalAlphaCumprod: o.set_alpha_to_one ? 1 : a[0]! };
}

/** The `steps` integer inference timesteps, descending (linspace rounded half to even), after checking the count (DDIM, PNDM). */
export function integerTimesteps(scheduler: string, o: AlphaStepOptions, steps: number): number[] {
  checkSteps(scheduler, steps, o.num_train_timesteps);
  const spaced = spacedTimesteps(o.timestep_spacing, o.num_train_timesteps, steps, o.steps_offset);
  return o.timestep_spacing === 'linspace' ? spaced.map(roundHalfEven) : spaced;
}
