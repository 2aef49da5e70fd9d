/**
 * EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn), in σ-space:
 *
 *   model input  x_t / √(σ² + 1)
 *   x̂₀ = x_t − σ ε                 (v_prediction: x̂₀ = −σ/√(σ²+1) · v + x_t/(σ²+1); sample: x̂₀ = output)
 *   x_{next} = x_t + (x_t − x̂₀)/σ · (σ_next − σ)
 *
 * Timesteps are fractional where the σ ladder is not the training one (Karras,
 * exponential): diffusers keeps them as float32, and so does deltac.
 */
import { DeltacError } from '../../ir/errors.js';
import { f32, interpOnIndexGrid, map32, npArange, npLinspace, roundHalfEven, torchLinspaceF32 } from './numerics.js';
import { alphasCumprod, betas, checkSteps, checkTrainedBetas, NOISE_OPTIONS, type TimestepSpacing } from './noise-schedule.js';
import { option, readOptions, type SchedulerConfig } from './options.js';
import type { Scheduler } from './scheduler.js';
import { exponentialSigmas, karrasSigmas, logSigmas, sigmaToT, trainingSigmas } from './sigmas.js';

const positive = (x: number) => (x > 0 ? undefined : 'expected a positive number');

const OPTIONS = {
  ...NOISE_OPTIONS,
  prediction_type: option.oneOf<'epsilon' | 'v_prediction' | 'sample' | 'original_sample'>('epsilon', [
    'epsilon',
    'v_prediction',
    'sample',
    'original_sample',
  ]),
  interpolation_type: option.oneOf<'linear' | 'log_linear'>('linear', ['linear', 'log_linear']),
  use_karras_sigmas: option.boolean(false),
  use_exponential_sigmas: option.boolean(false),
  use_beta_sigmas: option.refusedUnless(false, "the beta-distribution σ ladder needs scipy's beta quantile function"),
  sigma_min: option.optionalNumber(positive),
  sigma_max: option.optionalNumber(positive),
  timestep_spacing: option.oneOf<TimestepSpacing>('linspace', ['leading', 'trailing', 'linspace']),
  timestep_type: option.oneOf<'discrete' | 'continuous'>('discrete', ['discrete', 'continuous']),
  steps_offset: option.integer(0, 0),
  rescale_betas_zero_snr: option.boolean(false),
  final_sigmas_type: option.oneOf<'zero' | 'sigma_min'>('zero', ['zero', 'sigma_min']),
};

export class EulerDiscreteScheduler implements Scheduler {
  readonly name = 'EulerDiscreteScheduler';
  readonly options;
  timesteps: number[] = [];
  private readonly alphasCumprod: Float32Array;
  private readonly trainingSigmas: Float32Array;
  /** σ for each timestep, then the final σ (0 or σ_min). */
  private sigmas: Float32Array;
  private stepIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    const o = (this.options = readOptions(this.name, config, OPTIONS));
    checkTrainedBetas(this.name, o);
    if (o.use_karras_sigmas && o.use_exponential_sigmas) {
      throw new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `${this.name}: use_karras_sigmas and use_exponential_sigmas exclude each other`);
    }
    const ac = alphasCumprod(betas(o));
    // with a zero terminal SNR, ᾱ_N = 0 would make σ_N infinite
    if (o.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
    this.alphasCumprod = ac;
    this.trainingSigmas = trainingSigmas(ac);
    this.sigmas = Float32Array.from([...this.trainingSigmas].reverse().concat(0));
  }

  get initNoiseSigma(): number {
    const max = this.sigmas.reduce((m, s) => Math.max(m, s), -Infinity);
    return this.options.timestep_spacing === 'leading' ? f32(Math.sqrt(f32(f32(max * max) + 1))) : max;
  }

  setTimesteps(steps: number): void {
    const o = this.options;
    const n = o.num_train_timesteps;
    checkSteps(this.name, steps, n);
    let timesteps: number[];
    if (o.timestep_spacing === 'linspace') {
      timesteps = npLinspace(0, n - 1, steps).map(f32).reverse();
    } else if (o.timestep_spacing === 'leading') {
      const ratio = Math.floor(n / steps);
      timesteps = Array.from({ length: steps }, (_, k) => f32((steps - 1 - k) * ratio + o.steps_offset));
    } else {
      timesteps = npArange(n, 0, -n / steps).map((t) => f32(roundHalfEven(t) - 1));
    }
    const train = this.trainingSigmas;
    let sigmas: number[];
    if (o.interpolation_type === 'linear') {
      sigmas = timesteps.map((t) => interpOnIndexGrid(t, train));
    } else {
      const hi = f32(Math.log(train[train.length - 1]!));
      const lo = f32(Math.log(train[0]!));
      sigmas = [...torchLinspaceF32(hi, lo, steps + 1)].map((x) => f32(Math.exp(x)));
    }
    if (o.use_karras_sigmas || o.use_exponential_sigmas) {
      const sigmaMin = o.sigma_min ?? sigmas[sigmas.length - 1]!;
      const sigmaMax = o.sigma_max ?? sigmas[0]!;
      sigmas = o.use_karras_sigmas ? karrasSigmas(sigmaMin, sigmaMax, steps) : exponentialSigmas(sigmaMin, sigmaMax, steps);
      const logs = logSigmas(train);
      timesteps = sigmas.map((s) => sigmaToT(s, logs));
    }
    const a0 = this.alphasCumprod[0]!;
    const last = o.final_sigmas_type === 'sigma_min' ? f32(Math.sqrt(f32(f32(1 - a0) / a0))) : 0;
    this.sigmas = Float32Array.from([...sigmas, last]);
    this.timesteps =
      o.timestep_type === 'continuous' && o.prediction_type === 'v_prediction'
        ? [...this.sigmas.subarray(0, -1)].map((s) => f32(0.25 * f32(Math.log(s))))
        : timesteps.map(f32);
    this.stepIndex = null;
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.indexFor(t)]!;
    const scale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return sample.map((x) => f32(x / scale));
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const i = this.indexFor(t);
    const sigma = this.sigmas[i]!;
    const n = sample.length;
    let x0: Float32Array;
    if (this.options.prediction_type === 'epsilon') {
      x0 = map32(n, (j) => f32(sample[j]! - f32(sigma * modelOutput[j]!)));
    } else if (this.options.prediction_type === 'v_prediction') {
      const p = f32(f32(sigma * sigma) + 1);
      const c = f32(-sigma / f32(Math.sqrt(p)));
      x0 = map32(n, (j) => f32(f32(modelOutput[j]! * c) + f32(sample[j]! / p)));
    } else {
      x0 = modelOutput;
    }
    const dt = f32(this.sigmas[i + 1]! - sigma);
    this.stepIndex = i + 1;
    return map32(n, (j) => f32(sample[j]! + f32(f32(f32(sample[j]! - x0[j]!) / sigma) * dt)));
  }

  /** The step index: found from t on the first call (the second match if t repeats), then counted. */
  private indexFor(t: number): number {
    if (this.stepIndex === null) {
      const matches = this.timesteps.flatMap((s, i) => (s === t ? [i] : []));
      if (matches.length === 0) throw new Error(`${this.name}: timestep ${t} is not one of the scheduler's timesteps`);
      this.stepIndex = matches[matches.length > 1 ? 1 : 0]!;
    }
    if (this.stepIndex >= this.timesteps.length) throw new Error(`${this.name}: stepped past the last timestep; call setTimesteps again`);
    return this.stepIndex;
  }
}
