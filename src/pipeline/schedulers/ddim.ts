/**
 * DDIMScheduler (Song et al., "Denoising Diffusion Implicit Models"), deterministic
 * (η = 0, as the pipelines call it):
 *
 *   x̂₀ = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t                 (epsilon; sample: x̂₀ = output;
 *                                                    v_prediction: x̂₀ = √ᾱ_t x_t − √(1−ᾱ_t) v)
 *   x̂₀ clipped to ±clip_sample_range when clip_sample
 *   x_{t−δ} = √ᾱ_{t−δ} x̂₀ + √(1−ᾱ_{t−δ}) ε
 *
 * with ᾱ before the first training step = 1 (set_alpha_to_one) or ᾱ₀.
 */
import { f32, map32 } from './numerics.js';
import { alphaSchedule, checkTimestepsInSchedule, integerTimesteps, NOISE_OPTIONS, type TimestepSpacing } from './noise-schedule.js';
import { option, readOptions, type SchedulerConfig } from './options.js';
import type { Scheduler } from './scheduler.js';

const OPTIONS = {
  ...NOISE_OPTIONS,
  clip_sample: option.boolean(true),
  clip_sample_range: option.number(1, (x) => (x > 0 ? undefined : 'expected a positive number')),
  set_alpha_to_one: option.boolean(true),
  steps_offset: option.integer(0, 0),
  prediction_type: option.oneOf<'epsilon' | 'sample' | 'v_prediction'>('epsilon', ['epsilon', 'sample', 'v_prediction']),
  thresholding: option.refusedUnless(false, 'dynamic thresholding is meant for pixel-space models, not latent diffusion'),
  timestep_spacing: option.oneOf<TimestepSpacing>('leading', ['leading', 'trailing', 'linspace']),
  rescale_betas_zero_snr: option.boolean(false),
};

export class DdimScheduler implements Scheduler {
  readonly name = 'DDIMScheduler';
  readonly options;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private readonly alphasCumprod: Float32Array;
  private readonly finalAlphaCumprod: number;
  private steps = 0;

  constructor(config: SchedulerConfig) {
    this.options = readOptions(this.name, config, OPTIONS);
    ({ alphasCumprod: this.alphasCumprod, finalAlphaCumprod: this.finalAlphaCumprod } = alphaSchedule(this.name, this.options));
  }

  setTimesteps(steps: number): void {
    const o = this.options;
    this.timesteps = integerTimesteps(this.name, o, steps);
    this.steps = steps;
    checkTimestepsInSchedule(this.name, this.timesteps, o.num_train_timesteps, o.steps_offset, steps);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const o = this.options;
    if (this.steps === 0) throw new Error('DDIMScheduler: setTimesteps must be called before step');
    const prevT = t - Math.floor(o.num_train_timesteps / this.steps);
    const a = this.alphasCumprod[t];
    if (a === undefined) throw new Error(`DDIMScheduler: timestep ${t} is outside the schedule`);
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod;
    const b = f32(1 - a);
    const sa = f32(Math.sqrt(a));
    const sb = f32(Math.sqrt(b));
    const n = sample.length;
    let x0: Float32Array;
    let eps: Float32Array;
    if (o.prediction_type === 'epsilon') {
      x0 = map32(n, (i) => f32(f32(sample[i]! - f32(sb * modelOutput[i]!)) / sa));
      eps = modelOutput;
    } else if (o.prediction_type === 'sample') {
      x0 = modelOutput;
      eps = map32(n, (i) => f32(f32(sample[i]! - f32(sa * x0[i]!)) / sb));
    } else {
      x0 = map32(n, (i) => f32(f32(sa * sample[i]!) - f32(sb * modelOutput[i]!)));
      eps = map32(n, (i) => f32(f32(sa * modelOutput[i]!) + f32(sb * sample[i]!)));
    }
    if (o.clip_sample) {
      const r = f32(o.clip_sample_range);
      x0 = x0.map((x) => Math.min(Math.max(x, -r), r));
    }
    // η = 0: no noise, and the direction term keeps all of 1 − ᾱ_{t−δ}
    const direction = f32(Math.sqrt(f32(1 - aPrev)));
    const saPrev = f32(Math.sqrt(aPrev));
    return map32(n, (i) => f32(f32(saPrev * x0[i]!) + f32(direction * eps[i]!)));
  }
}
