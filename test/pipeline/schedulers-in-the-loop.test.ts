/**
 * The loop drives every scheduler as diffusers' pipeline does. The schedulers' own steps
 * are checked against diffusers' traces (schedulers.test.ts); here the real UNet runs
 * them on sd-tiny-pipeline, and identities between schedulers check the loop's part:
 *
 * - DDIM (η = 0, set_alpha_to_one) and EulerDiscrete (leading spacing, final σ 0) are the
 *   same ODE step written for x and for x·√(1+σ²): the images agree only if the loop
 *   multiplies the latents by Euler's init_noise_sigma (√(1+σ_max²) ≈ 14.6) and feeds the
 *   UNet Euler's scale_model_input (x/√(1+σ²)) of the doubled batch.
 * - DPM-Solver++ of order 1 is DDIM (same trailing timesteps): agreement checks that each
 *   step gets the guided noise of its own timestep; order 2 (its multistep memory) then
 *   gives another image.
 *
 * And the images themselves: sd-tiny-pipeline with DDIM, EulerDiscrete and DPM-Solver++
 * in place of its PNDM, against the images diffusers' OnnxStableDiffusionPipeline steps make
 * (test/fixtures/pipeline/make-scheduler-images.py, which gives reference.original.npy
 * with PNDM within 1.0e-6).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../src/runtime/npy.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/paths.js';
import { SD_TINY, copyPipeline } from '../helpers/pipeline-variants.js';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = makeTempDir('deltac-pipeline-schedulers-');
});
afterAll(() => tmp.cleanup());

/** sd-tiny-pipeline with `config` merged into its scheduler_config.json (and no scheduler in generation.json). */
function withScheduler(name: string, config: Record<string, unknown>): string {
  const dir = copyPipeline(SD_TINY, path.join(tmp.dir, name));
  const file = path.join(dir, 'scheduler', 'scheduler_config.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), ...config }));
  const generation = path.join(dir, 'generation.json');
  const g = JSON.parse(fs.readFileSync(generation, 'utf8'));
  delete g.scheduler;
  fs.writeFileSync(generation, JSON.stringify(g));
  return dir;
}

async function image(dir: string, scheduler: string): Promise<{ data: Float32Array; timesteps: number[] }> {
  const out = path.join(tmp.dir, `out-${path.basename(dir)}-${scheduler}`);
  const r = await runCli('preview', dir, '--scheduler', scheduler, '-o', out);
  expect(r.code, r.err).toBe(0);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'preview.json'), 'utf8'));
  const data = readNpy(path.join(out, 'original.npy')).data as Float32Array;
  expect(data.every((v) => v >= 0 && v <= 1)).toBe(true);
  return { data, timesteps: json.timesteps };
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('schedulers in the denoising loop', () => {
  it('DDIM and EulerDiscrete give the same image (init_noise_sigma and scale_model_input applied as diffusers does)', async () => {
    const dir = withScheduler('ddim-alpha-one', { _class_name: 'DDIMScheduler', set_alpha_to_one: true });
    const ddim = await image(dir, 'ddim');
    const euler = await image(dir, 'euler');
    expect(euler.timesteps).toEqual([876, 751, 626, 501, 376, 251, 126, 1]);
    expect(ddim.timesteps).toEqual(euler.timesteps);
    const d = maxAbs(ddim.data, euler.data);
    console.log(`DDIM vs EulerDiscrete: max abs ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
    // PNDM on the same folder is another method: far from both
    expect(maxAbs(ddim.data, (await image(dir, 'pndm')).data)).toBeGreaterThan(1e-2);
  });

  it('DPM-Solver++ of order 1 gives DDIM\'s image; of order 2 another one', async () => {
    const dir = withScheduler('trailing-order-1', { _class_name: 'DDIMScheduler', set_alpha_to_one: true, timestep_spacing: 'trailing', solver_order: 1 });
    const ddim = await image(dir, 'ddim');
    const dpm1 = await image(dir, 'dpm++');
    expect(dpm1.timesteps).toEqual([999, 874, 749, 624, 499, 374, 249, 124]);
    const d = maxAbs(ddim.data, dpm1.data);
    console.log(`DDIM vs DPM-Solver++ order 1: max abs ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
    const order2 = withScheduler('trailing-order-2', { _class_name: 'DPMSolverMultistepScheduler', timestep_spacing: 'trailing', solver_order: 2 });
    expect(maxAbs((await image(order2, 'dpm++')).data, dpm1.data)).toBeGreaterThan(1e-3);
  });
});

const IMAGES = fileURLToPath(new URL('../fixtures/pipeline/scheduler-images/', import.meta.url));

describe("the other schedulers' images, as diffusers' ONNX pipeline makes them", () => {
  for (const [scheduler, name] of [
    ['DDIMScheduler', 'ddim'],
    ['EulerDiscreteScheduler', 'euler'],
    ['DPMSolverMultistepScheduler', 'dpm++'],
  ] as const) {
    it(`${scheduler} (--scheduler ${name}) on sd-tiny-pipeline: within 1e-4`, async () => {
      const got = await image(SD_TINY, name);
      const expected = readNpy(path.join(IMAGES, `${scheduler}.npy`));
      expect(expected.shape).toEqual([64, 64, 3]);
      const d = maxAbs(got.data, expected.data as Float32Array);
      console.log(`${scheduler} vs diffusers: max abs ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-4);
      // (not PNDM's image: the scheduler did change)
      expect(maxAbs(got.data, readNpy(path.join(SD_TINY, 'reference.original.npy')).data as Float32Array)).toBeGreaterThan(1e-2);
    });
  }
});
