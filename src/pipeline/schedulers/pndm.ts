/**
 * PNDMScheduler (Liu et al., "Pseudo Numerical Methods for Diffusion Models"), the
 * scheduler Stable Diffusion 1.x ships with. Each step moves the sample from t to t−δ
 * with the transfer of formula (9),
 *
 *   x_{t−δ} = √(ᾱ_{t−δ}/ᾱ_t) · x_t − (ᾱ_{t−δ} − ᾱ_t) · ε / (ᾱ_t √(1−ᾱ_{t−δ}) + √(ᾱ_t (1−ᾱ_t) ᾱ_{t−δ}))
 *
 * where ε is a combination of the model outputs:
 *  - PLMS (linear multistep): ε = e₁; (e₁+e₀)/2 (the second call, at the same t, redoes the
 *    first step); (3e₁−e₂)/2; (23e₁−16e₂+5e₃)/12; then (55e₁−59e₂+37e₃−9e₄)/24.
 *  - PRK (Runge–Kutta, when skip_prk_steps is false): the first three intervals take four
 *    model calls each, at t, t−δ/2, t−δ/2, t−δ, combined as (e₁ + 2e₂ + 2e₃ + e₄)/6.
 * v_prediction turns v into ε first: ε = √ᾱ_t v + √(1−ᾱ_t) x_t.
 */
import { DeltacError } from '../../ir/errors.js';
import { f32, map32 } from './numerics.js';
import { alphaSchedule, checkTimestepsInSchedule, integerTimesteps, NOISE_OPTIONS, type TimestepSpacing } from './noise-schedule.js';
import { option, readOptions, type SchedulerConfig } from './options.js';
import type { Scheduler } from './scheduler.js';

const OPTIONS = {
  ...NOISE_OPTIONS,
  skip_prk_steps: option.boolean(false),
  set_alpha_to_one: option.boolean(false),
  prediction_type: option.oneOf<'epsilon' | 'v_prediction'>('epsilon', ['epsilon', 'v_prediction']),
  timestep_spacing: option.oneOf<TimestepSpacing>('leading', ['leading', 'trailing', 'linspace']),
  steps_offset: option.integer(0, 0),
};

export class PndmScheduler implements Scheduler {
  readonly name = 'PNDMScheduler';
  readonly options;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private readonly alphasCumprod: Float32Array;
  private readonly finalAlphaCumprod: number;
  private steps = 0;
  /** Timesteps of the Runge–Kutta calls (empty with skip_prk_steps). */
  private prkTimesteps: number[] = [];
  private counter = 0;
  /** Earlier model outputs (one per interval), newest last. */
  private ets: Float32Array[] = [];
  /** The sample the current PRK interval or the PLMS warm-up step started from. */
  private curSample: Float32Array | null = null;
  /** The weighted sum of the current PRK interval's model outputs so far. */
  private curModelOutput: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    this.options = readOptions(this.name, config, OPTIONS);
    ({ alphasCumprod: this.alphasCumprod, finalAlphaCumprod: this.finalAlphaCumprod } = alphaSchedule(this.name, this.options));
  }

  setTimesteps(steps: number): void {
    const o = this.options;
    const ascending = integerTimesteps(this.name, o, steps).reverse();
    this.steps = steps;
    if (o.skip_prk_steps) {
      // PLMS only; the second-to-last timestep is repeated (the warm-up step redone)
      this.prkTimesteps = [];
      const n = ascending.length;
      const plms = [...ascending.slice(0, n - 1), ...ascending.slice(Math.max(0, n - 2), n - 1), ascending[n - 1]!];
      this.timesteps = plms.reverse();
    } else {
      if (steps < 4) throw this.tooFewForPrk(steps);
      // the last four (highest) timesteps, each with its midpoint t + δ/2, walked down
      const half = Math.floor(Math.floor(o.num_train_timesteps / steps) / 2);
      const pairs = ascending.slice(-4).flatMap((t) => [t, t + half]);
      const repeated = pairs.slice(0, -1).flatMap((t) => [t, t]);
      this.prkTimesteps = repeated.slice(1, -1).reverse();
      this.timesteps = [...this.prkTimesteps, ...ascending.slice(0, -3).reverse()];
    }
    checkTimestepsInSchedule(this.name, this.timesteps, o.num_train_timesteps, o.steps_offset, steps);
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.curModelOutput = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    if (this.steps === 0) throw new Error('PNDMScheduler: setTimesteps must be called before step');
    return this.counter < this.prkTimesteps.length && !this.options.skip_prk_steps
      ? this.stepPrk(modelOutput, t, sample)
      : this.stepPlms(modelOutput, t, sample);
  }

  private stepPrk(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const ratio = Math.floor(this.options.num_train_timesteps / this.steps);
    const prevT = t - (this.counter % 2 ? 0 : Math.floor(ratio / 2));
    const fromT = this.prkTimesteps[Math.floor(this.counter / 4) * 4]!;
    const phase = this.counter % 4;
    const acc = this.curModelOutput;
    let eps = modelOutput;
    if (phase === 0) {
      const w = f32(1 / 6);
      this.curModelOutput = map32(modelOutput.length, (i) => f32(w * modelOutput[i]!));
      this.ets.push(modelOutput);
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      const w = f32(1 / 3);
      this.curModelOutput = map32(modelOutput.length, (i) => f32(acc![i]! + f32(w * modelOutput[i]!)));
    } else {
      const w = f32(1 / 6);
      eps = map32(modelOutput.length, (i) => f32(acc![i]! + f32(w * modelOutput[i]!)));
      this.curModelOutput = null;
    }
    const prev = this.prevSample(this.curSample ?? sample, fromT, prevT, eps);
    this.counter++;
    return prev;
  }

  private stepPlms(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const ratio = Math.floor(this.options.num_train_timesteps / this.steps);
    let fromT = t;
    let prevT = t - ratio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      // the warm-up step is redone from the same sample with the mean of two outputs
      prevT = t;
      fromT = t + ratio;
    }
    const e = this.ets;
    const n = e.length;
    const len = modelOutput.length;
    let eps: Float32Array;
    if (n === 1 && this.counter === 0) {
      eps = modelOutput;
      this.curSample = sample;
    } else if (n === 1 && this.counter === 1) {
      const e1 = e[0]!;
      eps = map32(len, (i) => f32(f32(modelOutput[i]! + e1[i]!) / 2));
      sample = this.curSample!;
      this.curSample = null;
    } else if (n === 2) {
      const [e2, e1] = [e[0]!, e[1]!];
      eps = map32(len, (i) => f32(f32(f32(3 * e1[i]!) - e2[i]!) / 2));
    } else if (n === 3) {
      const [e3, e2, e1] = [e[0]!, e[1]!, e[2]!];
      eps = map32(len, (i) => f32(f32(f32(f32(23 * e1[i]!) - f32(16 * e2[i]!)) + f32(5 * e3[i]!)) / 12));
    } else {
      const [e4, e3, e2, e1] = [e[n - 4]!, e[n - 3]!, e[n - 2]!, e[n - 1]!];
      const w = f32(1 / 24);
      eps = map32(len, (i) => f32(w * f32(f32(f32(f32(55 * e1[i]!) - f32(59 * e2[i]!)) + f32(37 * e3[i]!)) - f32(9 * e4[i]!))));
    }
    const prev = this.prevSample(sample, fromT, prevT, eps);
    this.counter++;
    return prev;
  }

  /** Formula (9): x_t → x_{t−δ} given ε (or v). */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array {
    const a = this.alphaCumprodAt(t);
    const aPrev = prevT >= 0 ? this.alphaCumprodAt(prevT) : this.finalAlphaCumprod;
    const b = f32(1 - a);
    const bPrev = f32(1 - aPrev);
    let eps = modelOutput;
    if (this.options.prediction_type === 'v_prediction') {
      const sa = f32(Math.sqrt(a));
      const sb = f32(Math.sqrt(b));
      eps = map32(sample.length, (i) => f32(f32(sa * modelOutput[i]!) + f32(sb * sample[i]!)));
    }
    const sampleCoeff = f32(Math.sqrt(f32(aPrev / a)));
    const denom = f32(f32(a * f32(Math.sqrt(bPrev))) + f32(Math.sqrt(f32(f32(a * b) * aPrev))));
    const diff = f32(aPrev - a);
    return map32(sample.length, (i) => f32(f32(sampleCoeff * sample[i]!) - f32(f32(diff * eps[i]!) / denom)));
  }

  private alphaCumprodAt(t: number): number {
    const a = this.alphasCumprod[t];
    if (a === undefined) throw new Error(`PNDMScheduler: timestep ${t} is outside the schedule`);
    return a;
  }

  private tooFewForPrk(steps: number) {
    return new DeltacError(
      'DELTAC_E_BAD_OPTION',
      `PNDMScheduler with skip_prk_steps=false needs at least 4 inference steps for its Runge–Kutta start, got ${steps}`,
    );
  }
}
