/**
 * DPMSolverMultistepScheduler (Lu et al., DPM-Solver and DPM-Solver++), deterministic
 * algorithms: `dpmsolver++` (the default, solving for x̂₀) and `dpmsolver` (solving for ε),
 * of order 1, 2 or 3, midpoint or heun second-order form. In λ = log(α/σ), with
 * α_t = 1/√(σ_t²+1), σ'_t = σ_t α_t and h = λ_next − λ_t, the DPM-Solver++ steps are
 *
 *   order 1:  x_next = (σ'_next/σ'_t) x_t − α_next (e^{−h} − 1) D₀
 *   order 2:  … − ½ α_next (e^{−h} − 1) D₁                 (midpoint), D₀ = m₀, D₁ = (m₀ − m₁)/r₀
 *   order 3:  … + α_next((e^{−h}−1)/h + 1) D₁ − α_next((e^{−h}−1+h)/h² − ½) D₂
 *
 * with m the converted model outputs of the latest steps and r₀ = h₀/h the ratio of step
 * sizes. The first steps run at lower order until enough outputs are kept, and the last
 * ones drop order as lower_order_final / euler_at_final / final_sigmas_type say.
 * The SDE variants add fresh noise at every step from torch's generator and are refused.
 */
import { DeltacError } from '../../ir/errors.js';
import { f32, interpOnIndexGrid, map32, npArange, npLinspace, roundHalfEven } from './numerics.js';
import { alphasCumprod, betas, checkSteps, checkTimestepsInSchedule, checkTrainedBetas, NOISE_OPTIONS, type TimestepSpacing } from './noise-schedule.js';
import { option, readOptions, type OptionSpec, type SchedulerConfig } from './options.js';
import type { Scheduler } from './scheduler.js';
import { exponentialSigmas, karrasSigmas, logSigmas, sigmaToT, trainingSigmas } from './sigmas.js';

const SDE = 'it adds fresh random noise at every step from torch\'s generator, which deltac cannot reproduce; use "dpmsolver++"';

/** λ_min_clipped: a number, or −∞ (diffusers writes it as -Infinity). */
const lambdaMinClipped: OptionSpec<number> = {
  default: -Infinity,
  read(v, say) {
    if (typeof v !== 'number' || Number.isNaN(v) || v === Infinity) throw say('expected a number or -Infinity');
    return v;
  },
};

const OPTIONS = {
  ...NOISE_OPTIONS,
  solver_order: option.integer(2, 1),
  prediction_type: option.oneOf<'epsilon' | 'sample' | 'v_prediction' | 'flow_prediction'>('epsilon', [
    'epsilon',
    'sample',
    'v_prediction',
    'flow_prediction',
  ]),
  thresholding: option.refusedUnless(false, 'dynamic thresholding is meant for pixel-space models, not latent diffusion'),
  // diffusers maps "deis" to dpmsolver++ and "logrho"/"bh1"/"bh2" to midpoint (the names of other schedulers' configs)
  algorithm_type: option.oneOf<'dpmsolver++' | 'dpmsolver' | 'deis'>('dpmsolver++', ['dpmsolver++', 'dpmsolver', 'deis'], {
    'sde-dpmsolver++': SDE,
    'sde-dpmsolver': SDE,
  }),
  solver_type: option.oneOf<'midpoint' | 'heun' | 'logrho' | 'bh1' | 'bh2'>('midpoint', ['midpoint', 'heun', 'logrho', 'bh1', 'bh2']),
  lower_order_final: option.boolean(true),
  euler_at_final: option.boolean(false),
  use_karras_sigmas: option.boolean(false),
  use_exponential_sigmas: option.boolean(false),
  use_beta_sigmas: option.refusedUnless(false, "the beta-distribution σ ladder needs scipy's beta quantile function"),
  use_lu_lambdas: option.boolean(false),
  use_flow_sigmas: option.boolean(false),
  flow_shift: option.number(1, (x) => (x > 0 ? undefined : 'expected a positive number')),
  final_sigmas_type: option.oneOf<'zero' | 'sigma_min'>('zero', ['zero', 'sigma_min']),
  lambda_min_clipped: lambdaMinClipped,
  variance_type: option.refusedUnless<string | null>(null, 'a model that also predicts its variance is not a latent-diffusion UNet deltac runs'),
  timestep_spacing: option.oneOf<TimestepSpacing>('linspace', ['leading', 'trailing', 'linspace']),
  steps_offset: option.integer(0, 0),
  rescale_betas_zero_snr: option.boolean(false),
  use_dynamic_shifting: option.refusedUnless(false, 'the shift depends on the image size (mu), which the pipelines compute for flow models only'),
  // not options of this class, but diffusers keeps every key of the config it was made from
  // and its Karras/exponential ladders use these when present (a config from EulerDiscrete)
  sigma_min: option.optionalNumber((x) => (x > 0 ? undefined : 'expected a positive number')),
  sigma_max: option.optionalNumber((x) => (x > 0 ? undefined : 'expected a positive number')),
};

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly name = 'DPMSolverMultistepScheduler';
  readonly options;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private readonly alphasCumprod: Float32Array;
  private readonly trainingSigmas: Float32Array;
  private readonly lambdas: Float32Array;
  private sigmas: Float32Array = new Float32Array(0);
  /** The converted outputs (x̂₀ or ε) of the latest steps, newest last. */
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;
  private stepIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    const o = (this.options = readOptions(this.name, config, OPTIONS));
    if (o.algorithm_type === 'deis') o.algorithm_type = 'dpmsolver++';
    if (o.solver_type !== 'midpoint' && o.solver_type !== 'heun') o.solver_type = 'midpoint';
    checkTrainedBetas(this.name, o);
    const refuse = (why: string) => new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `${this.name}: ${why}`);
    if (o.solver_order > 3) throw refuse(`solver_order ${o.solver_order} is not supported; 1, 2 and 3 are`);
    if ([o.use_karras_sigmas, o.use_exponential_sigmas].filter(Boolean).length > 1) {
      throw refuse('use_karras_sigmas and use_exponential_sigmas exclude each other');
    }
    if (o.algorithm_type === 'dpmsolver' && o.final_sigmas_type === 'zero') {
      throw refuse('final_sigmas_type "zero" is not supported for algorithm_type "dpmsolver" (as in diffusers); use "sigma_min"');
    }
    if (o.prediction_type === 'flow_prediction' && o.algorithm_type !== 'dpmsolver++') {
      throw refuse('prediction_type "flow_prediction" needs algorithm_type "dpmsolver++"');
    }
    const ac = alphasCumprod(betas(o));
    if (o.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
    this.alphasCumprod = ac;
    this.trainingSigmas = trainingSigmas(ac);
    this.lambdas = ac.map((a) => f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))));
  }

  setTimesteps(steps: number): void {
    const o = this.options;
    const n = o.num_train_timesteps;
    checkSteps(this.name, steps, n);
    // timesteps whose λ is below lambda_min_clipped are left out of the grid
    const ascendingLambdas = [...this.lambdas].reverse();
    let clipped = 0;
    while (clipped < ascendingLambdas.length && ascendingLambdas[clipped]! < o.lambda_min_clipped) clipped++;
    const last = n - clipped;
    let timesteps: number[];
    if (o.timestep_spacing === 'linspace') {
      timesteps = npLinspace(0, last - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    } else if (o.timestep_spacing === 'leading') {
      const ratio = Math.floor(last / (steps + 1));
      timesteps = Array.from({ length: steps }, (_, k) => (steps - k) * ratio + o.steps_offset);
    } else {
      timesteps = npArange(last, 0, -n / steps).map((t) => roundHalfEven(t) - 1);
    }
    const train = this.trainingSigmas;
    const logs = logSigmas(train);
    const descending = [...train].reverse();
    const rounded = (ts: number[]) => (o.beta_schedule === 'squaredcos_cap_v2' ? ts : ts.map(roundHalfEven));
    let sigmas: number[];
    if (o.use_karras_sigmas) {
      sigmas = karrasSigmas(o.sigma_min ?? descending[descending.length - 1]!, o.sigma_max ?? descending[0]!, steps);
      timesteps = rounded(sigmas.map((s) => sigmaToT(s, logs)));
    } else if (o.use_lu_lambdas) {
      const lambdaMin = logs[0]!;
      const lambdaMax = logs[logs.length - 1]!;
      sigmas = npLinspace(0, 1, steps).map((r) => Math.exp(lambdaMax + r * (lambdaMin - lambdaMax)));
      timesteps = rounded(sigmas.map((s) => sigmaToT(s, logs)));
    } else if (o.use_exponential_sigmas) {
      sigmas = exponentialSigmas(o.sigma_min ?? descending[descending.length - 1]!, o.sigma_max ?? descending[0]!, steps);
      timesteps = sigmas.map((s) => sigmaToT(s, logs));
    } else if (o.use_flow_sigmas) {
      const shift = o.flow_shift;
      const shifted = npLinspace(1, 1 / n, steps + 1).map((a) => {
        const s = 1 - a;
        return (shift * s) / (1 + (shift - 1) * s);
      });
      sigmas = shifted.reverse().slice(0, -1);
      timesteps = sigmas.map((s) => s * n);
    } else {
      sigmas = timesteps.map((t) => interpOnIndexGrid(t, train));
    }
    const a0 = this.alphasCumprod[0]!;
    const final = o.final_sigmas_type === 'sigma_min' ? f32(Math.sqrt(f32(f32(1 - a0) / a0))) : 0;
    this.sigmas = Float32Array.from([...sigmas, final]);
    this.timesteps = timesteps.map(Math.trunc);
    checkTimestepsInSchedule(this.name, this.timesteps, o.num_train_timesteps, o.steps_offset, steps);
    this.modelOutputs = new Array<Float32Array | null>(o.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this.stepIndex = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const o = this.options;
    if (this.sigmas.length === 0) throw new Error(`${this.name}: setTimesteps must be called before step`);
    if (this.stepIndex === null) {
      const matches = this.timesteps.flatMap((s, i) => (s === t ? [i] : []));
      this.stepIndex = matches.length === 0 ? this.timesteps.length - 1 : matches[matches.length > 1 ? 1 : 0]!;
    }
    const i = this.stepIndex;
    const count = this.timesteps.length;
    if (i >= count) throw new Error(`${this.name}: stepped past the last timestep; call setTimesteps again`);
    const lowerOrderFinal =
      i === count - 1 && (o.euler_at_final || (o.lower_order_final && count < 15) || o.final_sigmas_type === 'zero');
    const lowerOrderSecond = i === count - 2 && o.lower_order_final && count < 15;

    const converted = this.convertModelOutput(modelOutput, sample, i);
    this.modelOutputs = [...this.modelOutputs.slice(1), converted];

    let prev: Float32Array;
    if (o.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(converted, sample, i);
    else if (o.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(sample, i);
    else prev = this.thirdOrder(sample, i);
    if (this.lowerOrderNums < o.solver_order) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return prev;
  }

  /** (α_t, σ'_t) for a σ of the ladder. */
  private alphaSigma(sigma: number): [number, number] {
    if (this.options.use_flow_sigmas) return [f32(1 - sigma), sigma];
    const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
    return [alpha, f32(sigma * alpha)];
  }

  private lambda(alpha: number, sigma: number): number {
    return f32(f32(Math.log(alpha)) - f32(Math.log(sigma)));
  }

  /** The model output as the solver wants it: x̂₀ for dpmsolver++, ε for dpmsolver. */
  private convertModelOutput(m: Float32Array, x: Float32Array, i: number): Float32Array {
    const o = this.options;
    const n = x.length;
    const sigma = this.sigmas[i]!;
    const [alpha, sigmaT] = this.alphaSigma(sigma);
    if (o.algorithm_type === 'dpmsolver++') {
      switch (o.prediction_type) {
        case 'epsilon':
          return map32(n, (j) => f32(f32(x[j]! - f32(sigmaT * m[j]!)) / alpha));
        case 'sample':
          return m;
        case 'v_prediction':
          return map32(n, (j) => f32(f32(alpha * x[j]!) - f32(sigmaT * m[j]!)));
        case 'flow_prediction':
          return map32(n, (j) => f32(x[j]! - f32(sigma * m[j]!)));
      }
    }
    switch (o.prediction_type) {
      case 'sample':
        return map32(n, (j) => f32(f32(x[j]! - f32(alpha * m[j]!)) / sigmaT));
      case 'v_prediction':
        return map32(n, (j) => f32(f32(alpha * m[j]!) + f32(sigmaT * x[j]!)));
      default:
        return m;
    }
  }

  private firstOrder(m: Float32Array, x: Float32Array, i: number): Float32Array {
    const [alphaT, sigmaT] = this.alphaSigma(this.sigmas[i + 1]!);
    const [alphaS, sigmaS] = this.alphaSigma(this.sigmas[i]!);
    const h = f32(this.lambda(alphaT, sigmaT) - this.lambda(alphaS, sigmaS));
    if (this.options.algorithm_type === 'dpmsolver++') {
      const cx = f32(sigmaT / sigmaS);
      const cm = f32(alphaT * f32(f32(Math.exp(-h)) - 1));
      return map32(x.length, (j) => f32(f32(cx * x[j]!) - f32(cm * m[j]!)));
    }
    const cx = f32(alphaT / alphaS);
    const cm = f32(sigmaT * f32(f32(Math.exp(h)) - 1));
    return map32(x.length, (j) => f32(f32(cx * x[j]!) - f32(cm * m[j]!)));
  }

  private secondOrder(x: Float32Array, i: number): Float32Array {
    const [alphaT, sigmaT] = this.alphaSigma(this.sigmas[i + 1]!);
    const [alphaS0, sigmaS0] = this.alphaSigma(this.sigmas[i]!);
    const [alphaS1, sigmaS1] = this.alphaSigma(this.sigmas[i - 1]!);
    const lambdaT = this.lambda(alphaT, sigmaT);
    const lambdaS0 = this.lambda(alphaS0, sigmaS0);
    const lambdaS1 = this.lambda(alphaS1, sigmaS1);
    const m0 = this.modelOutputs[this.modelOutputs.length - 1]!;
    const m1 = this.modelOutputs[this.modelOutputs.length - 2]!;
    const h = f32(lambdaT - lambdaS0);
    const r0 = f32(f32(lambdaS0 - lambdaS1) / h);
    const invR0 = f32(1 / r0);
    const n = x.length;
    const d1 = map32(n, (j) => f32(invR0 * f32(m0[j]! - m1[j]!)));
    const heun = this.options.solver_type === 'heun';
    if (this.options.algorithm_type === 'dpmsolver++') {
      const em1 = f32(f32(Math.exp(-h)) - 1);
      const cx = f32(sigmaT / sigmaS0);
      const c0 = f32(alphaT * em1);
      if (heun) {
        const c1 = f32(alphaT * f32(f32(em1 / h) + 1));
        return map32(n, (j) => f32(f32(f32(cx * x[j]!) - f32(c0 * m0[j]!)) + f32(c1 * d1[j]!)));
      }
      const c1 = f32(0.5 * c0);
      return map32(n, (j) => f32(f32(f32(cx * x[j]!) - f32(c0 * m0[j]!)) - f32(c1 * d1[j]!)));
    }
    const ep1 = f32(f32(Math.exp(h)) - 1);
    const cx = f32(alphaT / alphaS0);
    const c0 = f32(sigmaT * ep1);
    const c1 = heun ? f32(sigmaT * f32(f32(ep1 / h) - 1)) : f32(0.5 * c0);
    return map32(n, (j) => f32(f32(f32(cx * x[j]!) - f32(c0 * m0[j]!)) - f32(c1 * d1[j]!)));
  }

  private thirdOrder(x: Float32Array, i: number): Float32Array {
    const [alphaT, sigmaT] = this.alphaSigma(this.sigmas[i + 1]!);
    const [alphaS0, sigmaS0] = this.alphaSigma(this.sigmas[i]!);
    const [alphaS1, sigmaS1] = this.alphaSigma(this.sigmas[i - 1]!);
    const [alphaS2, sigmaS2] = this.alphaSigma(this.sigmas[i - 2]!);
    const lambdaT = this.lambda(alphaT, sigmaT);
    const lambdaS0 = this.lambda(alphaS0, sigmaS0);
    const lambdaS1 = this.lambda(alphaS1, sigmaS1);
    const lambdaS2 = this.lambda(alphaS2, sigmaS2);
    const k = this.modelOutputs.length;
    const [m0, m1, m2] = [this.modelOutputs[k - 1]!, this.modelOutputs[k - 2]!, this.modelOutputs[k - 3]!];
    const h = f32(lambdaT - lambdaS0);
    const r0 = f32(f32(lambdaS0 - lambdaS1) / h);
    const r1 = f32(f32(lambdaS1 - lambdaS2) / h);
    const n = x.length;
    const invR0 = f32(1 / r0);
    const invR1 = f32(1 / r1);
    const d10 = map32(n, (j) => f32(invR0 * f32(m0[j]! - m1[j]!)));
    const d11 = map32(n, (j) => f32(invR1 * f32(m1[j]! - m2[j]!)));
    const r01 = f32(r0 + r1);
    const w = f32(r0 / r01);
    const invR01 = f32(1 / r01);
    const d1 = map32(n, (j) => f32(d10[j]! + f32(w * f32(d10[j]! - d11[j]!))));
    const d2 = map32(n, (j) => f32(invR01 * f32(d10[j]! - d11[j]!)));
    const hh = f32(h * h);
    if (this.options.algorithm_type === 'dpmsolver++') {
      const em1 = f32(f32(Math.exp(-h)) - 1);
      const cx = f32(sigmaT / sigmaS0);
      const c0 = f32(alphaT * em1);
      const c1 = f32(alphaT * f32(f32(em1 / h) + 1));
      const c2 = f32(alphaT * f32(f32(f32(em1 + h) / hh) - 0.5));
      return map32(n, (j) => f32(f32(f32(f32(cx * x[j]!) - f32(c0 * m0[j]!)) + f32(c1 * d1[j]!)) - f32(c2 * d2[j]!)));
    }
    const ep1 = f32(f32(Math.exp(h)) - 1);
    const cx = f32(alphaT / alphaS0);
    const c0 = f32(sigmaT * ep1);
    const c1 = f32(sigmaT * f32(f32(ep1 / h) - 1));
    const c2 = f32(sigmaT * f32(f32(f32(ep1 - h) / hh) - 0.5));
    return map32(n, (j) => f32(f32(f32(f32(cx * x[j]!) - f32(c0 * m0[j]!)) - f32(c1 * d1[j]!)) - f32(c2 * d2[j]!)));
  }
}
