/**
 * Choosing a scheduler and reading its options: class and short names, a pipeline's
 * scheduler_config.json, another class's config, and every refusal (an unknown class, an
 * option value deltac does not implement, a malformed config, a step count out of range).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScheduler, parseSchedulerConfig, schedulerClassName, SUPPORTED_SCHEDULERS } from '../../src/pipeline/schedulers/index.js';
import { MODELS_DIR } from '../helpers/paths.js';

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

const SD = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1 };

describe('scheduler names', () => {
  it('accepts class names and short names in any case', () => {
    expect(SUPPORTED_SCHEDULERS).toEqual(['PNDMScheduler', 'DDIMScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler']);
    expect(schedulerClassName('DDIMScheduler')).toBe('DDIMScheduler');
    expect(schedulerClassName('ddimscheduler')).toBe('DDIMScheduler');
    expect(schedulerClassName('pndm')).toBe('PNDMScheduler');
    expect(schedulerClassName('Euler')).toBe('EulerDiscreteScheduler');
    expect(schedulerClassName('dpm++')).toBe('DPMSolverMultistepScheduler');
    expect(schedulerClassName(' DPMSolver++ ')).toBe('DPMSolverMultistepScheduler');
  });

  it('refuses an unknown scheduler, naming the supported ones', () => {
    const e = errorOf(() => schedulerClassName('LMSDiscreteScheduler'));
    expect(e.code).toBe('DELTAC_E_UNSUPPORTED_SCHEDULER');
    expect(e.message).toMatch(/"LMSDiscreteScheduler" is not supported/);
    for (const name of SUPPORTED_SCHEDULERS) expect(e.message).toContain(name);
    expect(errorOf(() => createScheduler({ _class_name: 'UniPCMultistepScheduler' })).code).toBe('DELTAC_E_UNSUPPORTED_SCHEDULER');
    expect(errorOf(() => createScheduler({ beta_schedule: 'linear' })).message).toMatch(/names no _class_name/);
  });
});

describe("a pipeline's scheduler_config.json", () => {
  it('sd-tiny-pipeline: PNDM with skip_prk_steps, 21 timesteps for 20 steps', () => {
    const config = parseSchedulerConfig(fs.readFileSync(path.join(MODELS_DIR, 'sd-tiny-pipeline/scheduler/scheduler_config.json'), 'utf8'));
    const s = createScheduler(config);
    expect(s.name).toBe('PNDMScheduler');
    s.setTimesteps(20);
    expect(s.timesteps.slice(0, 4)).toEqual([951, 901, 901, 851]);
    expect(s.timesteps).toHaveLength(21);
    expect(s.initNoiseSigma).toBe(1);
  });

  it('sdxl-tiny-pipeline: EulerDiscrete, leading spacing', () => {
    const config = parseSchedulerConfig(fs.readFileSync(path.join(MODELS_DIR, 'sdxl-tiny-pipeline/scheduler/scheduler_config.json'), 'utf8'));
    const s = createScheduler(config);
    expect(s.name).toBe('EulerDiscreteScheduler');
    s.setTimesteps(8);
    expect(s.timesteps).toEqual([876, 751, 626, 501, 376, 251, 126, 1]);
    expect(s.initNoiseSigma).toBeCloseTo(7.439362, 5); // diffusers: √(σ(876)² + 1)
  });

  it('--scheduler over another class\'s config takes the keys the class knows', () => {
    const pndm = { _class_name: 'PNDMScheduler', ...SD, skip_prk_steps: true, set_alpha_to_one: false, clip_sample: false };
    const ddim = createScheduler(pndm, 'ddim');
    expect(ddim.name).toBe('DDIMScheduler');
    expect(ddim.options['clip_sample']).toBe(false); // from the config, where DDIM's default is true
    expect(ddim.options['timestep_spacing']).toBe('leading');
    const dpm = createScheduler(pndm, 'DPMSolverMultistepScheduler');
    expect(dpm.options['timestep_spacing']).toBe('linspace');
    dpm.setTimesteps(20);
    expect(dpm.timesteps[0]).toBe(999);
  });

  it('keys recorded in _use_default_values take the new class\'s defaults', () => {
    const s = createScheduler({ _class_name: 'PNDMScheduler', ...SD, timestep_spacing: 'leading', _use_default_values: ['timestep_spacing'] }, 'euler');
    expect(s.options['timestep_spacing']).toBe('linspace');
  });

  it("reads Python's -Infinity / NaN / Infinity (diffusers saves lambda_min_clipped as -Infinity)", () => {
    const text = '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "-Infinity stays a string", "x": [NaN, Infinity]}';
    const config = parseSchedulerConfig(text);
    expect(config['lambda_min_clipped']).toBe(-Infinity);
    expect(config['note']).toBe('-Infinity stays a string');
    expect(config['x']).toEqual([NaN, Infinity]);
    expect(createScheduler(config).options['lambda_min_clipped']).toBe(-Infinity);
    expect(errorOf(() => parseSchedulerConfig('{"a": ')).code).toBe('DELTAC_E_UNSUPPORTED_SCHEDULER');
    expect(errorOf(() => parseSchedulerConfig('[1, 2]')).message).toMatch(/not a JSON object/);
  });
});

describe('options deltac refuses rather than ignores', () => {
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['DDIMScheduler', { thresholding: true }, /thresholding=true: not supported by deltac \(dynamic thresholding/],
    ['DPMSolverMultistepScheduler', { thresholding: true }, /thresholding=true/],
    ['DPMSolverMultistepScheduler', { algorithm_type: 'sde-dpmsolver++' }, /algorithm_type="sde-dpmsolver\+\+": not supported by deltac: it adds fresh random noise/],
    ['DPMSolverMultistepScheduler', { variance_type: 'learned_range' }, /variance_type="learned_range"/],
    ['DPMSolverMultistepScheduler', { use_dynamic_shifting: true }, /use_dynamic_shifting/],
    ['DPMSolverMultistepScheduler', { solver_order: 4 }, /solver_order 4 is not supported/],
    ['DPMSolverMultistepScheduler', { algorithm_type: 'dpmsolver' }, /final_sigmas_type "zero" is not supported for algorithm_type "dpmsolver"/],
    ['EulerDiscreteScheduler', { use_beta_sigmas: true }, /use_beta_sigmas=true: not supported by deltac \(the beta-distribution/],
    ['EulerDiscreteScheduler', { use_karras_sigmas: true, use_exponential_sigmas: true }, /exclude each other/],
    ['EulerDiscreteScheduler', { interpolation_type: 'cubic' }, /interpolation_type="cubic": expected one of "linear", "log_linear"/],
    ['PNDMScheduler', { prediction_type: 'sample' }, /prediction_type="sample": expected one of "epsilon", "v_prediction"/],
    ['PNDMScheduler', { beta_schedule: 'sigmoid' }, /beta_schedule="sigmoid": expected one of "linear", "scaled_linear", "squaredcos_cap_v2"/],
    ['DDIMScheduler', { num_train_timesteps: '1000' }, /num_train_timesteps="1000": expected a finite number/],
    ['DDIMScheduler', { beta_end: 2 }, /beta_end=2: expected a number in \(0, 1\)/],
    ['DDIMScheduler', { clip_sample: 'yes' }, /clip_sample="yes": expected true or false/],
    ['DDIMScheduler', { trained_betas: [0.1, 0.2] }, /trained_betas has 2 values but num_train_timesteps is 1000/],
    ['DDIMScheduler', { trained_betas: [0.1, 1.5] }, /trained_betas=.*each in \(0, 1\)/],
  ];
  for (const [name, options, message] of refused) {
    it(`${name} ${JSON.stringify(options)}`, () => {
      const e = errorOf(() => createScheduler({ ...SD, ...options }, name));
      expect(e.code).toBe('DELTAC_E_UNSUPPORTED_SCHEDULER');
      expect(e.message).toMatch(message);
    });
  }

  it('null means the default, as None in diffusers', () => {
    const s = createScheduler({ _class_name: 'EulerDiscreteScheduler', ...SD, sigma_min: null, trained_betas: null, use_karras_sigmas: null });
    expect(s.options['sigma_min']).toBeNull();
    expect(s.options['use_karras_sigmas']).toBe(false);
  });

  it('step counts outside 1 … num_train_timesteps, and PRK with fewer than 4 steps', () => {
    for (const name of SUPPORTED_SCHEDULERS) {
      const s = createScheduler(SD, name);
      for (const steps of [0, -1, 2.5, 1001]) expect(errorOf(() => s.setTimesteps(steps)).code, `${name} ${steps}`).toBe('DELTAC_E_BAD_OPTION');
    }
    const prk = createScheduler({ ...SD, skip_prk_steps: false }, 'pndm');
    expect(errorOf(() => prk.setTimesteps(3)).message).toMatch(/at least 4 inference steps/);
    prk.setTimesteps(4);
    expect(prk.timesteps).toHaveLength(13);
  });

  it('a grid that steps_offset pushes past the training timesteps', () => {
    for (const name of ['pndm', 'ddim']) {
      const s = createScheduler({ ...SD, skip_prk_steps: true }, name);
      expect(errorOf(() => s.setTimesteps(1000)).message).toMatch(/steps_offset 1, 1000 steps reach timestep 1000, outside the 1000 training timesteps/);
      s.setTimesteps(999);
      expect(s.timesteps[0]).toBe(999);
    }
  });

  it('a step before setTimesteps is a programming error, not a user one', () => {
    for (const name of SUPPORTED_SCHEDULERS) {
      const s = createScheduler(SD, name);
      const e = errorOf(() => s.step(new Float32Array(4), 1, new Float32Array(4)));
      expect(e.code, name).toBeUndefined();
    }
  });
});
