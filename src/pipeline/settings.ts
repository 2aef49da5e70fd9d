/**
 * The settings of a preview: what the user asked for, else the folder's
 * `generation.json` (if it has one), else diffusers' defaults (50 steps, guidance 7.5
 * for SD and 5.0 for SDXL, size = unet sample_size × VAE factor, no negative prompt),
 * and the starting latents: `--latents file.npy` as given, else torch's CPU `randn`
 * for the seed (`torch-randn.ts`), seed 0 when none is given. Each setting records
 * where it came from.
 */
import { DeltacError } from '../ir/errors.js';
import type { NpyArray } from '../runtime/npy.js';
import type { PipelineKind } from './layout.js';
import { torchRandn } from './torch-randn.js';

export type SettingSource = 'option' | 'generation.json' | 'default';

/** What the command line (or a page's form) asked for; absent fields fall back. */
export interface PreviewRequest {
  prompt?: string;
  negativePrompt?: string;
  steps?: number;
  guidanceScale?: number;
  width?: number;
  height?: number;
  seed?: number;
  /** An array read from a .npy file, and where it came from. */
  latents?: { data: Float32Array; shape: number[]; source: string };
  scheduler?: string;
}

export interface PipelineFacts {
  kind: PipelineKind;
  /** Pixels per latent cell (8 for SD). */
  vaeFactor: number;
  latentChannels: number;
  /** unet/config.json's sample_size (latent cells), when known. */
  sampleSize?: number;
  /** scheduler_config.json's _class_name. */
  scheduler: string;
}

export interface ResolvedSettings {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
  scheduler: string;
  /** The seed of the latents, when they were drawn here. */
  seed?: number;
  /** `--latents` file (or generation.json's) when given. */
  latentsFile?: string;
  latents: Float32Array;
  latentDims: number[];
  sources: Record<string, SettingSource>;
  /** What the user should know about how the settings were chosen. */
  notes: string[];
}

/** The keys of generation.json deltac reads (diffusers' argument names; `num_inference_steps` as well as `steps`). */
function fromGeneration(g: Record<string, unknown> | undefined): Partial<Record<'prompt' | 'negativePrompt' | 'steps' | 'guidanceScale' | 'width' | 'height' | 'seed' | 'latents' | 'scheduler', unknown>> {
  if (!g) return {};
  return {
    prompt: g.prompt,
    negativePrompt: g.negative_prompt,
    steps: g.steps ?? g.num_inference_steps,
    guidanceScale: g.guidance_scale,
    width: g.width,
    height: g.height,
    seed: g.seed,
    latents: g.latents,
    scheduler: g.scheduler,
  };
}

function bad(message: string): never {
  throw new DeltacError('DELTAC_E_BAD_OPTION', message);
}

/**
 * Resolves the settings. `readLatents(file)` reads a .npy that generation.json names
 * (relative to the folder); the latents' shape is checked against the size
 * (DELTAC_E_LATENTS_SHAPE), the size against the VAE factor.
 */
export async function resolveSettings(
  request: PreviewRequest,
  generation: Record<string, unknown> | undefined,
  facts: PipelineFacts,
  readLatents: (file: string) => Promise<{ data: Float32Array; shape: number[] }>,
): Promise<ResolvedSettings> {
  const g = fromGeneration(generation);
  const sources: Record<string, SettingSource> = {};
  const pick = <T>(key: string, option: T | undefined, fromFile: unknown, check: (v: unknown) => v is T, fallback: T | undefined): T | undefined => {
    if (option !== undefined) {
      sources[key] = 'option';
      return option;
    }
    if (fromFile !== undefined && fromFile !== null) {
      if (!check(fromFile)) bad(`generation.json has ${key} ${JSON.stringify(fromFile)}, which deltac cannot use; give --${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} instead`);
      sources[key] = 'generation.json';
      return fromFile;
    }
    if (fallback !== undefined) sources[key] = 'default';
    return fallback;
  };
  const isString = (v: unknown): v is string => typeof v === 'string';
  const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
  const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const isSeed = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

  const prompt = pick('prompt', request.prompt, g.prompt, isString, undefined);
  if (prompt === undefined) bad('give --prompt (the folder has no generation.json with a prompt)');
  const negativePrompt = pick('negativePrompt', request.negativePrompt, g.negativePrompt, isString, undefined);
  const steps = pick('steps', request.steps, g.steps, isPositiveInt, 50)!;
  const guidanceScale = pick('guidanceScale', request.guidanceScale, g.guidanceScale, isNumber, facts.kind === 'stable-diffusion-xl' ? 5.0 : 7.5)!;
  const defaultSize = (facts.sampleSize ?? 64) * facts.vaeFactor;
  const width = pick('width', request.width, g.width, isPositiveInt, defaultSize)!;
  const height = pick('height', request.height, g.height, isPositiveInt, defaultSize)!;
  const scheduler = pick('scheduler', request.scheduler, g.scheduler, isString, facts.scheduler)!;
  for (const [what, v] of [['width', width], ['height', height]] as const) {
    if (v % facts.vaeFactor !== 0) {
      bad(`the ${what} ${v} is not a multiple of ${facts.vaeFactor}, the VAE's factor (each latent cell is ${facts.vaeFactor}×${facts.vaeFactor} pixels); use e.g. ${Math.max(facts.vaeFactor, Math.round(v / facts.vaeFactor) * facts.vaeFactor)}`);
    }
  }
  const latentDims = [1, facts.latentChannels, height / facts.vaeFactor, width / facts.vaeFactor];
  const count = latentDims.reduce((a, b) => a * b, 1);

  // Latents: an explicit --latents, else an explicit --seed, else generation.json's latents file, else its seed, else 0.
  let latents: { data: Float32Array; shape: number[] } | undefined;
  let latentsFile: string | undefined;
  let seed: number | undefined;
  const notes: string[] = [];
  if (request.latents) {
    latents = request.latents;
    latentsFile = request.latents.source;
    sources.latents = 'option';
  } else if (request.seed !== undefined) {
    seed = request.seed;
    sources.seed = 'option';
  } else if (typeof g.latents === 'string') {
    const fromFolder = await readLatents(g.latents);
    if (fromFolder.shape.join(',') === latentDims.join(',')) {
      latents = fromFolder;
      latentsFile = g.latents;
      sources.latents = 'generation.json';
    } else {
      // Made for another size than the one asked for (--size): draw them instead.
      notes.push(`generation.json's latents "${g.latents}" [${fromFolder.shape.join(', ')}] do not fit ${width}×${height}; drawn from the seed instead`);
    }
  }
  if (!latents && seed === undefined) seed = pick('seed', undefined, g.seed, isSeed, 0);
  if (latents) {
    if (latents.shape.join(',') !== latentDims.join(',')) {
      throw new DeltacError(
        'DELTAC_E_LATENTS_SHAPE',
        `the latents ${latentsFile ? `in "${latentsFile}" ` : ''}have shape [${latents.shape.join(', ')}]; a ${width}×${height} image needs [${latentDims.join(', ')}] ([batch 1, channels, height/${facts.vaeFactor}, width/${facts.vaeFactor}])`,
      );
    }
  }
  return {
    prompt,
    ...(negativePrompt !== undefined ? { negativePrompt } : {}),
    steps,
    guidanceScale,
    width,
    height,
    scheduler,
    ...(seed !== undefined ? { seed } : {}),
    ...(latentsFile !== undefined ? { latentsFile } : {}),
    latents: latents ? latents.data : torchRandn(seed!, count),
    latentDims,
    sources,
    notes,
  };
}

/** Latents from a parsed .npy (`file` names it in the error), as float32: float16 was widened by the parser, float64 is narrowed. */
export function latentsFromNpy(a: NpyArray, file: string): { data: Float32Array; shape: number[] } {
  if (!(a.data instanceof Float32Array || a.data instanceof Float64Array)) throw new DeltacError('DELTAC_E_NPY', `"${file}" holds ${a.dtype}; latents must be float32, float16 or float64`);
  return { data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data), shape: a.shape };
}
