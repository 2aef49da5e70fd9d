/**
 * The schedulers against diffusers: every trace of ../shared/references/schedulers.json
 * (diffusers 0.40 on torch 2.13, the configs SD pipelines ship) and of
 * test/fixtures/pipeline/scheduler-traces.json (the same diffusers on torch 1.13, for the
 * options the shared traces do not cover: PRK steps, other beta schedules and spacings,
 * clipping, solver orders 1 and 3, heun, dpmsolver, λ-uniform / exponential / flow ladders …).
 *
 * Each loop runs as a pipeline does — deltac's own timesteps, deltac's own latents carried
 * from step to step, only the model outputs taken from the trace — and every scaled model
 * input and step output must be within 1e-5 of diffusers' (max |Δ| / max |ref| per array).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScheduler } from '../../src/pipeline/schedulers/index.js';
import { compareArrays } from '../../src/runtime/compare.js';
import { REPO_ROOT } from '../helpers/paths.js';

interface TraceCase {
  scheduler: string;
  variant?: string;
  config: Record<string, unknown>;
  steps: number;
  timesteps: number[];
  init_noise_sigma: number;
  latents: number[];
  trace: { t: number; model_input: number[]; model_output: number[]; prev_sample: number[] }[];
}

const SHARED = path.resolve(REPO_ROOT, '../shared/references/schedulers.json');
const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/pipeline/scheduler-traces.json');

/** Distance in float32 units in the last place (both are float32 values). */
function ulps(a: number, b: number): number {
  const bits = (x: number) => new Int32Array(Float32Array.of(x).buffer)[0]!;
  return Math.abs(bits(a) - bits(b));
}

/** Runs a case; returns the worst relative error over every model input and step output. */
function replay(c: TraceCase): number {
  const scheduler = createScheduler(c.config, c.scheduler);
  scheduler.setTimesteps(c.steps);
  expect(scheduler.timesteps.length).toBe(c.trace.length);
  let latents: Float32Array = Float32Array.from(c.latents);
  let worst = 0;
  scheduler.timesteps.forEach((t, i) => {
    const step = c.trace[i]!;
    const input = scheduler.scaleModelInput(latents, t);
    worst = Math.max(worst, compareArrays(input, step.model_input).rel);
    latents = scheduler.step(Float32Array.from(step.model_output), t, latents);
    worst = Math.max(worst, compareArrays(latents, step.prev_sample).rel);
  });
  return worst;
}

const worstByCase: Record<string, string> = {};

describe('schedulers reproduce diffusers (shared references)', () => {
  const cases = (JSON.parse(fs.readFileSync(SHARED, 'utf8')) as { cases: TraceCase[] }).cases;

  it('covers the four schedulers', () => {
    expect(new Set(cases.map((c) => c.scheduler))).toEqual(
      new Set(['PNDMScheduler', 'DDIMScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler']),
    );
  });

  for (const c of cases) {
    const name = `${c.variant ?? c.scheduler} ${c.steps} steps`;
    it(name, () => {
      const scheduler = createScheduler(c.config, c.scheduler);
      scheduler.setTimesteps(c.steps);
      // integer timesteps exactly; fractional ones (Karras σ mapped back to t) as float32
      // within one unit in the last place: diffusers' own last bit there depends on the
      // machine's libm (pow, float64 log), which numpy's SIMD loops and V8 do not share
      expect(scheduler.timesteps.length).toBe(c.timesteps.length);
      scheduler.timesteps.forEach((t, i) => {
        if (Number.isInteger(c.timesteps[i])) expect(t, `timestep ${i}`).toBe(c.timesteps[i]);
        else expect(ulps(t, c.timesteps[i]!), `timestep ${i}: ${t} vs ${c.timesteps[i]}`).toBeLessThanOrEqual(1);
      });
      expect(Math.fround(scheduler.initNoiseSigma)).toBe(Math.fround(c.init_noise_sigma));
      const worst = replay(c);
      worstByCase[name] = worst.toExponential(2);
      expect(worst).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('schedulers reproduce diffusers (options beyond the shared references)', () => {
  const cases = (JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { cases: TraceCase[] }).cases;

  for (const c of cases) {
    const name = `${c.variant} ${c.steps} steps`;
    it(name, () => {
      const scheduler = createScheduler(c.config, c.scheduler);
      scheduler.setTimesteps(c.steps);
      // These traces come from torch 1.13, whose float32 linspace rounds about a quarter of
      // the betas an ulp away from torch 2's (deltac matches the shared torch-2 traces): σ
      // and the fractional timesteps derived from it differ by a few ulps (≤ 1e-6), and
      // where DPM-Solver truncates a t just below an integer (exponential ladder) by one.
      expect(scheduler.timesteps.length).toBe(c.timesteps.length);
      scheduler.timesteps.forEach((t, i) => {
        const expected = Math.fround(c.timesteps[i]!);
        if (c.scheduler === 'EulerDiscreteScheduler') expect(Math.abs(t - expected) / Math.max(Math.abs(expected), 1), `timestep ${i}: ${t} vs ${expected}`).toBeLessThanOrEqual(1e-6);
        else expect(Math.abs(t - expected), `timestep ${i}`).toBeLessThanOrEqual(/exponential|karras/.test(c.variant!) ? 1 : 0);
      });
      expect(Math.abs(scheduler.initNoiseSigma - c.init_noise_sigma) / c.init_noise_sigma).toBeLessThanOrEqual(1e-6);
      const worst = replay(c);
      worstByCase[name] = worst.toExponential(2);
      expect(worst).toBeLessThanOrEqual(1e-5);
    });
  }

  it('prints the worst relative error of every case', () => {
    console.log(Object.entries(worstByCase).map(([k, v]) => `${k.padEnd(60)} ${v}`).join('\n'));
  });
});
