/**
 * Runs one pipeline with two (or more) UNets from the same latents: the original and
 * the converted one. The text conditioning is computed once per set of text encoders,
 * each UNet is loaded for its loop and released after it (one UNet in memory at a
 * time), then the VAE decodes every result. Per step it records each UNet's time and,
 * against the first variant, how far the latents have moved apart.
 *
 * Runtime-agnostic: sessions come from loaders (onnxruntime-node in the CLI,
 * onnxruntime-web in the browser page).
 */
import { DeltacError } from '../ir/errors.js';
import type { PipelineKind, VaeConfig } from './layout.js';
import { type Conditioning, type TextEncoderPart, type TruncatedPrompt, encodePromptSD, encodePromptSDXL, usesGuidance } from './prompt-encoding.js';
import { denoise } from './denoising-loop.js';
import type { Scheduler } from './schedulers/index.js';
import type { SessionLoader } from './session.js';
import { type DecodedImage, decodeLatents } from './vae-decoding.js';

/** Everything of a pipeline but its UNet. */
export interface PipelineParts {
  kind: PipelineKind;
  /** One text encoder (SD) or two (SDXL). */
  text: TextEncoderPart[];
  /** SDXL's `force_zeros_for_empty_prompt` (model_index.json). */
  forceZerosForEmptyPrompt: boolean;
  vae: SessionLoader;
  vaeConfig: VaeConfig;
  /** A fresh scheduler (each loop keeps its own state). */
  createScheduler(): Scheduler;
}

export interface PreviewVariant {
  name: string;
  unet: SessionLoader;
  parts: PipelineParts;
}

export interface GenerationSettings {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  height: number;
  width: number;
  /** [1, C, height/f, width/f], as diffusers' `latents=` (the loop multiplies by init_noise_sigma). */
  latents: Float32Array;
  latentDims: number[];
}

export interface VariantResult {
  name: string;
  image: DecodedImage;
  latents: Float32Array;
  timesteps: number[];
  /** UNet time of each step, ms. */
  unetMs: number[];
  /** Loading the UNet, ms. */
  loadMs: number;
}

export interface StepDeviation {
  step: number;
  timestep: number;
  /** max |a − b| and √mean (a − b)² of the latents after the step, and the RMS relative to the first variant's. */
  maxAbs: number;
  rms: number;
  relativeRms: number;
}

export interface PreviewResult {
  variants: VariantResult[];
  /** Of each variant after the first, against the first. */
  deviation: StepDeviation[][];
  /** Prompts longer than the tokenizer's length, cut as diffusers does. */
  truncated: TruncatedPrompt[];
  guidance: boolean;
}

export interface PreviewHooks {
  onStage?: (variant: string, stage: 'encode' | 'load' | 'denoise' | 'decode') => void;
  onStep?: (variant: string, done: number, total: number) => void;
}

function deviationOf(a: Float32Array, b: Float32Array): Omit<StepDeviation, 'step' | 'timestep'> {
  let max = 0;
  let sum = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Number.isNaN(d) ? Infinity : Math.max(max, d);
    sum += d * d;
    ref += a[i]! * a[i]!;
  }
  const rms = Math.sqrt(sum / a.length);
  const refRms = Math.sqrt(ref / a.length);
  return { maxAbs: max, rms, relativeRms: refRms > 0 ? rms / refRms : rms };
}

export async function runPreview(variants: PreviewVariant[], s: GenerationSettings, hooks: PreviewHooks = {}): Promise<PreviewResult> {
  if (!variants.length) throw new DeltacError('DELTAC_E_BAD_OPTION', 'nothing to preview');
  const conditioning = new Map<PipelineParts['text'], Conditioning>();
  const truncated: TruncatedPrompt[] = [];
  const results: VariantResult[] = [];
  const trajectories: Float32Array[][] = [];
  for (const v of variants) {
    let c = conditioning.get(v.parts.text);
    if (!c) {
      hooks.onStage?.(v.name, 'encode');
      const prompt = { prompt: s.prompt, negativePrompt: s.negativePrompt, guidanceScale: s.guidanceScale, height: s.height, width: s.width };
      c =
        v.parts.kind === 'stable-diffusion-xl'
          ? await encodePromptSDXL(v.parts.text as [TextEncoderPart, TextEncoderPart], prompt, v.parts.forceZerosForEmptyPrompt)
          : await encodePromptSD(v.parts.text[0]!, prompt);
      conditioning.set(v.parts.text, c);
      for (const t of c.truncated) if (!truncated.some((x) => x.prompt === t.prompt)) truncated.push(t);
    }
    hooks.onStage?.(v.name, 'load');
    const loadStart = performance.now();
    const unet = await v.unet();
    const loadMs = performance.now() - loadStart;
    const scheduler = v.parts.createScheduler();
    scheduler.setTimesteps(s.steps);
    const unetMs: number[] = [];
    const trajectory: Float32Array[] = [];
    let latents: Float32Array;
    try {
      hooks.onStage?.(v.name, 'denoise');
      hooks.onStep?.(v.name, 0, scheduler.timesteps.length);
      latents = await denoise(unet, scheduler, c, s.latents, s.latentDims, {
        guidanceScale: s.guidanceScale,
        onStep: (step) => {
          unetMs.push(step.unetMs);
          trajectory.push(step.latents);
          hooks.onStep?.(v.name, step.index + 1, scheduler.timesteps.length);
        },
      });
    } finally {
      await unet.release();
    }
    results.push({ name: v.name, image: { data: new Float32Array(), height: 0, width: 0 }, latents, timesteps: [...scheduler.timesteps], unetMs, loadMs });
    trajectories.push(trajectory);
  }
  // Decode, one VAE session per distinct decoder.
  const byVae = new Map<SessionLoader, { v: PreviewVariant; r: VariantResult }[]>();
  variants.forEach((v, i) => byVae.set(v.parts.vae, [...(byVae.get(v.parts.vae) ?? []), { v, r: results[i]! }]));
  for (const [load, items] of byVae) {
    hooks.onStage?.(items[0]!.v.name, 'decode');
    const vae = await load();
    try {
      for (const { v, r } of items) r.image = await decodeLatents(vae, r.latents, s.latentDims, v.parts.vaeConfig);
    } finally {
      await vae.release();
    }
  }
  const deviation = trajectories.slice(1).map((t) =>
    t.map((latents, step) => ({ step, timestep: results[0]!.timesteps[step]!, ...deviationOf(trajectories[0]![step]!, latents) })),
  );
  return { variants: results, deviation, truncated, guidance: usesGuidance(s.guidanceScale) };
}
