/**
 * The denoising loop drives a scheduler and a UNet as diffusers' StableDiffusionPipeline
 * does: latents × init_noise_sigma; per timestep the latents doubled for guidance,
 * scale_model_input on the doubled batch, the UNet on [negative, prompt], guidance, then
 * step on the guided noise and the (single) latents. A recording scheduler and a UNet
 * written as a formula make every value checkable.
 */
import { describe, expect, it } from 'vitest';
import { denoise, timestepFeed } from '../../src/pipeline/denoising-loop.js';
import type { Conditioning } from '../../src/pipeline/prompt-encoding.js';
import type { Scheduler } from '../../src/pipeline/schedulers/index.js';
import type { ModelSession, SessionInput, TensorData } from '../../src/pipeline/session.js';
import { halfBitsToFloat32 } from '../../src/ir/half.js';

interface Call {
  what: 'scale' | 'step';
  t: number;
  args: Float32Array[];
}

/** timesteps [900, 500.5, 100], init_noise_sigma 2, scale x/(t+1), step x − 0.1·eps. */
function recordingScheduler(calls: Call[]): Scheduler {
  return {
    name: 'Recording',
    options: {},
    timesteps: [900, 500.5, 100],
    initNoiseSigma: 2,
    setTimesteps: () => {},
    scaleModelInput(x, t) {
      calls.push({ what: 'scale', t, args: [x.slice()] });
      return Float32Array.from(x, (v) => v / (t + 1));
    },
    step(eps, t, x) {
      calls.push({ what: 'step', t, args: [eps.slice(), x.slice()] });
      return Float32Array.from(x, (v, i) => v - 0.1 * eps[i]!);
    },
  };
}

/** eps[b, i] = 0.5 · sample[b, i] + encoder_hidden_states[b, 0, 0]. */
function formulaUnet(inputs: SessionInput[], runs: Record<string, TensorData>[]): ModelSession {
  return {
    label: 'unet (test)',
    inputs,
    outputNames: ['out_sample'],
    async run(feeds) {
      runs.push(feeds);
      const sample = feeds.sample!;
      const values = sample.dtype === 'float16' ? Float32Array.from(sample.data as Uint16Array, halfBitsToFloat32) : (sample.data as Float32Array);
      const ehs = feeds.encoder_hidden_states!;
      const ehsValues = ehs.dtype === 'float16' ? Float32Array.from(ehs.data as Uint16Array, halfBitsToFloat32) : (ehs.data as Float32Array);
      const batch = sample.dims[0]!;
      const n = values.length / batch;
      const rowEhs = ehsValues.length / batch;
      const out = Float32Array.from(values, (v, i) => 0.5 * v + ehsValues[Math.floor(i / n) * rowEhs]!);
      return { out_sample: { dtype: 'float32', dims: sample.dims, data: out } };
    },
    release: async () => {},
  };
}

const SD_INPUTS = (timestep: string, batch: number | string = 'batch_size'): SessionInput[] => [
  { name: 'sample', dtype: 'float32', dims: [batch, 4, 'h', 'w'] },
  { name: 'timestep', dtype: timestep, dims: ['steps'] },
  { name: 'encoder_hidden_states', dtype: 'float32', dims: [batch, 'seq', 2] },
];

/** [negative, prompt] embeddings whose first value is 0 and 1. */
const CONDITIONING: Conditioning = { batch: 2, hiddenStates: { dtype: 'float32', dims: [2, 3, 2], data: Float32Array.from([0, 9, 9, 9, 9, 9, 1, 9, 9, 9, 9, 9]) }, truncated: [] };
const LATENTS = Float32Array.from({ length: 8 }, (_, i) => (i - 3.5) / 4);
const DIMS = [1, 4, 1, 2];

/** The loop of diffusers' pipeline written out for this scheduler and UNet. */
function expected(guidance: number): Float32Array {
  let x = Float32Array.from(LATENTS, (v) => v * 2);
  for (const t of [900, 500.5, 100]) {
    const s = Float32Array.from(x, (v) => v / (t + 1));
    const eps = Float32Array.from(s, (v) => 0.5 * v + 0 + guidance * (0.5 * v + 1 - (0.5 * v + 0)));
    x = Float32Array.from(x, (v, i) => v - 0.1 * eps[i]!);
  }
  return x;
}

describe('denoising loop', () => {
  it('runs classifier-free guidance as diffusers does: doubled latents scaled, UNet batch [negative, prompt], step on the guided noise', async () => {
    const calls: Call[] = [];
    const runs: Record<string, TensorData>[] = [];
    const steps: number[] = [];
    const out = await denoise(formulaUnet(SD_INPUTS('int64'), runs), recordingScheduler(calls), CONDITIONING, LATENTS, DIMS, {
      guidanceScale: 7.5,
      onStep: (s) => steps.push(s.timestep),
    });
    expect(Array.from(out)).toEqual(Array.from(expected(7.5)).map((v) => expect.closeTo(v, 6)));
    expect(steps).toEqual([900, 500.5, 100]);
    expect(calls.map((c) => `${c.what}@${c.t}`)).toEqual(['scale@900', 'step@900', 'scale@500.5', 'step@500.5', 'scale@100', 'step@100']);
    // scale_model_input gets both halves (the latents × init_noise_sigma on the first step); step gets one
    const first = calls[0]!.args[0]!;
    expect(first.length).toBe(16);
    expect(Array.from(first.subarray(0, 8))).toEqual(Array.from(LATENTS, (v) => v * 2));
    expect(Array.from(first.subarray(8))).toEqual(Array.from(first.subarray(0, 8)));
    expect(calls[1]!.args[0]!.length).toBe(8);
    expect(Array.from(calls[1]!.args[1]!)).toEqual(Array.from(LATENTS, (v) => v * 2));
    // the UNet: batch 2, timestep int64 [1] truncated as numpy's astype does, the conditioning as given
    expect(runs.map((r) => r.sample!.dims)).toEqual([[2, 4, 1, 2], [2, 4, 1, 2], [2, 4, 1, 2]]);
    expect(runs.map((r) => [r.timestep!.dtype, r.timestep!.dims, Number((r.timestep!.data as BigInt64Array)[0])])).toEqual([
      ['int64', [1], 900],
      ['int64', [1], 500],
      ['int64', [1], 100],
    ]);
    expect(runs[0]!.encoder_hidden_states!.data).toEqual(CONDITIONING.hiddenStates.data);
  });

  it('feeds the timestep in the dtype the UNet declares (float32, float16) and its rank', () => {
    const session = (dtype: string, dims: (number | string)[]) => formulaUnet([{ name: 'timestep', dtype, dims }], []);
    const f32 = timestepFeed(session('float32', [1]), 500.5);
    expect([f32.dtype, f32.dims, (f32.data as Float32Array)[0]]).toEqual(['float32', [1], 500.5]);
    const f16 = timestepFeed(session('float16', ['steps']), 999);
    expect([f16.dtype, f16.dims, halfBitsToFloat32((f16.data as Uint16Array)[0]!)]).toEqual(['float16', [1], 999]);
    const scalar = timestepFeed(session('int64', []), 981);
    expect([scalar.dims, Number((scalar.data as BigInt64Array)[0])]).toEqual([[], 981]);
  });

  it('without guidance (scale ≤ 1) runs the UNet on batch 1 and steps on its output as it is', async () => {
    const calls: Call[] = [];
    const runs: Record<string, TensorData>[] = [];
    const single: Conditioning = { batch: 1, hiddenStates: { dtype: 'float32', dims: [1, 3, 2], data: CONDITIONING.hiddenStates.data.slice(6) as Float32Array }, truncated: [] };
    await denoise(formulaUnet(SD_INPUTS('float32'), runs), recordingScheduler(calls), single, LATENTS, DIMS, { guidanceScale: 1 });
    expect(runs.map((r) => r.sample!.dims[0])).toEqual([1, 1, 1]);
    const s = calls[0]!.args[0]!;
    const eps = calls[1]!.args[0]!;
    expect(Array.from(eps)).toEqual(Array.from(s, (v) => expect.closeTo(0.5 * (v / 901) + 1, 6)));
  });

  it('runs the two halves one after the other on a UNet exported for batch 1, with the same result', async () => {
    const runs: Record<string, TensorData>[] = [];
    const out = await denoise(formulaUnet(SD_INPUTS('int64', 1), runs), recordingScheduler([]), CONDITIONING, LATENTS, DIMS, { guidanceScale: 7.5 });
    expect(runs.length).toBe(6);
    expect(runs.map((r) => r.sample!.dims[0])).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(out)).toEqual(Array.from(expected(7.5)).map((v) => expect.closeTo(v, 6)));
  });

  it('casts the sample and conditioning to float16 for a float16 UNet', async () => {
    const runs: Record<string, TensorData>[] = [];
    const inputs = SD_INPUTS('float16').map((i) => ({ ...i, dtype: 'float16' }));
    const out = await denoise(formulaUnet(inputs, runs), recordingScheduler([]), CONDITIONING, LATENTS, DIMS, { guidanceScale: 7.5 });
    expect([runs[0]!.sample!.dtype, runs[0]!.encoder_hidden_states!.dtype, runs[0]!.timestep!.dtype]).toEqual(['float16', 'float16', 'float16']);
    expect(Array.from(out)).toEqual(Array.from(expected(7.5)).map((v) => expect.closeTo(v, 2)));
  });
});
